"""Packed updates run from threads, as in a packed group (runner/pack.py): seconds per packed update
and page faults when the main thread runs them (as `bench --pack` does), when the members' threads
take turns running them, and when they hand them to one thread (what PackService does).
size1m vector, 3 seeds, eager fp32, synthetic batch.

    python tools/pack_threads.py               # glibc as the package sets it up: one malloc arena
    python tools/pack_threads.py --arenas 8    # up to 8 arenas: each thread that allocates gets one

Measured on AMD EPYC (AVX2, 2 cores), 2026-12-04, before the package kept one arena: peak RSS
5.4 GB with an arena per thread, 2.0 GB with one; page faults per 6 updates in turns 3.3M
against 1.3M. With one arena, on the idle machine (2 seeds): 2.20 / 2.31 / 2.55 s and, with
OMP_WAIT_POLICY=PASSIVE, 2.20 / 2.20 / 2.02 and 2.00 / 1.90 / 2.12 s: the three ways are equal
within this machine's noise.
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from dreamer_bench.agent import Agent, make_config
from dreamer_bench.agent.packed import PackedUpdate
from dreamer_bench.agent.runtime import tune_cpu_allocator
from dreamer_bench.agent.synthetic import random_batch
from dreamer_bench.bench import ACT_SPACES, OBS_SPACES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arenas", type=int, default=0, help="glibc's M_ARENA_MAX after the package's setting (0: keep it)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    tune_cpu_allocator()
    if args.arenas:
        ctypes.CDLL("libc.so.6").mallopt(-8, args.arenas)  # M_ARENA_MAX
    torch.set_num_threads(args.threads)
    agents = [Agent(OBS_SPACES["vector"], ACT_SPACES["vector"],
                    make_config("size1m", overrides={"compile": False, "seed": s})) for s in range(args.seeds)]
    batch = random_batch(OBS_SPACES["vector"], ACT_SPACES["vector"], agents[0].cfg)
    packed = PackedUpdate(agents)
    pool = ThreadPoolExecutor(1)

    def step():
        packed.train([dict(batch) for _ in agents])

    def main_thread(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            step()
        return (time.perf_counter() - start) / n

    def turns(n: int, via_pool: bool) -> float:
        go = [threading.Semaphore(0) for _ in agents]
        done, stop = threading.Semaphore(0), threading.Event()

        def member(i: int) -> None:
            while True:
                go[i].acquire()
                if stop.is_set():
                    return
                pool.submit(step).result() if via_pool else step()
                done.release()

        threads = [threading.Thread(target=member, args=(i,)) for i in range(len(agents))]
        for t in threads:
            t.start()
        start = time.perf_counter()
        for i in range(n):
            go[i % len(agents)].release()
            done.acquire()
        seconds = (time.perf_counter() - start) / n
        stop.set()
        for g in go:
            g.release()
        for t in threads:
            t.join()
        return seconds

    def measured(f, *a) -> str:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        seconds = f(*a)
        return f"{seconds:.2f} s ({(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 1000:.0f}K faults)"

    step()
    step()
    for _ in range(args.repeats):
        print(f"s/packed update: main thread {measured(main_thread, 4)}, members take turns {measured(turns, 6, False)}, "
              f"members hand it to one thread {measured(turns, 6, True)}; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
    pool.shutdown()


if __name__ == "__main__":
    main()
