"""A grid from what the user asked for: every input checked before anything is written.

``GridOptions`` is what ``run`` and ``ablate`` share; ``build_grid`` turns it and the variants into
the grid's runs (tasks × variants × seeds, seed-major), probing every task's environment and
building every run's agent configuration on the way. A bad input raises ``GridError`` with the one
line the command line prints; nothing has been written then. ``queue`` then makes the grid visible
to ``status`` (a pending status file per run).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..results import writable, write_status
from .evaluate import EvalSettings
from .live import check_loggers
from .run import ConfigMismatch, Run, RunSpec


class GridError(ValueError):
    """A user's input that cannot make a grid: one line, naming the valid choices."""


@dataclass
class GridOptions:
    """What ``run`` and ``ablate`` share: which runs, with which settings, and where they train."""

    suite: str  # a suite name or a path to a suite file
    tasks: list[str] = field(default_factory=list)  # a subset of the suite's tasks (all when empty)
    seeds: str | None = None  # a count "3", a list "0,4,7", one seed "0," or a range "5-9"
    steps: int | None = None  # env steps per run, overriding the suite's budgets
    size: str | None = None  # a model preset, overriding the suite's
    train_ratio: float | None = None  # replayed steps per policy step, overriding the suite's
    device: str = "cpu"
    sets: dict[str, str] = field(default_factory=dict)  # agent fields, as `--set key=value` gave them
    results: Path = Path("results")
    jobs: int = 1  # runs at once (local backend)
    backend: str = "local"  # local or dask
    address: str | None = None  # the Dask scheduler
    retries: int = 0
    checkpoint_minutes: float = 10.0
    log_updates: int = 0  # a metrics row after every N updates too (0: every 30 s only)
    progress_minutes: float = 10.0  # a progress line this often when stdout is not a terminal (0: none)
    threads: int = 0  # torch threads per run (0: cores / jobs locally)
    keep_replay: bool = False
    dry_run: bool = False
    log: list[str] = field(default_factory=list)  # live loggers beside the JSONL files (runner/live.py)
    eval_every: int = 0  # evaluation episodes every N env steps (runner/evaluate.py)
    eval_episodes: int = 10
    eval_mode: str = "sample"
    plugins: list[str] = field(default_factory=list)  # users' techniques (agent/plugins.py), as runs record them
    pack: str | None = None  # seeds per process with batched updates (runner/pack.py): a number, or auto
    # (the bench cache); None: auto, quietly unpacked where the cache has no packed figures


def build_grid(opts: GridOptions, variants: list[tuple[str, ...]],
               warn: Callable[[str], None] = lambda message: None) -> list[RunSpec]:
    """The grid's runs, every input checked (``GridError`` otherwise); ``warn`` hears of the
    (variant, task) pairs skipped because a technique cannot act on the task."""
    from ..agent import techniques
    from ..agent.config import PRESETS, ConfigError
    from ..agent.plugins import PluginError, check_settings, load_all
    from ..envs import check_task, observation_kinds, probe
    from ..suites import SuiteError, load

    try:
        suite = load(opts.suite)
        specs = suite.select(opts.tasks)
    except SuiteError as e:
        raise GridError(str(e)) from None
    check_options(opts, PRESETS)
    try:
        load_all(opts.plugins)
    except PluginError as e:
        raise GridError(str(e)) from None
    runs, skipped = [], []
    for spec in specs:
        kinds = None
        if spec.family == "gym":  # gymnasium ids and users' entry points: probed before anything is written
            try:
                space = probe(spec.task, spec.env)
            except Exception as e:  # noqa: BLE001 - a task that cannot be built is the user's input
                raise GridError(f"task {spec.task}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            kinds = {"image" if len(shape) == 3 else "vector" for shape in space.values()}
        elif opts.backend != "dask":  # Atari games, DMC tasks, Crafter: built once with their settings
            # (names and values checked); on Dask the workers build them, and this machine may lack their packages
            try:
                check_task(spec.task, spec.env)
            except Exception as e:  # noqa: BLE001 - an unknown name or setting is the user's input
                raise GridError(f"task {spec.task}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        for off in variants:
            if any(techniques.BY_NAME[n].needs for n in off):
                if kinds is None:
                    kinds = observation_kinds(spec.task, spec.env)
                idle = techniques.inert(off, kinds)
                if idle:
                    skipped.append(f"skipping {techniques.variant_name(off, load_all(opts.plugins))} on {spec.task}: {', '.join(idle)} cannot act on "
                         f"its {'+'.join(sorted(kinds))} observations (the run would be the full agent)")
                    continue
            for seed in seed_list(opts.seeds, spec.seeds):
                run = RunSpec(suite=suite.name, task=spec.to_dict(), off=off, seed=seed, results=str(opts.results),
                              steps=opts.steps, preset=opts.size, train_ratio=opts.train_ratio, sets=opts.sets,
                              device=opts.device, threads=opts.threads, checkpoint_minutes=opts.checkpoint_minutes,
                              log_updates=opts.log_updates, keep_replay=opts.keep_replay, live=tuple(dict.fromkeys(opts.log)),
                              eval_every=opts.eval_every, eval_episodes=opts.eval_episodes, eval_mode=opts.eval_mode,
                              plugins=tuple(opts.plugins))
                try:
                    check_settings(run.agent_config())  # a bad --set value fails here, or a plug-in's own check
                except (ConfigError, PluginError) as e:
                    raise GridError(str(e)) from None
                runs.append(run)
    ablated = [off for off in variants if off]
    if ablated and not any(r.off for r in runs):  # only the full agent is left: not the ablation asked for
        names = sorted({n for off in ablated for n in off})
        raise GridError(f"--off {', '.join(names)} cannot act on any task of this grid "
                        f"({', '.join(spec.task for spec in specs)}), so there is nothing to ablate; valid here: "
                        "techniques that act on these tasks' observations (`dreamer-bench tricks`)")
    for message in skipped:  # said once the grid stands, so that a refused one is one line
        warn(message)
    # Seed-major order: every task and variant gets its first seed before any gets its second, so a
    # grid stopped part-way (or still running) already compares every variant.
    order = {seed: i for i, seed in enumerate(dict.fromkeys(r.seed for r in runs))}
    return sorted(runs, key=lambda r: order[r.seed])


def check_options(opts: GridOptions, presets) -> None:
    """The options that do not depend on a task, one message each."""
    if opts.steps is not None and opts.steps < 1:
        raise GridError(f"--steps must be a positive number of env steps, got {opts.steps}")
    if opts.train_ratio is not None and not (math.isfinite(opts.train_ratio) and opts.train_ratio > 0):
        raise GridError(f"--train-ratio must be a finite number > 0, got {opts.train_ratio}")
    if opts.size is not None and opts.size not in presets:
        raise GridError(f"unknown size {opts.size!r}; valid: {', '.join(presets)}")
    if opts.backend not in ("local", "dask"):
        raise GridError(f"unknown backend {opts.backend!r}; valid: local, dask")
    pack = "auto" if opts.pack is None else str(opts.pack).strip()
    if pack != "auto" and not (pack.isdigit() and 1 <= int(pack) <= 64):
        raise GridError(f"--pack takes a number of seeds per process from 1 to 64, or auto; got {opts.pack!r}")
    if opts.backend == "dask" and not opts.address:
        raise GridError("--backend dask needs --address tcp://HOST:PORT of a running Dask scheduler")
    if opts.backend == "local" and opts.address:
        raise GridError("--address is for --backend dask; the local backend would ignore it")
    if opts.backend == "dask":
        check_scheduler(opts.address)
    if opts.jobs < 1:
        raise GridError(f"--jobs must be ≥ 1, got {opts.jobs}")
    if opts.retries < 0:
        raise GridError(f"--retries must be ≥ 0, got {opts.retries}")
    if not (math.isfinite(opts.checkpoint_minutes) and opts.checkpoint_minutes > 0):
        raise GridError(f"--checkpoint-minutes must be a finite number > 0, got {opts.checkpoint_minutes}")
    if not (math.isfinite(opts.progress_minutes) and opts.progress_minutes >= 0):
        raise GridError(f"--progress-minutes must be a finite number ≥ 0 (0: no progress lines), got {opts.progress_minutes}")
    if opts.log_updates < 0:
        raise GridError(f"--log-updates must be ≥ 0 (0: a metrics row every 30 s only), got {opts.log_updates}")
    if opts.threads < 0:
        raise GridError(f"--threads must be ≥ 0 (0: cores / jobs), got {opts.threads}")
    check_device(opts.device)
    try:
        check_loggers(opts.log)
        EvalSettings(opts.eval_every, opts.eval_episodes, opts.eval_mode).check()
    except ValueError as e:
        raise GridError(str(e)) from None
    if not writable(opts.results):
        raise GridError(f"results directory {opts.results} is a file, not a directory" if os.path.isfile(opts.results)
                        else f"results directory {opts.results} is not writable")


MAX_SEED = 2**31 - 1  # environment and evaluation seeds are derived modulo 2**31
MAX_SEEDS = 10_000  # seeds in one grid


def seed_list(text: str | None, default: int) -> list[int]:
    """``3`` → seeds 0, 1, 2; ``0,4,7`` → those seeds; ``5-9`` → seeds 5 to 9; ``0,`` → seed 0 alone;
    None → the suite's count."""
    if text is None:
        return list(range(default))
    text = text.replace(" ", "")
    usage = f"--seeds must be a count (3), a list (0,4,7) or a range (5-9), got {text!r}"
    if not text.strip(",") or ",," in text or text.startswith(","):  # an empty item is a typo, not a seed
        raise GridError(usage)
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            bounds = [lo, hi]
        else:
            bounds = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise GridError(usage) from None
    if "," not in text and "-" not in text:
        if bounds[0] < 1:
            raise GridError("--seeds count must be ≥ 1 (for seed 0 alone write --seeds 0,)")
        if bounds[0] > MAX_SEEDS:
            raise GridError(f"--seeds count must be at most {MAX_SEEDS:,}, got {bounds[0]:,}")
        return list(range(bounds[0]))
    if any(v < 0 for v in bounds) or max(bounds) > MAX_SEED:
        raise GridError(f"--seeds must be whole numbers from 0 to {MAX_SEED:,}, got {text!r}")
    values = list(range(bounds[0], bounds[1] + 1)) if "," not in text else bounds
    if not values or len(set(values)) != len(values) or len(values) > MAX_SEEDS:
        raise GridError(f"--seeds must name 1 to {MAX_SEEDS:,} distinct seeds, got {text!r}")
    return values


def check_device(device: str) -> None:
    if device == "cpu":
        return
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise GridError(f"device {device!r} is not available (no CUDA); valid here: cpu")
        count = torch.cuda.device_count()
        index = device.partition(":")[2]
        if device != "cuda" and (not index.isdigit() or int(index) >= count):
            valid = ", ".join(["cuda"] + [f"cuda:{i}" for i in range(count)])
            raise GridError(f"device {device!r} is not on this machine; valid here: cpu, {valid}")
        return
    raise GridError(f"unknown device {device!r}; valid: cpu, cuda, cuda:N")


def check_scheduler(address: str) -> None:
    """A Dask scheduler address that is well formed and answers, before anything is written."""
    if not re.fullmatch(r"(tcp|tls|ucx)://[^\s:/]+:\d{1,5}", address or ""):
        raise GridError(f"--address must look like tcp://HOST:PORT (a Dask scheduler), got {address!r}")
    try:
        from distributed import Client
    except ImportError:
        raise GridError("--backend dask needs the cluster extra: pip install 'dreamer-bench[cluster]'") from None
    try:
        with Client(address, timeout="5s"):
            pass
    except Exception as e:  # noqa: BLE001 - whatever the connection raises, one line
        raise GridError(f"no Dask scheduler answers at {address} within 5 s ({type(e).__name__})") from None


def check_existing(runs: list[RunSpec]) -> None:
    """Refuse, before anything starts, to reuse a run made with another configuration."""
    for run in runs:
        try:
            Run(run).check_config()
        except ConfigMismatch as e:
            raise GridError(f"{e}; use another --results directory or the same settings") from None


def queue(runs: list[RunSpec]) -> None:
    """A pending status file for every run not yet known, so the whole grid shows in `status`."""
    for run in runs:
        if not (run.directory / "status.json").exists():
            run.directory.mkdir(parents=True, exist_ok=True)
            write_status(run.directory, state="pending", budget=run.budget())


def process_threads(opts: GridOptions) -> int:
    """The torch threads each of the grid's processes gets (``--threads``, else cores / jobs)."""
    from .grid import threads_per_run

    return opts.threads or threads_per_run(opts.jobs)


def resolve_pack(opts: GridOptions, runs: list[RunSpec]) -> tuple[int, list[str]]:
    """The seeds per process the grid trains with, and the lines that say how it packs."""
    from .grid import pack_groups, unpackable
    from .plan import choose_pack

    lines = []
    asked = opts.pack is not None  # --pack given; by default (auto) an unpacked grid says nothing of it
    auto = str(opts.pack or "auto") == "auto"
    if auto and opts.backend == "dask":
        pack, why = 1, ("--pack auto: the bench cache measured this machine, not the Dask workers', so runs train "
                        "unpacked (give --pack K to pack K seeds per task)")
        lines += [why] if asked else []
    elif auto:
        pack, why = choose_pack(runs, process_threads(opts))
        lines += [why] if asked or pack > 1 else []
    else:
        pack = int(opts.pack)
    if pack > 1:
        reasons = sorted({why for why in map(unpackable, runs) if why})
        lines += [f"not packed: {why}" for why in reasons]
        groups = pack_groups(runs, pack)
        packed = [g for g in groups if len(g) > 1]
        lines.append(f"packing: {sum(map(len, packed))} of {len(runs)} runs in {len(packed)} process(es) of up to "
                     f"{pack} seeds; {len(groups) - len(packed)} run(s) alone")
    return pack, lines
