"""The ``dreamer-bench`` command line: parse, validate, hand on.

A user's mistake is one line on stderr naming the valid choices, and exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .agent import techniques
from .agent.config import ALIASES, FIELDS, PRESETS, ConfigError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark DreamerV3 and ablate its robustness techniques.",
    pretty_exceptions_enable=False,
)
console = Console()


def fail(message: str) -> None:
    """A user's mistake: one line, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def folder(text: str) -> Path:
    """A path given on the command line: an empty one is a mistake, not the current directory."""
    if not str(text).strip():
        raise typer.BadParameter("an empty path")
    return Path(text)


def split_list(values: Optional[List[str]], flag: str | None = None) -> list[str]:
    """Accept repeated options and comma-separated lists alike. With ``flag``, an empty value or
    an empty item (``a,,b``; a trailing comma is allowed) is refused: it is a typo, and read as
    nothing it could widen a command to everything (an empty --tasks is the whole suite)."""
    out: list[str] = []
    for v in values or []:
        items = [x.strip() for x in v.split(",")]
        if flag and (not any(items) or not all(items[:-1])):
            fail(f"{flag} has an empty name in {v!r}; give one or more names separated by commas")
        out += [x for x in items if x]
    return out


RUNNER_FIELDS = {"device": "--device", "seed": "--seeds"}  # agent fields each run sets itself


def parse_sets(values: Optional[List[str]]) -> dict[str, str]:
    """``--set key=value`` pairs; the values are parsed against the config field types later."""
    out = {}
    for item in values or []:
        if "=" not in item:
            fail(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key == "off":
            fail("techniques are switched off with `dreamer-bench ablate --off NAME`, not --set off=…; "
                 f"valid: {', '.join(techniques.names())}")
        if key in RUNNER_FIELDS:
            fail(f"{key} is set with {RUNNER_FIELDS[key]}, not --set {key}=… (which the runner would override)")
        if key in ("plugins", "plugin_settings"):
            fail("users' techniques are loaded with --plugin FILE_OR_MODULE and set with --set NAME.KEY=VALUE")
        if "." in key:  # a plug-in's own setting
            from .agent.plugins import PluginError, parse_setting

            try:
                parse_setting(key, value.strip())
            except PluginError as e:
                fail(f"--set {key}: {e}")
        elif key not in FIELDS and key not in ALIASES:
            fail(f"unknown config field {key!r} in --set; valid: {', '.join(FIELDS)}")
        out[key] = value.strip()
    return out


def load_plugins(refs: list[str]) -> list[str]:
    """Load the users' techniques ``--plugin`` names; the references as runs record them."""
    from .agent.plugins import PluginError, load_all, recorded_refs

    try:
        return sorted(set(recorded_refs(load_all(refs)).values()))
    except PluginError as e:
        fail(str(e))


def checked_techniques(names: list[str]) -> tuple[str, ...]:
    try:
        return techniques.validate(names)
    except techniques.UnknownTechnique as e:
        fail(str(e))


@app.command()
def tricks(
    names: Optional[List[str]] = typer.Argument(None, help="Show only these techniques."),
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the registry as a Markdown table (the README's)."),
    plugin: Optional[List[str]] = typer.Option(None, "--plugin", help="Also list the techniques of this file, module or entry point (repeatable)."),
) -> None:
    """List the robustness techniques that can be switched off with --off NAME: the built-in ones,
    the plug-ins installed packages declare, and those named with --plugin."""
    from .agent.plugins import PluginError, installed, load

    if as_json and markdown:
        fail("--json and --markdown are two formats of one list: give one of them")

    for ref in installed():  # a broken installed plug-in does not hide the others
        try:
            load(ref)
        except PluginError as e:
            warn(str(e))
    load_plugins(split_list(plugin, "--plugin"))
    chosen = checked_techniques(split_list(names, "NAMES")) or techniques.names()
    rows = [techniques.BY_NAME[n] for n in techniques.names() if n in chosen]
    if as_json:
        typer.echo(json.dumps([t.to_dict() for t in rows], indent=2))
        return
    if markdown:
        typer.echo(techniques.markdown_table(rows))
        return
    table = Table(title="DreamerV3 robustness techniques and loaded plug-ins (all on by default)", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("on (full agent)")
    table.add_column("off (--off NAME)")
    table.add_column("code")
    for t in rows:
        table.add_row(t.name, t.on, t.off, t.code)
    Console(width=max(console.width, 140)).print(table)


@app.command()
def bench(
    ctx: typer.Context,
    sizes: List[str] = typer.Option(["size1m", "size12m"], "--size", help="Model presets (repeatable or comma-separated)."),
    obs: List[str] = typer.Option(["vector", "image"], "--obs", help="Observation kinds: vector, image."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    precision: List[str] = typer.Option(["fp32"], "--precision", help="fp32 and/or bf16."),
    compile: bool = typer.Option(False, "--compile/--no-compile", help="torch.compile the training step."),
    updates: int = typer.Option(10, help="Timed updates per configuration."),
    warmup: int = typer.Option(3, help="Untimed updates first (compilation, allocator)."),
    threads: int = typer.Option(0, help="torch threads (0: all cores)."),
    off: Optional[List[str]] = typer.Option(None, "--off", help="Techniques switched off."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help="Config overrides key=value."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON.", parser=folder),
    envs: bool = typer.Option(False, "--envs", help="Measure environment steps per second per family instead."),
    seconds: float = typer.Option(3.0, help="Seconds per environment (--envs)."),
    pack: str = typer.Option("1", "--pack", help="Seeds per packed update, e.g. 1,2,4,8 (1: the unpacked update); per-seed updates/s are compared."),
) -> None:
    """Measure training updates per second and peak memory (batch 16×64 unless --set), or with
    --envs the environment steps per second of each family."""
    if json_out is not None:  # checked before anything is measured
        check_writable(json_out.parent if str(json_out.parent) else Path("."), "--json file's directory")
        if json_out.is_dir():
            fail(f"--json {json_out} is a directory; give a file name")
    # the options typed on the command line, by their flag (typer's own click has its own ParameterSource: by name)
    given = ["/".join([*p.opts, *getattr(p, "secondary_opts", [])]) for p in ctx.command.params
             if getattr(ctx.get_parameter_source(p.name), "name", "") == "COMMANDLINE"]
    if envs:
        update_only = [g for g in given if g not in ("--envs", "--seconds", "--json")]
        if update_only:
            one = len(update_only) == 1
            fail(f"--envs measures environments only, so {', '.join(update_only)} (training update option"
                 f"{'' if one else 's'}) {'does' if one else 'do'} not apply: leave {'it' if one else 'them'} out")
        if not (math.isfinite(seconds) and seconds > 0):
            fail(f"--seconds must be a finite number > 0, got {seconds}")
        return bench_envs(seconds, json_out)
    if "--seconds" in given:
        fail("--seconds is for --envs; the update is timed by --updates")
    if threads < 0:
        fail(f"--threads must be ≥ 0 (0: all cores), got {threads}")
    cases, overrides = bench_cases(sizes, obs, precision, device, updates, warmup, off, sets)
    packs = bench_packs(pack)
    cases = [(*case, k) for case in cases for k in packs]
    threads = threads or os.cpu_count() or 1
    results = bench_measure(cases, device, compile, updates, warmup, threads, overrides)
    bench_store(results, overrides, warmup, json_out, device)


def bench_cases(sizes, obs, precision, device, updates, warmup, off, sets) -> tuple[list[tuple[str, str, str]], dict]:
    """Every (size, obs, precision) to measure, and the agent overrides; any bad value fails
    here, before anything is measured."""
    from . import bench as bench_mod
    from .agent.config import make_config

    sizes, kinds, precisions = split_list(sizes, "--size"), split_list(obs, "--obs"), split_list(precision, "--precision")
    for s in sizes:
        if s not in PRESETS:
            fail(f"unknown size {s!r}; valid: {', '.join(PRESETS)}")
    for k in kinds:
        if k not in bench_mod.OBS_SPACES:
            fail(f"unknown observation kind {k!r}; valid: {', '.join(bench_mod.OBS_SPACES)}")
    for p in precisions:
        if p not in ("fp32", "bf16"):
            fail(f"unknown precision {p!r}; valid: fp32, bf16")
    if updates < 1 or warmup < 0:
        fail("--updates must be ≥ 1 and --warmup ≥ 0")
    check_device(device)
    overrides = parse_sets(sets)
    overrides["off"] = ",".join(checked_techniques(split_list(off, "--off")))
    for s in sizes:
        make_config(s, overrides=overrides)  # a bad --set value fails here
    return [(s, k, p) for s in sizes for k in kinds for p in precisions], overrides


def bench_packs(text: str) -> list[int]:
    """``--pack 1,2,4,8`` → [1, 2, 4, 8]; one line naming what is valid otherwise."""
    try:
        packs = [int(x) for x in split_list([text], "--pack")]
    except ValueError:
        packs = []
    if not packs or any(k < 1 or k > 64 for k in packs):
        fail(f"--pack takes seeds per packed update from 1 to 64, comma-separated (e.g. 1,2,4,8); got {text!r}")
    return list(dict.fromkeys(packs))


def bench_measure(cases, device, compile, updates, warmup, threads, overrides) -> list:
    """Measure each case in its own process, printing a line per case and the table at the end.
    A case is (size, obs, precision, pack); per-seed updates/s is pack × updates/s."""
    from . import bench as bench_mod

    console.print(f"machine: {bench_mod.machine_description(device)}; device {device}; {threads} threads")
    table = Table(title="training step (one gradient update; packed: K seeds per update)")
    for col in ("size", "obs", "precision", "compile", "pack", "updates/s", "seed-updates/s", "× pack 1",
                "ms/update", "peak MB"):
        table.add_column(col, justify="left" if col in ("size", "obs", "precision", "compile") else "right")
    results, single = [], {}
    for size, kind, prec, pack in cases:
        with console.status(f"{size} {kind} {prec} pack {pack}: {warmup} warm-up + {updates} timed updates"):
            try:
                r = bench_mod.measure_in_subprocess(
                    size=size, obs=kind, device=device, precision=prec, compile=compile,
                    updates=updates, warmup=warmup, threads=threads, overrides=overrides, pack=pack)
            except RuntimeError as e:
                fail(f"{size} {kind} {prec} pack {pack} failed: {e}")
        results.append(r)
        if pack == 1:
            single[(size, kind, prec)] = r.seed_updates_per_s
        base = single.get((size, kind, prec))
        ratio = f"{r.seed_updates_per_s / base:.2f}" if base else "-"
        table.add_row(size, kind, prec, str(compile), str(pack), f"{r.updates_per_s:.2f}", f"{r.seed_updates_per_s:.2f}",
                      ratio, f"{r.ms_per_update:.0f}", f"{r.peak_mb:.0f}")
        console.print(f"{size:8s} {kind:6s} {prec} pack {pack}: {r.seed_updates_per_s:.2f} seed-updates/s "
                      f"({ratio} × pack 1), peak {r.peak_mb:.0f} MB")
    Console(width=max(console.width, 140)).print(table)
    return results


def bench_store(results, overrides, warmup, json_out: Optional[Path], device: str = "cpu") -> None:
    """Keep default configurations measured after a warm-up for `--dry-run` estimates; write
    --json."""
    from . import bench as bench_mod
    from .runner.plan import remember

    if overrides["off"] or len(overrides) > 1 or warmup < 1:  # a technique off, a --set, or no warm-up
        console.print("not stored for --dry-run estimates: only default configurations measured after at least "
                      "one warm-up update are")
    else:
        remember([bench_mod.as_dict(r) for r in results])
    if json_out:
        json_out.write_text(json.dumps({"machine": bench_mod.machine_description(device),
                                        "results": [bench_mod.as_dict(r) for r in results]}, indent=2))


def bench_envs(seconds: float, json_out: Optional[Path]) -> None:
    from . import bench as bench_mod
    from .envs import EnvError

    console.print(f"machine: {bench_mod.machine_description()}; random actions, one process per environment")
    table = Table(title="environment throughput")
    for col in ("family", "task", "env steps/s", "policy steps/s"):
        table.add_column(col)
    results = []
    for label, (task, settings) in bench_mod.ENV_CASES.items():
        with console.status(f"{label}: {seconds:g} s"):
            try:
                r = bench_mod.measure_env(task, settings, seconds)
            except EnvError as e:
                table.add_row(label, task, "-", f"[red]{e}[/red]")
                continue
        results.append({"family": label, **r})
        table.add_row(label, task, f"{r['env_steps_per_s']:.0f}", f"{r['policy_steps_per_s']:.0f}")
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps({"machine": bench_mod.machine_description(), "envs": results}, indent=2))


# ------------------------------------------------------------------------------------------------
# run, ablate, status
# ------------------------------------------------------------------------------------------------

SuiteOpt = typer.Option("smoke", "--suite", help="Suite name (see `dreamer-bench suites`) or path to a suite file.")
TasksOpt = typer.Option(None, "--tasks", help="Only these tasks of the suite (repeatable or comma-separated).")
SeedsOpt = typer.Option(None, "--seeds", help="A count (3 → seeds 0,1,2), a list (0,4,7 or 0, alone) or a range (5-9) of seeds from 0 to 2,147,483,647, at most 10,000; default: the suite's.")
StepsOpt = typer.Option(None, "--steps", help="Env steps per run (Atari: frames), overriding the suite's budget.")
SizeOpt = typer.Option(None, "--size", help="Model preset overriding the suite's (size1m … size400m, debug).")
RatioOpt = typer.Option(None, "--train-ratio", help="Replayed steps per policy step, overriding the suite's.")
DeviceOpt = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.")
SetOpt = typer.Option(None, "--set", help="Agent config override key=value (repeatable); see `tricks` and the README.")
ResultsOpt = typer.Option(Path("results"), "--results", help="Results directory.", parser=folder)
JobsOpt = typer.Option(1, "--jobs", help="Runs trained at the same time (local backend).")
BackendOpt = typer.Option("local", "--backend", help="local (joblib processes) or dask (an existing scheduler).")
AddressOpt = typer.Option(None, "--address", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")
DryOpt = typer.Option(False, "--dry-run", help="Print the grid with its cost and exit.")
RetriesOpt = typer.Option(0, "--retries", help="Retry a failed run this many times.")
CkptOpt = typer.Option(10.0, "--checkpoint-minutes", help="Minutes between checkpoints (work since the last one is lost on a crash).")
LogUpdatesOpt = typer.Option(0, "--log-updates", help="Also write a metrics row after every N updates (1: one row per update; 0: every 30 s only).")
ProgressOpt = typer.Option(10.0, "--progress-minutes", help="When the output is not a terminal (a log file, nohup), a line on the running runs this often: env steps, speed, time left (0: none).")
ThreadsOpt = typer.Option(0, "--threads", help="torch threads per run (0: cores / jobs locally).")
KeepReplayOpt = typer.Option(False, "--keep-replay", help="Keep a finished run's replay in its last checkpoint (for analysis; can be large).")
EvalEveryOpt = typer.Option(0, "--eval-every", help="Evaluation episodes every N env steps, apart from training, and at the end (0: none).")
EvalEpisodesOpt = typer.Option(10, "--eval-episodes", help="Episodes per evaluation.")
EvalModeOpt = typer.Option("sample", "--eval-mode", help="Evaluation actions: sample (as the official agent) or mode (the most likely action).")
PackOpt = typer.Option(None, "--pack", help="Train up to K seeds of a configuration in one process with batched updates: K, or auto (the default: K from the bench cache's `bench --pack` figures, 1 where it has none or packing measured no faster); 1: one run per process.", show_default=False)
PluginOpt = typer.Option(None, "--plugin", help="A technique of your own: a .py file, a module or an installed entry point (repeatable; see the README).")
LogOpt = typer.Option(None, "--log", help="Live metrics beside metrics.jsonl (repeatable): tensorboard (<run>/tensorboard/), wandb (offline unless WANDB_MODE is set).")


def check_writable(path: Path, what: str) -> None:
    from .results import writable

    if os.path.isfile(path):  # (Path.is_file raises where a parent may not be searched)
        fail(f"{what} {path} is a file, not a directory" if "directory" in what else f"{what} {path} is a file")
    if not writable(path):
        fail(f"{what} {path} is not writable")


def check_device(device: str) -> None:
    from .runner.build import GridError, check_device as check

    try:
        check(device)
    except GridError as e:
        fail(str(e))


def print_plan(runs, pack: int = 1, threads: int = 1) -> None:
    from .runner.plan import plan_rows

    rows, total = plan_rows(runs, pack, threads)
    table = Table(title=f"{len(runs)} runs, {total['updates']:,} gradient updates, "
                        f"about {total['hours_text']} of training on this machine")
    for col in ("suite", "variant", "task", "seeds", "env steps", "updates/run", "s/update", "hours/run", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["suite"], r["variant"], r["task"], r["seeds"], f"{r['steps']:,}", f"{r['updates']:,}",
                      r["seconds_text"], r["hours_text"], r["state"])
    Console(width=max(console.width, 140)).print(table)
    for source in total["sources"]:
        typer.echo(f"s/update: {source}")
    if total.get("note"):
        typer.echo(total["note"])


def _grid_options(
    suite: str = SuiteOpt, tasks_: Optional[List[str]] = TasksOpt, seeds: Optional[str] = SeedsOpt,
    steps: Optional[int] = StepsOpt, size: Optional[str] = SizeOpt, train_ratio: Optional[float] = RatioOpt,
    device: str = DeviceOpt, sets: Optional[List[str]] = SetOpt, results: Path = ResultsOpt, jobs: int = JobsOpt,
    backend: str = BackendOpt, address: Optional[str] = AddressOpt, dry_run: bool = DryOpt,
    retries: int = RetriesOpt, checkpoint_minutes: float = CkptOpt, log_updates: int = LogUpdatesOpt,
    progress_minutes: float = ProgressOpt, threads: int = ThreadsOpt, keep_replay: bool = KeepReplayOpt, log: Optional[List[str]] = LogOpt, eval_every: int = EvalEveryOpt,
    eval_episodes: int = EvalEpisodesOpt, eval_mode: str = EvalModeOpt, plugin: Optional[List[str]] = PluginOpt,
    pack: Optional[str] = PackOpt,
) -> None:
    """The options `run` and `ablate` share: their signature only (see grid_command)."""


GRID_PARAMETERS = list(inspect.signature(_grid_options, eval_str=True).parameters.values())


def grid_command(command):
    """Register ``command(<its own options>, grid)`` with the options `run` and `ablate` share
    added to its command line, handed to it as one GridOptions."""
    from .runner.build import GridOptions

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "grid"]
    shared = [p.name for p in GRID_PARAMETERS]

    @functools.wraps(command)
    def with_grid_options(**values):
        given = {name: values.pop(name) for name in shared}
        # the plug-ins first: their names are valid in --off and their settings in --set
        given["plugins"] = load_plugins(split_list(given.pop("plugin"), "--plugin"))
        # the option values as they are, but for the lists the command line still has to parse
        given.update(tasks=split_list(given.pop("tasks_"), "--tasks"), sets=parse_sets(given["sets"]),
                     log=split_list(given["log"], "--log"))
        grid = GridOptions(**given)
        return command(**values, grid=grid)

    parameters = own + GRID_PARAMETERS
    with_grid_options.__signature__ = inspect.Signature(parameters)
    with_grid_options.__annotations__ = {p.name: p.annotation for p in parameters}
    return app.command(command.__name__)(with_grid_options)


def train_grid(grid, variants: list[tuple[str, ...]]) -> None:
    """Build the grid (every input checked first), then print its cost or train it."""
    from .runner.build import GridError, build_grid, check_existing, process_threads, queue, resolve_pack
    from .runner.grid import execute, status_rows, status_table

    try:
        runs = build_grid(grid, variants, warn=warn)
        check_existing(runs)
    except GridError as e:
        fail(str(e))
    pack, pack_lines = resolve_pack(grid, runs)
    if grid.dry_run:
        print_plan(runs, pack, process_threads(grid))
        for line in pack_lines:
            typer.echo(line)
        return
    queue(runs)
    for line in pack_lines:
        console.print(line)
    console.print(f"training {len(runs)} runs into {grid.results} with {grid.jobs} job(s) on {grid.backend}")
    results = execute(runs, jobs=grid.jobs, backend=grid.backend, address=grid.address, retries=grid.retries,
                      pack=pack, progress_seconds=60 * grid.progress_minutes)
    rows = status_rows([r.directory for r in runs])
    Console(width=max(console.width, 140)).print(status_table(rows, title="summary"))
    failed = [r for r in results if r["state"] not in ("done",)]
    for r in failed:
        typer.echo(f"{r['label']}: {r['state']}: {r.get('error')}", err=True)
    if failed:
        raise typer.Exit(1)


@grid_command
def run(grid) -> None:
    """Train the full agent on every task of a suite over several seeds (resumable: rerun to continue)."""
    train_grid(grid, variants=[()])


@grid_command
def ablate(
    off: Optional[List[str]] = typer.Option(None, "--off", help="Techniques switched off together in one variant (repeatable)."),
    each: bool = typer.Option(False, "--each", help="One variant per technique (all of `tricks`, or those given with --off)."),
    grid=None,
) -> None:
    """Train variants with techniques switched off, beside the full agent (shared with `run`)."""
    from .agent.plugins import load_all

    known = techniques.NAMES + load_all(grid.plugins)  # the built-ins and this grid's plug-ins
    names = checked_techniques(split_list(off, "--off"))
    stray = [n for n in names if n not in known]
    if stray:
        fail(f"technique {', '.join(stray)} is a plug-in this command does not load (--plugin); valid: {', '.join(known)}")
    if not names and not each:
        fail(f"give --off NAME (repeatable) or --each; valid names: {', '.join(known)}")
    variants = [()] + [(n,) for n in (names or known)] if each else [(), names]
    train_grid(grid, variants)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run's folder (results/<suite>/<variant>/<task>/seed_<n>).", parser=folder),
    episodes: int = typer.Option(3, "--episodes", help="Fresh episodes to play and predict."),
    context: int = typer.Option(5, "--context", help="Steps the model observes before it imagines."),
    window: int = typer.Option(50, "--window", help="Steps per window (context included)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the episodes' environments and of the model's draws."),
    device: str = DeviceOpt,
) -> None:
    """Open-loop world-model predictions of a run's latest checkpoint, into RUN_DIR/predictions/."""
    from .runner.predict import PredictError, predict as run_predict

    if episodes < 1:
        fail(f"--episodes must be ≥ 1, got {episodes}")
    if not 1 <= context < window:
        fail(f"--context must be ≥ 1 and below --window ({window}), got {context}")
    check_device(device)
    if not (run_dir / "config.json").is_file():
        fail(f"{run_dir} is not a run folder (it has no config.json); runs are in results/<suite>/<variant>/<task>/seed_<n>")
    check_writable(run_dir / "predictions", "predictions folder")
    try:
        with console.status("playing episodes and predicting"):
            record = run_predict(run_dir, episodes=episodes, context=context, window=window, seed=seed, device=device)
    except PredictError as e:
        fail(str(e))
    s = record["seconds"]
    console.print(f"predictions of {record['task']} after {record['updates']:,} updates written to "
                  f"{run_dir / 'predictions'} ({len(record['episodes'])} episodes; load {s['load']} s, play "
                  f"{s['collect']} s, predict and draw {s['predict_and_draw']} s)")


@app.command()
def status(results: Path = typer.Argument(Path("results"), help="Results directory.", parser=folder),
           as_json: bool = typer.Option(False, "--json", help="One JSON list of the runs on stdout, for scripts.")) -> None:
    """Print the state of every run in a results directory."""
    from .results import find_runs
    from .runner.grid import status_rows, status_table

    if not results.is_dir():
        fail(f"{results} is a file, not a results directory" if results.exists()
             else f"results directory {results} does not exist")
    dirs = find_runs(results)
    if not dirs:
        fail(f"no runs in {results}")
    if as_json:  # valid JSON for any reader: a non-finite number (a NaN return) is written null
        rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in status_rows(dirs)]
        print(json.dumps(rows, indent=1, allow_nan=False))
        return
    Console(width=max(console.width, 140)).print(status_table(status_rows(dirs), title=str(results)))


@app.command()
def report(
    results: Optional[List[Path]] = typer.Argument(None, help="Results directory, or a .tar.gz of one (committed evidence); several are reported as one (default: results).", show_default=False, parser=folder),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: RESULTS/report; NAME_report beside an archive NAME.tar.gz).", parser=folder),
    suite: Optional[List[str]] = typer.Option(None, "--suite", help="Only these suites."),
    variants: Optional[List[str]] = typer.Option(None, "--variants", help="Only these variants (full, off-symlog, …)."),
    tasks_: Optional[List[str]] = typer.Option(None, "--tasks", help="Only these tasks."),
    compare: Optional[List[str]] = typer.Option(None, "--compare", help="Reference runs to draw beside yours: dreamerv3 (published), official (the official agent at the learning suite's settings)."),
    scores: Optional[List[Path]] = typer.Option(None, "--scores", help="Extra runs from an official score file {task, method, seed, xs, ys}."),
    include_unfinished: bool = typer.Option(False, "--include-unfinished", help="Include runs that have not finished: drawn and counted as unfinished, not judged by the targets."),
    html: bool = typer.Option(False, "--html", help="Also write report.html: one self-contained file, figures embedded."),
    episodes: str = typer.Option("train", "--episodes", help="Score the training episodes (train) or the evaluation episodes of --eval-every (eval)."),
    reps: int = typer.Option(50_000, "--reps", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (the report is repeatable for a seed)."),
) -> None:
    """Normalised score tables with bootstrap confidence intervals, learning curves and ablation plots."""
    import warnings

    from .report.build import ReportOptions, make_report
    from .report.data import COMPARE_NAMES, ReportError, is_archive

    for name in split_list(compare, "--compare"):
        if name not in COMPARE_NAMES:
            fail(f"unknown --compare {name!r}; valid: {', '.join(COMPARE_NAMES)}")
    from .results import read_score_file

    if len({str(p.resolve()) for p in scores or []}) != len(scores or []):
        fail("a --scores file is named twice (its runs would count twice)")
    for path in scores or []:
        if not path.is_file():
            fail(f"score file {path} does not exist")
        try:
            read_score_file(path)
        except (OSError, ValueError) as e:  # JSONDecodeError is a ValueError
            fail(f"score file {path} is not a valid score file: {str(e).splitlines()[0]}")
    if reps < 100:
        fail("--reps must be at least 100")
    if seed < 0:
        fail(f"--seed must be ≥ 0, got {seed}")
    if episodes not in ("train", "eval"):
        fail(f"unknown --episodes {episodes!r}; valid: train, eval")
    everything = list(results or [Path("results")])
    if len(set(map(str, everything))) != len(everything):
        fail("a results folder or archive is named twice")
    results, more = everything[0], everything[1:]
    archive = is_archive(results)
    from .report.build import published_only

    published_alone = not more and published_only(compare, suite, results)  # nothing of yours yet: the reference alone
    for path in everything:
        packed = is_archive(path)
        if not packed and path.is_file():
            fail(f"{path} is a file, not a results directory or a .tar.gz of one")
        if not (path.is_file() if packed else path.is_dir()) and not published_alone:
            fail(f"results {'archive' if packed else 'directory'} {path} does not exist"
                 + ("" if compare else " (to see the published runs alone: --compare dreamerv3 --suite atari100k)"))
    if out is None:  # beside an archive, never inside the temporary folder it is unpacked into
        out = results.with_name(results.name.rsplit(".t", 1)[0] + "_report") if archive else results / "report"
    check_writable(out, "report directory")
    opts = ReportOptions(results=results, more=more, out=out, suites=split_list(suite, "--suite"),
                         variants=split_list(variants, "--variants"),
                         tasks=split_list(tasks_, "--tasks"), compare=split_list(compare, "--compare"), score_files=list(scores or []),
                         include_unfinished=include_unfinished, episodes=episodes, html=html, reps=reps, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with console.status("computing the report"):
                path = make_report(opts)
        except ReportError as e:
            fail(str(e))
    for w in caught:
        if any(k in str(w.message) for k in ("skipped", "pool raw scores", "--compare official", "scored by its own", "(published) runs of")):
            typer.echo(f"warning: {w.message}", err=True)
    console.print(f"report written to {path} (tables as CSV and LaTeX, figures as PNG and PDF beside it"
                  + (f"; {path.with_suffix('.html')}, self-contained)" if html else ")"))


@app.command("suites")
def list_suites() -> None:
    """List the suites that --suite accepts (files in suites/, or pass a path)."""
    from . import suites as suites_mod

    table = Table(title="suites")
    for col in ("name", "tasks", "budget (env steps)", "preset", "train ratio", "description"):
        table.add_column(col)
    for name, path in suites_mod.available().items():
        try:
            suite = suites_mod.load(str(path))
        except suites_mod.SuiteError as e:
            table.add_row(name, "-", "-", "-", "-", f"[red]unreadable: {e}[/red]")
            continue
        specs = list(suite.tasks.values())
        budgets = sorted({t.steps for t in specs})
        table.add_row(name, str(len(specs)), _span(budgets), _span(sorted({t.preset for t in specs})),
                      _span(sorted({t.train_ratio for t in specs})), suite.description.split(". ")[0])
    Console(width=max(console.width, 140)).print(table)
    typer.echo("Add a suite by dropping a YAML file into suites/, or pass --suite path/to/file.yaml.")


def _span(values) -> str:
    values = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return values[0] if len(values) == 1 else f"{values[0]} … {values[-1]}" if len(values) > 3 else ", ".join(values)


@app.command()
def tasks(suite: str = typer.Argument(..., help="Suite name or path to a suite file.")) -> None:
    """List the tasks of a suite with their resolved settings."""
    loaded = load_suite(suite)
    table = Table(title=f"suite {loaded.name} ({loaded.path})")
    for col in ("task", "family", "steps", "repeat", "train ratio", "preset", "envs", "env settings", "refs"):
        table.add_column(col)
    for t in loaded.tasks.values():
        table.add_row(t.task, t.family, str(t.steps), str(t.action_repeat), f"{t.train_ratio:g}", t.preset,
                      str(t.envs), _kv(t.env), _kv(t.refs))
    Console(width=max(console.width, 140)).print(table)


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


def load_suite(name: str):
    from . import suites as suites_mod

    try:
        return suites_mod.load(name)
    except suites_mod.SuiteError as e:
        fail(str(e))


@app.command()
def version() -> None:
    """Print the package version."""
    from . import __version__

    typer.echo(__version__)


def _interrupted() -> None:
    """Exit 130 with "interrupted" on stderr, or silently if the reader of the output is gone (a
    `| tee` that Ctrl-C ended too): then the output goes to /dev/null, so that flushing it at exit
    cannot fail and change the exit code."""
    try:
        typer.echo("interrupted", err=True)
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass
    sys.exit(130)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # stop the grid and its worker processes as Ctrl-C does


def main() -> None:
    import signal

    from .agent.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    signal.signal(signal.SIGTERM, _terminate)
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored: a grid
    # started with `&` would run on through `kill -INT`. SIGINT stops it as Ctrl-C does, however
    # it was started (and the worker processes it starts inherit a caught signal as the default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Click's exception classes, wherever this typer takes Click from (recent typer vendors it)
    usage_error, click_error = (next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)
                                for name in ("UsageError", "ClickException"))
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="dreamer-bench", standalone_mode=False)
    except usage_error as e:  # unknown option, missing or malformed value: one line too
        where = e.ctx.command_path if e.ctx else "dreamer-bench"
        args = sys.argv[1:]
        if where == "dreamer-bench" and args and args[0] in getattr(command, "commands", {}):
            where += f" {args[0]}"  # a value missing at the end fails before the command's own context
        message = " ".join(e.format_message().split())
        typer.echo(f"error: {message} (see '{where} --help')", err=True)
        sys.exit(2)
    except click_error as e:
        typer.echo(f"error: {' '.join(e.format_message().split())}", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        _interrupted()
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    if isinstance(code, int) and code:
        if code == 130:  # Ctrl-C or SIGTERM inside a command: typer turns it into exit code 130
            _interrupted()
        sys.exit(code)


if __name__ == "__main__":
    main()
