"""SIGINT and SIGTERM (a stop request: Ctrl-C, `kill`, a job scheduler) around child processes.

A child process started while they are blocked in the starting thread starts with them blocked
(fork and exec keep the mask), so nothing can interrupt it before it has chosen what they do;
``handle_stop_signals`` then installs its handler and unblocks them, and one that arrived in
between is handled at that moment."""

from __future__ import annotations

import signal
from contextlib import contextmanager

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def stop_signals_blocked():
    """SIGINT and SIGTERM held back in this thread (and in the processes and threads it starts)."""
    # The resource trackers of multiprocessing and loky, started on a process's first child,
    # unblock both signals in the starting thread once they have started theirs: start them first.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    try:
        from joblib.externals.loky.backend import resource_tracker as loky_tracker
    except ImportError:
        pass
    else:
        loky_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # read first: restored whatever happens next
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def handle_stop_signals(handler) -> None:
    """In a child process's main thread: ``handler`` for SIGINT and SIGTERM, then both unblocked.
    A Python function, not ``SIG_IGN``: a program the process starts in turn gets the default
    action again (exec keeps an ignored signal ignored, a handled one it resets)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
