"""Several environments of one task, stepped in parallel processes (or in this process)."""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - its exit handler is registered before ours
import os
import signal
import traceback
import warnings
import weakref
from typing import Sequence

from .base import EnvError, Transition


def _ignore(signum, frame) -> None:
    """SIGINT and SIGTERM in an environment process (see _worker)."""


_OPEN: "weakref.WeakSet[EnvGroup]" = weakref.WeakSet()  # groups with environment processes


@atexit.register  # registered after multiprocessing's exit handler, so it runs before it
def _kill_leftover_processes() -> None:
    """At exit, the environment processes of groups never closed: they ignore the SIGTERM with
    which multiprocessing ends daemonic children, and it would wait for them for ever."""
    for group in list(_OPEN):
        group._kill()


def _worker(conn, task: str, seed: int, settings: dict) -> None:
    from ..stopsignals import handle_stop_signals
    from . import make_env

    # A stop request is the run's to act on (it checkpoints, then closes this process): Ctrl-C,
    # which a terminal sends to the whole process group, or a job scheduler's SIGTERM to every
    # process must not end the environment mid-run. Started with both signals blocked
    # (EnvGroup), so none arrives before this.
    handle_stop_signals(_ignore)
    try:
        env = make_env(task, seed=seed, **settings)
        conn.send(("ok", (env.obs_space, env.act_space, env.action_repeat)))
    except BaseException as e:  # report the failure, do not hang the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        conn.close()
        return
    try:
        while True:
            cmd, data = conn.recv()
            if cmd == "step":
                conn.send(("ok", env.step(data)))
            elif cmd == "close":
                break
    except EOFError:  # the run's process is gone
        pass
    except BaseException as e:
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        env.close()
        conn.close()


def _spawn_context():
    """Environment processes start fresh (no forked torch state). In a local grid's worker (a
    loky process) they start the loky way: a process spawned the standard way from there is told
    to use loky's start method, which it does not know, and dies before it begins."""
    if mp.get_start_method(allow_none=True) == "loky":
        from joblib.externals.loky.backend.context import get_context

        return get_context("loky")
    return mp.get_context("spawn")


class EnvGroup:
    """N environments of one task with seeds ``seeds``. ``parallel`` runs each in its own process
    (spawned, so that no torch state is forked); otherwise they step one after another here.

    A daemonic process (a Dask worker under a nanny, for one) may not start processes: there the
    environments step one after another in this process, with a warning, instead of failing."""

    def __init__(self, task: str, seeds: Sequence[int], settings: dict | None = None, parallel: bool = False):
        from ..stopsignals import stop_signals_blocked
        from . import make_env

        settings = dict(settings or {})
        self.parallel = parallel and len(seeds) > 1
        if self.parallel and mp.current_process().daemon:
            warnings.warn(f"{len(seeds)} environments step one after another: this is a daemonic process, "
                          "which may not start environment processes (run Dask workers with --no-nanny "
                          "to step them in parallel)", RuntimeWarning, stacklevel=2)
            self.parallel = False
        self.envs, self.conns, self.procs = [], [], []
        if not self.parallel:
            self.envs = [make_env(task, seed=s, **settings) for s in seeds]
            first = self.envs[0]
            self.obs_space, self.act_space, self.action_repeat = first.obs_space, first.act_space, first.action_repeat
            return
        ctx = _spawn_context()
        for seed in seeds:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, task, seed, settings), daemon=True)
            with stop_signals_blocked():
                proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        _OPEN.add(self)
        specs = [self._receive(c) for c in self.conns]
        self.obs_space, self.act_space, self.action_repeat = specs[0]

    def __len__(self) -> int:
        return len(self.envs) if not self.parallel else len(self.conns)

    def _receive(self, conn):
        try:
            status, value = conn.recv()
        except EOFError:
            self.close()
            raise EnvError("an environment process died") from None
        if status != "ok":
            self.close()
            raise EnvError(value)
        return value

    def step(self, actions) -> list[Transition]:
        """One policy step in every environment (each resets on its own when its episode ended)."""
        if not self.parallel:
            return [env.step(a) for env, a in zip(self.envs, actions)]
        for conn, action in zip(self.conns, actions):
            conn.send(("step", action))
        return [self._receive(c) for c in self.conns]

    def close(self) -> None:
        for env in self.envs:
            env.close()
        for conn in self.conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
        self._kill()
        self.envs, self.conns, self.procs = [], [], []
        _OPEN.discard(self)

    def _kill(self) -> None:
        """SIGKILL to the environment processes still alive (they ignore SIGTERM; loky's process
        objects have no kill())."""
        for proc in self.procs:
            if proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.join(timeout=5)
