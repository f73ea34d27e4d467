"""Is a packed update slower when whichever member thread asks last runs it (runner/pack.py before
the fix) than when one thread runs them all? size1m vector, K=3, 2 torch threads, eager fp32."""
import threading, time, torch
from concurrent.futures import ThreadPoolExecutor
from dreamer_bench.bench import OBS_SPACES, ACT_SPACES
from dreamer_bench.agent import Agent, make_config
from dreamer_bench.agent.synthetic import random_batch
from dreamer_bench.agent.packed import PackedUpdate
from dreamer_bench.agent.runtime import tune_cpu_allocator
tune_cpu_allocator(); torch.set_num_threads(2)
K = 3
agents = [Agent(OBS_SPACES["vector"], ACT_SPACES["vector"], make_config("size1m", overrides={"compile": False, "seed": s})) for s in range(K)]
batch = random_batch(OBS_SPACES["vector"], ACT_SPACES["vector"], agents[0].cfg)
packed = PackedUpdate(agents)
step = lambda: packed.train([dict(batch) for _ in agents])
pool = ThreadPoolExecutor(1)
step(); step()
def main_thread(n):
    t = time.perf_counter()
    for _ in range(n): step()
    return (time.perf_counter() - t) / n
def turns(n, via_pool):
    sems = [threading.Semaphore(0) for _ in range(K)]; done = threading.Semaphore(0); stop = [False]
    def worker(i):
        while True:
            sems[i].acquire()
            if stop[0]: return
            pool.submit(step).result() if via_pool else step()
            done.release()
    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(K)]
    for th in ths: th.start()
    t = time.perf_counter()
    for i in range(n):
        sems[i % K].release(); done.acquire()
    r = (time.perf_counter() - t) / n
    stop[0] = True
    for s in sems: s.release()
    return r
import resource
def faults(f, *a):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    s = f(*a)
    return f"{s:.2f} s ({(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 1000:.0f}K faults)"
for rep in range(2):
    print(f"s/packed update: main thread {faults(main_thread, 4)}, members take turns {faults(turns, 6, False)}, "
          f"members hand it to one thread {faults(turns, 6, True)}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB", flush=True)
