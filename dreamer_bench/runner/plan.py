"""The cost of a grid before it starts: gradient updates, and hours at this machine's speed.

Seconds per update come from the benchmark cache that ``dreamer-bench bench`` writes
(``~/.cache/dreamer-bench/bench.json``); for small presets without a cached figure, two updates
are timed on the spot. Environment time is not included.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from ..results import atomic_write_json, read_status
from .run import RunSpec
from .schedule import planned_updates

MEASURE_ON_THE_SPOT = ("debug", "size1m")


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dreamer-bench" / "bench.json"


def cache_key(device: str, size: str, obs: str, compiled: bool = False) -> str:
    return f"{device}|{size}|{obs}" + ("|compiled" if compiled else "")


def remember(results: list[dict]) -> None:
    """Store benchmark results (fp32, the default path) for later estimates."""
    path = cache_path()
    try:
        cache = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        cache = {}
    for r in results:
        if r.get("precision", "fp32") == "fp32":
            key = cache_key(r["device"], r["size"], r["obs"], r.get("compile", False))
            pack = int(r.get("pack", 1))
            if pack == 1:
                cache[key] = 1.0 / r["updates_per_s"]
            # seconds per seed-update of a (packed, agent/packed.py) update of `pack` seeds at the
            # bench's thread count: packing is judged against unpacked runs on as many threads
            cache[f"{key}|threads={int(r.get('threads', 0))}|pack={pack}"] = 1.0 / r["seed_updates_per_s"]
    atomic_write_json(path, cache)


def pack_speedups(device: str, size: str, obs: str, threads: int, compiled: bool = False) -> dict[int, float]:
    """Seed-updates per second of each packing measured at ``threads`` torch threads over the
    unpacked update's at as many threads, from the bench cache (``bench --pack 1,2,4,8 --threads
    N`` fills it); {} when it has no such figures."""
    try:
        cache = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    key = f"{cache_key(device, size, obs, compiled)}|threads={threads}|pack="
    base = cache.get(key + "1")
    if base is None:
        return {}
    out = {int(name[len(key):]): base / seconds for name, seconds in cache.items()
           if name.startswith(key) and name[len(key):] != "1"}
    return dict(sorted(out.items()))


def choose_pack(runs: list[RunSpec], threads: int) -> tuple[int, str]:
    """``--pack auto``: the packing the bench cache says is fastest per seed for the grid's model
    on this device at ``threads`` torch threads per process (what each of the grid's ``--jobs``
    processes gets), 1 when no packing measured faster, and a line saying why."""
    if not runs:
        return 1, "no runs"
    first = runs[0]
    size, obs, device = first.settings()["preset"], obs_kind(first.task), first.device
    speedups = pack_speedups(device, size, obs, threads)
    where = f"{size} {obs} on {device} at {threads} thread(s) per process"
    if not speedups:
        return 1, (f"--pack auto: no packed figures for {where} in the bench cache, so runs train unpacked "
                   f"(`dreamer-bench bench --size {size} --obs {obs} --threads {threads} --pack 1,2,4,8` measures them)")
    best = max(speedups, key=speedups.get)
    if speedups[best] <= 1.05:
        return 1, (f"--pack auto: packing measured no faster per seed for {where} "
                   f"({', '.join(f'{k}: ×{v:.2f}' for k, v in speedups.items())}): runs train unpacked")
    return best, (f"--pack auto: {best} seeds per process, ×{speedups[best]:.2f} the seed-updates/s of unpacked runs "
                  f"for {where} (bench cache)")


def obs_kind(task: dict) -> str:
    """The benchmark's observation kind for a task: image if it has an image (gymnasium and
    entry-point tasks are built to see), else vector."""
    from ..envs import observation_kinds

    try:
        kinds = observation_kinds(task["task"], task.get("env", {}))
    except Exception:  # noqa: BLE001 - the grid probes tasks before it plans; be lenient here
        kinds = {"image"} if task["family"] in ("atari", "crafter") else {"vector"}
    return "image" if "image" in kinds else "vector"


def seconds_per_update(size: str, obs: str, device: str, measured: dict, compiled: bool = False) -> float | None:
    key = cache_key(device, size, obs, compiled)
    if key in measured:
        return measured[key]
    try:
        cache = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        cache = {}
    sources = measured.setdefault("sources", {})
    if key in cache:
        measured[key] = cache[key]
        sources[key] = f"{size} {obs} on {device}{' compiled' if compiled else ''}: from the bench cache ({cache_path()})"
    elif compiled:  # no compiled figure: the eager one is an upper bound
        measured[key] = seconds_per_update(size, obs, device, measured)
        sources[key] = (f"{size} {obs} on {device} compiled: no compiled figure, the eager one is used "
                        f"(an upper bound; `dreamer-bench bench --compile` measures it)")
    elif size in MEASURE_ON_THE_SPOT:
        measured[key] = _measure(size, obs, device)
        sources[key] = (f"{size} {obs} on {device}: measured now, 2 eager updates after 1 warm-up, on this machine "
                        f"as loaded now (`dreamer-bench bench` stores a steadier figure)")
    else:
        measured[key] = None
    return measured[key]


def _measure(size: str, obs: str, device: str) -> float:
    from ..agent import Agent, make_config
    from ..agent.synthetic import random_batch
    from ..bench import ACT_SPACES, OBS_SPACES

    cfg = make_config(size, overrides={"device": device})
    agent = Agent(OBS_SPACES[obs], ACT_SPACES[obs], cfg)
    batch = random_batch(OBS_SPACES[obs], ACT_SPACES[obs], cfg)
    agent.train(dict(batch))
    start = time.perf_counter()
    for _ in range(2):
        agent.train(dict(batch))
    return (time.perf_counter() - start) / 2


def updates_per_run(run: RunSpec) -> int:
    settings = run.settings()
    cfg = run.agent_config()
    # every environment's step (resets too) counts action_repeat env steps; the loop stops once
    # the budget is reached, before storing that last round of steps
    envs = settings["envs"]
    policy_steps = envs * math.ceil(run.budget() / (settings["action_repeat"] * envs)) - envs
    return planned_updates(policy_steps, settings["envs"], settings["train_ratio"], cfg.batch_size, cfg.batch_length)


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    hours = seconds / 3600
    return f"{hours:.2f} h" if hours < 48 else f"{hours / 24:.1f} days"


def plan_rows(runs: list[RunSpec], pack: int = 1, threads: int = 1) -> tuple[list[dict], dict]:
    """Rows per (suite, variant, task) and the totals; with ``pack`` > 1 the hours of runs that
    would be packed are divided by the bench cache's measured speed-up of that packing at
    ``threads`` torch threads per process."""
    groups: dict[tuple, list[RunSpec]] = {}
    for r in runs:
        groups.setdefault((r.suite, r.variant, r.task_name), []).append(r)
    measured: dict = {}
    rows, total_updates, total_seconds, unknown = [], 0, 0.0, []
    for (suite, variant, task), members in groups.items():
        first = members[0]
        size = first.settings()["preset"]
        per_update = seconds_per_update(size, obs_kind(first.task), first.device, measured,
                                        first.agent_config().compile)
        updates = updates_per_run(first)
        states = [read_status(m.directory).get("state", "new") for m in members]
        remaining = [m for m, s in zip(members, states) if s != "done"]
        total_updates += updates * len(members)
        if per_update is None:
            unknown.append(size)
        else:
            speedup = 1.0
            if pack > 1 and len(remaining) > 1:
                from .grid import unpackable

                measured_packs = pack_speedups(first.device, size, obs_kind(first.task), threads)
                k = min(pack, len(remaining))
                if not unpackable(first) and k in measured_packs:
                    speedup = measured_packs[k]
                elif not unpackable(first):
                    measured.setdefault("sources", {})[f"pack{k}"] = (
                        f"packing {k} seeds: no measured speed-up in the bench cache, so counted as unpacked "
                        f"(`dreamer-bench bench --threads {threads} --pack 1,{k}` measures it)")
            total_seconds += per_update * updates * len(remaining) / speedup
        rows.append({"suite": suite, "variant": variant, "task": task,
                     "seeds": ",".join(str(m.seed) for m in members), "steps": first.budget(), "updates": updates,
                     "seconds_text": "?" if per_update is None else f"{per_update:.3f}",
                     "hours_text": _hours(None if per_update is None else per_update * updates),
                     "state": ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))})
    total = {"updates": total_updates, "hours_text": _hours(total_seconds) + (" + ?" if unknown else ""),
             "sources": list(dict.fromkeys(measured.get("sources", {}).values()))}
    if unknown:
        sizes = ", ".join(sorted(set(unknown)))
        total["note"] = (f"No measured speed for {sizes} on this device: run `dreamer-bench bench --size "
                         f"{sorted(set(unknown))[0]}` once to include it in the estimate.")
    return rows, total
