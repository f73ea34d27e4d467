"""When the runner trains and which batch each update gets: the official DreamerV3 schedule
(danijar/dreamerv3 at e3f0224, ``embodied.run.train``; tests/test_official_schedule.py compares
both against a record of the official loop).

- Training starts once the replay holds ``batch_size × batch_length`` complete windows (windows,
  not steps: with one environment and 65-step windows, at policy step 1,088).
- The first update runs then; after each later policy step (of any environment), as many as the
  train ratio has made due, by the official ``Ratio`` arithmetic: with
  r = train_ratio / (batch_size × batch_length), ``repeats = int((step − prev)·r)`` and
  ``prev += repeats / r``. Over a run: 1 + ⌊(step − start)·r⌋ updates.
- Batches are drawn when the update that uses them runs. With ``replay_prefetch`` (agent setting,
  off by default; README: deliberate choices) they are drawn one ahead, as the official agent's
  prefetching stream does: each one just before the update that uses the previous one runs (so
  before that update writes its latents back), and the first long before training starts. The
  official thread draws that one whenever it first finds a window stored (a matter of timing: a
  few steps after the 65th); here it is drawn once the first queued window is complete (step 66
  with one environment), so that it takes that window as the official one does.
"""

from __future__ import annotations

import math


class TrainSchedule:
    def __init__(self, train_ratio: float, batch_size: int, batch_length: int, prefetch: bool = False,
                 prev: float | None = None):
        self.batch_size = batch_size
        self.need = batch_size * batch_length
        self.rate = float(train_ratio) / self.need
        self.prefetch = prefetch
        self.prev = prev  # the official Ratio's state: None until the first update (checkpointed)
        self.pending: dict | None = None  # the prefetched batch (not checkpointed: redrawn on resume)

    @property
    def started(self) -> bool:
        return self.prev is not None

    def added(self, step: int, replay) -> int:
        """A step was added to ``replay``; ``step`` counts every policy step so far. Returns the
        number of updates to run now."""
        windows = replay.windows()
        if self.prefetch and self.pending is None and not self.started and replay.online:
            self.pending = replay.sample(self.batch_size)
        if windows < self.need or self.rate <= 0:
            return 0
        if self.prev is None:
            self.prev = float(step)
            return 1
        repeats = int((step - self.prev) * self.rate)
        self.prev += repeats / self.rate
        return repeats

    def batch(self, replay) -> dict:
        """The batch for the update about to run."""
        if not self.prefetch:
            return replay.sample(self.batch_size)
        batch = self.pending if self.pending is not None else replay.sample(self.batch_size)
        self.pending = replay.sample(self.batch_size)
        return batch


def training_start(envs: int, batch_size: int, batch_length: int) -> int:
    """The policy step (over ``envs`` environments stepped in turn) at which the replay first
    holds ``batch_size × batch_length`` complete windows and the first update runs (1,088 for
    one environment at 16 × 64)."""
    need, window = batch_size * batch_length, batch_length + 1
    rounds = math.ceil(need / envs) + window - 1  # the round in whose course the windows suffice
    short = need - envs * (rounds - window)  # windows still missing when that round begins
    return envs * (rounds - 1) + short  # each env's step in that round adds one window


def planned_updates(policy_steps: int, envs: int, train_ratio: float, batch_size: int, batch_length: int) -> int:
    """The updates a run of ``policy_steps`` (over ``envs`` environments stepped in turn) gets by
    this schedule: 0 before the replay holds ``batch_size × batch_length`` windows, then
    1 + ⌊(steps − start)·r⌋ (up to the float rounding of the running ``prev``)."""
    rate = float(train_ratio) / (batch_size * batch_length)
    if rate <= 0:
        return 0
    start = training_start(envs, batch_size, batch_length)
    if policy_steps < start:
        return 0
    return 1 + math.floor((policy_steps - start) * rate)
