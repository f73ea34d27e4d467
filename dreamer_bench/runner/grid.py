"""A grid of runs (tasks × variants × seeds) on local processes or a Dask cluster, with a live view.

Locally, runs execute through joblib on ``loky`` worker processes, each run's torch threads set
so that ``jobs`` runs share the cores without oversubscription; the workers die with the grid's
process. The grid's first SIGINT or SIGTERM makes its runs checkpoint and stop (LocalStop), a
second stops them at once. With ``backend='dask'`` each run is a future on the workers of an existing Dask
distributed scheduler, which must see the same results directory: a run whose workers keep dying
fails alone (KilledWorker), and a stopped client makes its runs checkpoint and stop.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Iterable

from ..results import read_status, write_status
from .lock import LockBusy, RunLock
from .run import STOPPED, ConfigMismatch, Run, RunSpec

STOP_WAIT_S = 120  # how long a stopped Dask grid waits for its runs to checkpoint


_WATCHED: set[int] = set()


def die_with(parent: int) -> None:
    """In a worker: SIGKILL this process once ``parent`` (the grid's process) is gone, so that a
    killed grid leaves nothing training or idling. Its runs resume from their checkpoints."""
    import signal

    if parent in _WATCHED:
        return
    _WATCHED.add(parent)

    def watch():
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGKILL)
            except PermissionError:
                pass
            threading.Event().wait(1.0)

    threading.Thread(target=watch, name="die-with-grid", daemon=True).start()


class LocalStop:
    """A local grid's stop request. While installed, the first SIGINT or SIGTERM of the grid's
    process creates the file ``path``, which its runs look for every two seconds of training (in
    worker processes or in this one): each checkpoints and stops, runs not yet started never
    start, and the grid ends with KeyboardInterrupt once they have. A second signal raises
    KeyboardInterrupt at once (joblib then kills the workers; the runs resume from their last
    checkpoints)."""

    def __init__(self):
        import tempfile
        import uuid

        self.path = Path(tempfile.gettempdir()) / f"dreamer-bench-stop-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.requested = False
        self.say = _say_stderr  # how the request is acknowledged (the live view prints it above its table)
        self._old: dict = {}

    def install(self) -> None:
        import signal

        from ..stopsignals import STOP_SIGNALS

        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread; signals then stop at once
        for sig in STOP_SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        try:
            self.path.touch()
        except OSError:  # the runs cannot be asked: stop at once, as before
            raise KeyboardInterrupt from None
        self.say("stopping: the runs checkpoint and stop (rerun the command to resume; a second Ctrl-C or "
                 "SIGTERM stops them at once, losing what they trained since their last checkpoint)")

    def uninstall(self) -> None:
        import signal

        try:
            for sig, handler in self._old.items():
                signal.signal(sig, handler)
            self._old = {}
        finally:
            self.path.unlink(missing_ok=True)


def _say_stderr(line: str) -> None:
    """A line on stderr from a signal handler: os.write, since the main thread may be inside a
    print to stderr; nothing if stderr is gone (a `| tee` that Ctrl-C ended too), so that an
    output error never turns a stop into a kill."""
    try:
        os.write(2, (line + "\n").encode())
    except OSError:
        pass


def _print(line: str) -> None:
    """A line on stdout, or nothing if stdout is gone (see _say_stderr)."""
    try:
        print(line, flush=True)
    except OSError:
        pass


_SIGNALLED = threading.Event()  # in a local grid's worker process: SIGINT or SIGTERM arrived


def file_stop_request(path: str, worker: bool):
    """From a run of a local grid: whether the grid asked it to stop (LocalStop's file exists).
    In a ``worker`` process, which the grid starts with SIGINT and SIGTERM blocked, both become the
    same request (Ctrl-C reaches the grid and its workers alike; a job scheduler's SIGTERM often
    every process) instead of ending the run mid-step; one that arrived while the worker was
    starting is counted here."""
    if worker and threading.current_thread() is threading.main_thread():
        from ..stopsignals import handle_stop_signals

        _SIGNALLED.clear()  # one from an earlier task of this worker was that task's
        handle_stop_signals(lambda signum, frame: _SIGNALLED.set())

    def should_stop() -> bool:
        return _SIGNALLED.is_set() or os.path.exists(path)

    return should_stop


def run_one(spec_dict: dict, retries: int = 0, parent: int | None = None, stop_event: str | None = None,
            trainer=None, should_stop=None, stop_file: str | None = None) -> dict:
    """Train one run to its budget (worker side); never raises, returns its final status. With
    ``parent`` (local grids), the worker dies with that process; with ``stop_file`` (a local
    grid's LocalStop), ``stop_event`` (the name of a Dask Event, Dask grids) or ``should_stop`` (a
    packed group's request), the run checkpoints and stops once asked. ``trainer``: a packed
    group's update service (runner/pack.py)."""
    worker = parent is not None and parent != os.getpid()
    if worker:
        die_with(parent)
    spec = RunSpec(**spec_dict)
    if stop_event:
        should_stop = dask_stop_request(stop_event)
    elif stop_file:
        should_stop = file_stop_request(stop_file, worker)
    attempt = 0
    while True:
        try:
            if attempt == 0 and should_stop is not None and should_stop():
                return {"label": spec.label, "state": "unstarted", "error": None}
            status = Run(spec, should_stop=should_stop, trainer=trainer).execute()
            if status.get("error") == STOPPED:
                return {"label": spec.label, "state": "stopped", "error": None}
            return {"label": spec.label, "state": status.get("state", "done"), "error": None}
        except LockBusy as e:
            # on Dask, the owner may be a worker on another host that died: wait until that shows
            if stop_event and owner_gone(spec, should_stop):
                continue
            if should_stop is not None and should_stop():
                return {"label": spec.label, "state": "unstarted", "error": None}
            return {"label": spec.label, "state": "busy", "error": str(e)}
        except ConfigMismatch as e:
            return {"label": spec.label, "state": "failed", "error": str(e)}
        except Exception as e:
            if attempt < retries and not (should_stop is not None and should_stop()):
                attempt += 1
                continue
            return {"label": spec.label, "state": "failed", "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc()}


def owner_gone(spec: RunSpec, should_stop) -> bool:
    """Whether the run's lock, held from another host, turned out to have a dead owner (waited
    for: ``RunLock.owner_gone``); False for a live owner, on a stop request, or if the lock cannot
    be read at all (the run is then reported busy, as before)."""
    try:
        return RunLock(spec.directory / "run.lock").owner_gone(should_stop)
    except Exception:  # noqa: BLE001 - run_one never raises
        return False


def wait_for_foreign_owners(specs: list[RunSpec], should_stop) -> None:
    """Before a packed group starts on a Dask worker: the members whose locks are held from
    another host (a worker that died there) are waited for first, as ``run_one`` waits for a run
    of its own; the group's members wait for each other's updates, so none may wait alone. One
    after another, in the calling thread (a Dask stop request is only seen from the task's own);
    members that died together go stale together, so the wait is about the longest one's. (A
    member with no lock, or one held from this host, is answered at once.)"""
    for spec in specs:
        if not owner_gone(spec, should_stop) and should_stop is not None and should_stop():
            return


def dask_stop_request(name: str):
    """From a task on a Dask worker: whether its grid asked it to stop, by setting the Event
    ``name`` (SIGTERM or Ctrl-C of the client) or by letting go of the task (the client was killed
    or cancelled it: the scheduler then tells the worker the task is no longer wanted)."""
    from distributed import Event, get_worker
    from distributed.worker import thread_state

    event, worker, key = Event(name), get_worker(), thread_state.key

    def should_stop() -> bool:
        task = worker.state.tasks.get(key)
        return task is None or task.state in ("cancelled", "released", "forgotten") or event.is_set()

    return should_stop


def threads_per_run(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def pack_groups(runs: list[RunSpec], pack: int) -> list[list[RunSpec]]:
    """The runs in groups of at most ``pack`` that differ only in their seed (grid order kept;
    ``pack`` 1: one group per run). Which runs cannot be packed is ``unpackable``'s to say."""
    if pack <= 1:
        return [[r] for r in runs]
    groups: dict[str, list[list[RunSpec]]] = {}
    order: list[list[RunSpec]] = []
    for r in runs:
        key = json.dumps({**asdict(r), "seed": None}, sort_keys=True, default=str)
        chunks = groups.setdefault(key, [])
        if not chunks or len(chunks[-1]) >= pack or unpackable(r):
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(r)
    return order


def unpackable(run: RunSpec) -> str | None:
    """Why a run trains alone even with --pack, or None (agent/packed.py packs the update only)."""
    if run.plugins:
        return "runs with plug-ins are not packed"
    if "wandb" in run.live:
        return "runs logging to W&B are not packed (one W&B run per process)"
    cfg = run.agent_config()
    if cfg.actor_grad_cont == "backprop":
        return "runs with actor_grad_cont=backprop are not packed"
    if cfg.compile:
        return "compiled runs are not packed (the packed update runs eagerly)"
    return None


def execute(runs: list[RunSpec], jobs: int = 1, backend: str = "local", address: str | None = None,
            retries: int = 0, live: bool | None = None, pack: int = 1, progress_seconds: float = 600.0) -> list[dict]:
    """Train every run of the grid; returns one result per run (state done, failed, busy, stopped
    or unstarted). ``pack`` > 1: runs that differ only in their seed train in groups of up to ``pack``
    in one process (local) or one Dask task each, their updates batched (runner/pack.py).
    ``live``: a table redrawn in place (default: when stdout is a terminal); otherwise a line per
    finished run and, every ``progress_seconds`` (0: never), a progress line (ProgressLines)."""
    if live is None:
        live = sys.stdout.isatty()
    groups = pack_groups(runs, pack)
    if backend == "local":  # the cores shared among the processes that train at once
        per_job = threads_per_run(min(jobs, len(groups)))
        threaded = {id(r): r if r.threads else replace(r, threads=per_job) for r in runs}
        groups = [[threaded[id(r)] for r in g] for g in groups]
        runs = [threaded[id(r)] for r in runs]
    results: list[dict] = []
    view = LiveView(runs) if live else None
    if view:
        view.start()
    lines = ProgressLines(runs, progress_seconds) if not live and progress_seconds > 0 else None
    if lines:
        lines.start()
    try:
        if backend == "dask":
            results = _execute_dask(groups, address, retries, view)
        else:
            results = _execute_local(groups, jobs, retries, view)
    finally:
        if view:
            view.stop()
        if lines:
            lines.stop()
    return results


def _execute_local(groups: list[list[RunSpec]], jobs: int, retries: int, view) -> list[dict]:
    """The groups on ``jobs`` loky worker processes (one: in this process), stopped by LocalStop."""
    stop = LocalStop()
    if view is not None:
        stop.say = view.say
    stop.install()
    try:
        return _run_local(groups, jobs, retries, view, stop)
    finally:
        stop.uninstall()


def _run_local(groups: list[list[RunSpec]], jobs: int, retries: int, view, stop: LocalStop) -> list[dict]:
    import joblib

    from ..stopsignals import stop_signals_blocked
    from .pack import run_group

    file = str(stop.path)
    tasks = [joblib.delayed(run_group)([asdict(r) for r in g], retries, os.getpid(), None, file) if len(g) > 1 else
             joblib.delayed(run_one)(asdict(g[0]), retries, os.getpid(), stop_file=file) for g in groups]
    n_jobs = min(jobs, max(1, len(tasks)))
    parallel = joblib.Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    try:
        if n_jobs > 1:
            # the first tasks are dispatched here, starting the workers and loky's manager thread
            # (which starts any replacement worker) with SIGINT and SIGTERM blocked: a worker
            # unblocks them once it has made them a stop request (file_stop_request)
            with stop_signals_blocked():
                outputs = parallel(tasks)
        else:  # one job runs in this process, as the outputs are read
            outputs = parallel(tasks)
        results = _collect(outputs, view)
    except Exception as e:
        if stop.requested:  # what the stop ended with (a worker that died of it, say) is said, not raised
            _say_stderr(f"while stopping: {type(e).__name__}: {e}")
            raise KeyboardInterrupt from e
        raise
    if stop.requested and any(r["state"] in ("stopped", "unstarted") for r in results):
        raise KeyboardInterrupt  # every run has checkpointed and stopped, or never started
    return results


def _execute_dask(groups: list[list[RunSpec]], address: str, retries: int, view) -> list[dict]:
    """One Dask future per run, or per packed group (runner/pack.py). A run whose workers kept
    dying (the scheduler gives up with KilledWorker) is failed with that reason and the grid goes
    on; SIGTERM or Ctrl-C of this process sets the grid's stop Event, and each run on a worker
    checkpoints and stops."""
    import uuid

    from distributed import Client, Event, as_completed, wait

    from .pack import run_group

    token = uuid.uuid4().hex[:12]
    with Client(address, timeout="20s") as client:
        stop = Event(f"dreamer-bench-stop-{token}", client=client)
        futures = {}
        for i, g in enumerate(groups):
            key = f"dreamer-bench-{token}-{i}"
            if len(g) > 1:
                future = client.submit(run_group, [asdict(r) for r in g], retries, None, stop.name, key=key, pure=False)
            else:
                future = client.submit(run_one, asdict(g[0]), retries, None, stop.name, key=key, pure=False)
            futures[future] = g
        try:
            return _collect((_dask_outcome(f, futures[f]) for f in as_completed(futures)), view)
        except KeyboardInterrupt:
            stop.set()
            running = [f for f in futures if not f.done()]
            print(f"stopping: {sum(len(futures[f]) for f in running)} run(s) on the Dask workers checkpoint and stop "
                  f"(waiting up to {STOP_WAIT_S} s)", file=sys.stderr, flush=True)
            try:
                wait(running, timeout=STOP_WAIT_S)
            except Exception:  # noqa: BLE001 - a timeout or a second Ctrl-C: leave what is left
                pass
            client.cancel([f for f in futures if not f.done()])
            raise


def _dask_outcome(future, group: list[RunSpec]) -> dict | list[dict]:
    """A finished future as its runs' results; a task the scheduler gave up on is its runs' failure."""
    if future.status == "finished":
        return future.result()
    from distributed import KilledWorker

    error = future.exception()
    if isinstance(error, KilledWorker):
        message = (f"the Dask workers training it died and the scheduler gave up on it (KilledWorker: "
                   f"{error}); rerun to resume it from its last checkpoint")
    else:
        message = f"{type(error).__name__}: {error}"
    results = []
    for spec in group:
        if read_status(spec.directory).get("state") != "done":
            write_status(spec.directory, state="failed", error=message)
            results.append({"label": spec.label, "state": "failed", "error": message})
        else:
            results.append({"label": spec.label, "state": "done", "error": None})
    return results if len(group) > 1 else results[0]


def _collect(generator: Iterable[dict | list[dict]], view) -> list[dict]:
    results = []
    for outcome in generator:  # a run's result, or a packed group's list of them
        for result in outcome if isinstance(outcome, list) else [outcome]:
            results.append(result)
            if view is None:
                mark = {"done": "done", "failed": "FAILED", "busy": "skipped (busy)",
                        "stopped": "stopped (checkpointed)",
                        "unstarted": "not started (stop requested)"}.get(result["state"], result["state"])
                line = f"[{len(results)}] {result['label']}: {mark}"
                if result.get("error"):
                    line += f" — {result['error']}"
                _print(line)
    return results


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------

def status_rows(directories: Iterable[Path]) -> list[dict]:
    rows = []
    for d in directories:
        st = read_status(d)
        parts = Path(d).parts
        state = st.get("state", "pending")
        if not st and (Path(d) / "status.json").exists():
            state = "corrupt"  # not valid JSON: rerun the command to rebuild it from the checkpoint
        if state == "running" and RunLock(Path(d) / "run.lock").is_stale():
            state = "interrupted"  # its process is gone; rerun the command to resume it
        rows.append({"suite": parts[-4], "variant": parts[-3], "task": parts[-2], "seed": parts[-1],
                     "state": state, "env_steps": st.get("env_steps", 0), "updates": st.get("updates"),
                     "budget": st.get("budget"), "updates_per_s": st.get("updates_per_s"),
                     "env_steps_per_s": st.get("env_steps_per_s"), "latest_return": st.get("latest_return"),
                     "error": st.get("error"), "dir": str(d)})
    return rows


def status_table(rows: list[dict], title: str = "runs"):
    from rich.table import Table

    counts = {s: sum(r["state"] == s for r in rows)
              for s in ("done", "running", "failed", "pending", "interrupted", "corrupt")}
    table = Table(title=f"{title}: {counts['done']} done, {counts['running']} running, "
                        f"{counts['failed']} failed, {counts['pending'] + counts['interrupted']} pending"
                        + (f", {counts['corrupt']} with a corrupt status.json" if counts["corrupt"] else "")
                        + f" (of {len(rows)})")
    for col in ("suite", "variant", "task", "seed", "state", "env steps", "updates/s", "env steps/s", "return (last 10)"):
        table.add_column(col, justify="right" if col[0] in "eu" or col.startswith("return") else "left")
    style = {"done": "green", "running": "cyan", "failed": "red", "pending": "dim", "interrupted": "yellow",
             "corrupt": "red"}
    for r in rows:
        budget = f"/{r['budget']}" if r["budget"] else ""
        state = r["state"] if r["state"] != "failed" else f"failed: {(r['error'] or '')[:60]}"
        table.add_row(r["suite"], r["variant"], r["task"], r["seed"], f"[{style.get(r['state'], '')}]{state}",
                      f"{r['env_steps']}{budget}", _fmt(r["updates_per_s"]), _fmt(r["env_steps_per_s"], 0),
                      _fmt(r["latest_return"], 1))
    return table


def _fmt(x, digits=2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def progress_line(rows: list[dict], now: float | None = None) -> str:
    """One line on a grid: how many runs are in each state, and for each running run its env
    steps against its budget, its env steps/s and the time left at that speed."""
    counts = {s: sum(r["state"] == s for r in rows) for s in ("done", "running", "failed")}
    pending = len(rows) - sum(counts.values())
    parts = []
    for r in rows:
        if r["state"] != "running":
            continue
        text = f"{r['task']} {r['variant']} {r['seed']} {r['env_steps']:,}"
        if r["budget"]:
            text += f"/{r['budget']:,} ({100 * r['env_steps'] / r['budget']:.0f}%)"
        rate = r["env_steps_per_s"]
        if rate:
            text += f", {rate:.1f} env steps/s"
            if r["budget"]:
                text += f", about {_duration(max(0, r['budget'] - r['env_steps']) / rate)} left"
        parts.append(text)
    stamp = time.strftime("%H:%M", time.localtime(now))
    head = (f"progress {stamp}: {counts['done']} done, {counts['running']} running, {counts['failed']} failed, "
            f"{pending} pending (of {len(rows)})")
    return head + ("; " + "; ".join(parts) if parts else "")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Watcher:
    """A daemon thread that reports on the grid's runs (``_loop``) until ``stop``."""

    def __init__(self, runs: list[RunSpec]):
        self.dirs = [r.directory for r in runs]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self):
        raise NotImplementedError


class ProgressLines(_Watcher):
    """Where no table can be redrawn (stdout a file or a pipe): ``progress_line`` every
    ``every`` seconds, printed and flushed, so that a log shows how a long grid goes. A run's
    speed is its env steps since the line before over the time between them (the run's own
    recent figure in status.json until there is a line before)."""

    def __init__(self, runs: list[RunSpec], every: float):
        super().__init__(runs)
        self.every = every
        self._seen: dict[str, tuple[float, int, str]] = {}  # run folder → (time, env steps, state) at the last line

    def line(self, now: float) -> str:
        rows = status_rows(self.dirs)
        for r in rows:
            before = self._seen.get(r["dir"])
            # running then and now: its own pace over the whole interval (a run that started in
            # between keeps the figure in its status.json)
            if before and before[2] == r["state"] == "running" and now > before[0] and r["env_steps"] > before[1]:
                r["env_steps_per_s"] = (r["env_steps"] - before[1]) / (now - before[0])
            self._seen[r["dir"]] = (now, r["env_steps"], r["state"])
        return progress_line(rows, now)

    def _loop(self):
        while not self._stop.wait(self.every):
            _print(self.line(time.time()))


class LiveView(_Watcher):
    """Redraws the grid's table from the runs' status files every two seconds; lines given to
    ``say`` (from any thread, a signal handler too) are printed above it."""

    def __init__(self, runs: list[RunSpec]):
        super().__init__(runs)
        self._lines: list[str] = []

    def say(self, line: str) -> None:
        self._lines.append(line)  # printed by the view's thread within a quarter of a second

    def _loop(self):
        from rich.live import Live

        with Live(status_table(status_rows(self.dirs)), refresh_per_second=1, transient=False) as live:
            drawn = time.time()
            while not self._stop.wait(0.25):
                while self._lines:
                    live.console.print(self._lines.pop(0), markup=False, highlight=False)
                if time.time() - drawn >= 2.0:
                    live.update(status_table(status_rows(self.dirs)))
                    drawn = time.time()
            while self._lines:
                live.console.print(self._lines.pop(0), markup=False, highlight=False)
            live.update(status_table(status_rows(self.dirs)))
