"""The per-run lock: one process trains a run at a time, and a crashed owner's lock is taken over."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

from ..results import read_json


class LockBusy(RuntimeError):
    """Another live process owns the run."""


class RunLock:
    """A lock file that survives a crashed owner.

    Created with O_EXCL, it holds the owner's host, pid and a token; the owner touches it as a
    heartbeat. A lock is stale, and may be taken over, when its owner on this host is no longer
    alive, or when its heartbeat is older than ``stale_after`` seconds (owners on other hosts).
    Taking over and releasing happen under an exclusive ``flock`` of a guard file beside the lock
    (``.run.lock.guard``, released by the kernel if its holder dies), so that two processes can
    never both judge one stale lock and both take it, and ``release`` only removes its own."""

    def __init__(self, path: Path, stale_after: float = 600.0, beat_every: float = 30.0):
        self.path = Path(path)
        self.stale_after = stale_after
        self.beat_every = beat_every  # a thread's heartbeat while the lock is held (0: none)
        self.owned = False
        self.token = ""
        self._beating: tuple[threading.Thread, threading.Event] | None = None

    def _owner(self) -> dict:
        self.token = os.urandom(8).hex()
        return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": self.token}

    @contextlib.contextmanager
    def _guard(self):
        import fcntl

        fd = os.open(self.path.with_name(f".{self.path.name}.guard"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def is_stale(self) -> bool:
        info = read_json(self.path, default=None)
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if not isinstance(info, dict):  # unreadable: trust only its age
            return age > self.stale_after
        if info.get("host") == socket.gethostname():
            return not _pid_alive(int(info.get("pid", -1)))
        return age > self.stale_after

    def _start_beating(self) -> None:
        """Touch the lock every ``beat_every`` seconds from a thread while it is held, so that the
        owner shows it lives through what blocks its training loop for long (compiling, loading a
        replay, evaluation rounds, checkpoints): the loop's own heartbeat comes every 2 s of training."""
        if self.beat_every <= 0:
            return
        stop = threading.Event()

        def beat():
            while not stop.wait(self.beat_every):
                self.heartbeat()

        thread = threading.Thread(target=beat, name="run-lock-heartbeat", daemon=True)
        thread.start()
        self._beating = (thread, stop)

    def _stop_beating(self) -> None:
        if self._beating is not None:
            thread, stop = self._beating
            stop.set()
            thread.join()
            self._beating = None

    def owner_gone(self, should_stop=None, poll: float = 2.0) -> bool:
        """For a lock held from another host: wait to tell a dead owner from a live one. On a Dask
        cluster the scheduler hands a run whose worker died to another worker at once, and from
        another host the dead owner's lock only goes stale after ``stale_after`` seconds. A
        heartbeat that moves means the owner lives (False, at once); the lock going stale or away
        means it is gone (True). False as well for an owner on this host (its pid already
        decided), and once ``should_stop()`` says so."""
        info = read_json(self.path, default=None)
        if isinstance(info, dict) and info.get("host") == socket.gethostname():
            return False
        seen = None
        while True:
            try:
                mtime = self.path.stat().st_mtime
                if seen is not None and mtime != seen:
                    return False
                seen = mtime
                if self.is_stale():
                    return True
            except FileNotFoundError:
                return True
            except OSError:  # a shared file system's hiccup (ESTALE, EACCES): unknown yet, ask again
                pass
            if should_stop is not None and should_stop():
                return False
            time.sleep(poll)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._guard():
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self.is_stale():
                    info = read_json(self.path, default={}) or {}
                    raise LockBusy(
                        f"{self.path.parent} is being trained by pid {info.get('pid')} on {info.get('host')}") from None
                os.unlink(self.path)  # stale, and no other process can act on it while we hold the guard
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w") as f:
                json.dump(self._owner(), f)
                f.flush()
                os.fsync(f.fileno())
            self.owned = True
        self._start_beating()

    def heartbeat(self) -> None:
        if self.owned:
            try:
                os.utime(self.path)
            except OSError:  # gone, or the file system's hiccup: the next beat tries again
                pass

    def release(self) -> None:
        self._stop_beating()
        if self.owned:
            with self._guard():
                info = read_json(self.path, default=None)
                if isinstance(info, dict) and info.get("token") == self.token:  # never another's lock
                    os.unlink(self.path)
            self.owned = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
