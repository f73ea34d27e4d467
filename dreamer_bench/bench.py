"""Throughput benchmark of the training step: gradient updates per second and peak memory.

Each configuration runs in a fresh process, so that its peak resident memory (CPU) or peak
allocated memory (CUDA) is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import asdict, dataclass

import torch

from .agent import ActSpace, Agent, make_config
from .agent.runtime import tune_cpu_allocator
from .agent.synthetic import random_batch

OBS_SPACES = {
    "vector": {"height": (1,), "orientations": (14,), "velocity": (9,)},  # walker_walk's proprioception
    "image": {"image": (64, 64, 3)},
}
ACT_SPACES = {"vector": ActSpace(False, 6), "image": ActSpace(True, 6)}


@dataclass
class BenchResult:
    size: str
    obs: str
    precision: str
    compile: bool
    device: str
    threads: int
    updates_per_s: float
    ms_per_update: float
    peak_mb: float
    measured_updates: int
    pack: int = 1  # seeds trained by one (packed, agent/packed.py) update; 1: today's unpacked update
    seed_updates_per_s: float = 0.0  # pack × updates_per_s: what a grid of seeds gets per second


def _measure(size: str, obs: str, device: str, precision: str, compile: bool, updates: int,
             warmup: int, threads: int, overrides: dict, pack: int = 1) -> BenchResult:
    tune_cpu_allocator()
    torch.set_num_threads(threads)
    agents = [Agent(OBS_SPACES[obs], ACT_SPACES[obs],
                    make_config(size, overrides={**overrides, "device": device, "precision": precision,
                                                 "compile": compile, "seed": seed}))
              for seed in range(pack)]
    agent, cfg = agents[0], agents[0].cfg
    batch = random_batch(OBS_SPACES[obs], ACT_SPACES[obs], cfg)
    if pack > 1:
        from .agent.packed import PackedUpdate

        packed = PackedUpdate(agents, compile=compile)
        step = lambda: packed.train([dict(batch) for _ in agents])  # noqa: E731
    else:
        step = lambda: agent.train(dict(batch))  # noqa: E731
    cuda = agent.device.type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(updates):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchResult(size, obs, precision, compile, str(agent.device), threads,
                       updates / seconds, 1000 * seconds / updates, peak, updates, pack, pack * updates / seconds)


def _child(queue, kwargs):
    try:
        queue.put(("ok", _measure(**kwargs)))
    except BaseException as e:  # report, never hang the parent
        queue.put(("error", f"{type(e).__name__}: {e}"))


def measure_in_subprocess(**kwargs) -> BenchResult:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, kwargs))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


def machine_description(device: str = "cpu") -> str:
    """The CPU in words (model, family, instruction sets: dreamer_bench/machine.py), torch's version
    and, for a CUDA device, the GPU's name."""
    from .machine import cpu_description

    text = f"{cpu_description()}, torch {torch.__version__}"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text


def as_dict(result: BenchResult) -> dict:
    return asdict(result)


# ------------------------------------------------------------------------------------------------
# environment throughput
# ------------------------------------------------------------------------------------------------

ENV_CASES = {  # family label: (task, settings)
    "classic (CartPole)": ("gym_CartPole-v1", {}),
    "atari (Pong, repeat 4)": ("atari_pong", {"action_repeat": 4}),
    "dmc proprio (walker_walk)": ("dmc_walker_walk", {"obs": "vector"}),
    "dmc vision (walker_walk)": ("dmc_walker_walk", {"obs": "image"}),
    "crafter": ("crafter", {}),
}


def measure_env(task: str, settings: dict, seconds: float = 3.0) -> dict:
    """Env steps per second (frames for Atari) under uniformly random actions, one process."""
    import numpy as np

    from .envs import make_env

    env = make_env(task, seed=0, **settings)
    rng = np.random.default_rng(0)
    env.step(None)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if env.act_space.discrete:
            action = int(rng.integers(env.act_space.size))
        else:
            action = rng.uniform(-1, 1, env.act_space.size)
        steps += env.step(action).frames
    elapsed = time.perf_counter() - start
    env.close()
    return {"task": task, "env_steps_per_s": steps / elapsed, "policy_steps_per_s": steps / env.action_repeat / elapsed}
