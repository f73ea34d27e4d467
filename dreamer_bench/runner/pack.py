"""Packed groups: several runs that differ only in their seed, trained in one process with their
updates batched (agent/packed.py).

Each member is an ordinary ``Run`` in a thread of its own — its own run folder, lock, status,
logs, environments, replay, checkpoints and resume — except that its gradient updates go to the
group's ``PackService``: when every member still training is waiting for an update, the last one
to ask runs one packed update for all of them. Members that are due an update at different times
(resumed from different checkpoints) are packed with whoever is waiting; a member alone gets the
unpacked update. A member that fails (a diverged loss, a broken environment) leaves the group and
the others go on. Nothing of the packing is part of a run's identity: a packed run resumes
unpacked and the other way round.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class PackService:
    """The update service of a packed group (see the module's docstring)."""

    def __init__(self, members: int):
        self.cond = threading.Condition()
        self.active = members  # members still training
        self.waiting: dict[int, tuple[Any, dict]] = {}  # member → (agent, batch) due an update
        self.results: dict[int, Any] = {}  # member → its metrics, or the exception of the update
        self.packed = None  # the PackedUpdate, made at the first update
        self.updates = 0  # packed updates run (one per call that trained two or more members)
        # Every update runs on this one thread, whichever member asked last, so its large tensors
        # come and go in one thread (tools/pack_threads.py: as fast as members running it in turn,
        # within the noise of a 2-core EPYC).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pack-update")

    def trainer(self, member: int) -> Callable[[Any, dict], dict]:
        """What member ``member`` calls instead of ``agent.train(batch)``."""
        return lambda agent, batch: self.update(member, agent, batch)

    def update(self, member: int, agent, batch: dict) -> dict:
        with self.cond:
            self.waiting[member] = (agent, batch)
            self._run_if_all_wait()
            while member not in self.results:
                self.cond.wait()
            out = self.results.pop(member)
        if isinstance(out, BaseException):
            raise out
        return out

    def leave(self) -> None:
        """A member stopped training (finished, failed or stopped): the others no longer wait for it."""
        with self.cond:
            self.active -= 1
            self._run_if_all_wait()

    def _run_if_all_wait(self) -> None:
        if not self.waiting or len(self.waiting) < self.active:
            return
        members = sorted(self.waiting)
        agents = [self.waiting[m][0] for m in members]
        batches = [self.waiting[m][1] for m in members]
        self.waiting = {}
        try:
            outs = self.worker.submit(self._train, agents, batches).result()
            self.updates += len(members) > 1
            self.results.update(zip(members, outs))
        except BaseException as e:  # noqa: BLE001 - every member of this update hears of it
            self.results.update({m: e for m in members})
        self.cond.notify_all()

    def _train(self, agents: list, batches: list) -> list:
        from ..agent.packed import PackedUpdate

        if self.packed is None:
            self.packed = PackedUpdate(agents)
        return self.packed.train(batches, agents)

    def close(self) -> None:
        self.worker.shutdown(wait=True)


def run_group(spec_dicts: list[dict], retries: int = 0, parent: int | None = None,
              stop_event: str | None = None, stop_file: str | None = None) -> list[dict]:
    """Train a packed group to its budget (worker side): one thread per member, each an ordinary
    run (``grid.run_one``) whose updates go to the group's PackService. Returns each member's
    result; a stop request (Ctrl-C here; a local grid's LocalStop file ``stop_file``; on Dask, the
    grid's Event ``stop_event`` or the scheduler letting go of the task) makes every member
    checkpoint and stop."""
    import os

    from ..agent.runtime import tune_cpu_allocator
    from .grid import dask_stop_request, die_with, file_stop_request, run_one, wait_for_foreign_owners
    from .run import RunSpec

    worker = parent is not None and parent != os.getpid()
    if worker:
        die_with(parent)
    tune_cpu_allocator()  # one malloc arena for the member threads, set before they start
    service = PackService(len(spec_dicts))
    stop = threading.Event()
    # asked here, in the Dask task's own thread (the members' threads are not the task's)
    asked = (dask_stop_request(stop_event) if stop_event else
             file_stop_request(stop_file, worker) if stop_file else None)
    results: list[dict | None] = [None] * len(spec_dicts)

    def member(i: int) -> None:
        try:
            results[i] = run_one(spec_dicts[i], retries, trainer=service.trainer(i), should_stop=stop.is_set)
        finally:
            service.leave()

    threads = [threading.Thread(target=member, args=(i,), name=f"pack-{i}", daemon=True)
               for i in range(len(spec_dicts))]
    at_once = False
    if stop_event:  # on Dask: members whose worker died on another host, waited for before any starts
        wait_for_foreign_owners([RunSpec(**d) for d in spec_dicts], asked)
    if asked is not None and asked():
        stop.set()  # asked before it started: no member starts
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)
                if asked is not None and not stop.is_set() and asked():
                    stop.set()
    except KeyboardInterrupt:  # the members checkpoint and stop; then the interrupt goes on
        if stop.is_set():  # asked before (a second request): at once, the members left as they are
            at_once = True  # (their service stays up: shut, it would fail them mid-update)
            raise
        stop.set()
        for t in threads:
            t.join()
        raise
    finally:
        if not at_once:
            service.close()
    return [r for r in results if r is not None]
