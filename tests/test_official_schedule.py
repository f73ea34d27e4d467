"""The runner's training schedule against the official training loop's.

tests/fixtures/official/schedule/ holds records of commit e3f0224's own ``embodied.run.train``,
replay and prefetching stream, run on CartPole-v1 with a stand-in agent
(tools/official/export_schedule.py): the policy step of every update, and for every batch the
replay drew the step, the windows stored and queued then, and each window's start. Here our
``TrainSchedule`` and ``Replay`` are driven over the same steps and must decide the same.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dreamer_bench.runner.replay import Replay
from dreamer_bench.runner.schedule import TrainSchedule, planned_updates

FIXTURES = Path(__file__).parent / "fixtures" / "official" / "schedule"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def step(i):
    return {"vector": np.full(2, i, np.float32), "action": np.zeros(2, np.float32), "reward": np.float32(0),
            "is_first": i == 0, "is_last": False, "is_terminal": False, "deter": np.zeros(3, np.float16),
            "stoch": np.zeros(2, np.int16)}


def drive(meta, prefetch, schedule_cls=TrainSchedule, perturb_replay=None, envs=1, steps=None):
    """Our loop's order for each policy step: add it to the replay, count it, run the updates the
    schedule makes due, each taking its batch from the schedule. Returns the policy steps of the
    updates and, for every batch drawn, (step, windows stored, windows queued, starts)."""
    replay = Replay({"vector": (2,)}, act_size=2, deter=3, latents=2, streams=envs, capacity=10_000,
                    length=meta["batch_length"], seed=0)
    if perturb_replay:
        perturb_replay(replay)
    schedule = schedule_cls(meta["train_ratio"], meta["batch_size"], meta["batch_length"], prefetch=prefetch)
    now = {"step": 0}
    draws, inner = [], replay.sample

    def sample(batch):
        before = (now["step"], replay.windows(), len(replay.online))
        out = inner(batch)
        draws.append((*before, out["start"].tolist()))
        return out

    replay.sample = sample
    updates, policy_steps = [], 0
    for t in range((steps or meta["policy_steps"]) // envs):
        for i in range(envs):
            replay.add(i, step(t))
            policy_steps += 1
            now["step"] = policy_steps
            for _ in range(schedule.added(policy_steps, replay)):
                schedule.batch(replay)
                updates.append(policy_steps)
    return updates, draws


def official_draws(record):
    """The official batches from the second on: drawn when the update before the one using them
    starts (the first is drawn by the prefetch thread as soon as it gets to it, a matter of timing)."""
    return [(s["step"], s["items"], s["queued"], s["starts"]) for s in record["samples"][1:]]


def mismatches(updates, draws, record, skip=0):
    """Where ours differ from the official record: the policy steps of the updates, and from batch
    ``skip`` on, of every batch the step, windows stored and queued at drawing and the queued
    windows it took (its uniform draws come from another generator and are checked by range)."""
    out = []
    if updates != record["train_steps"]:
        first = next((i for i, (a, b) in enumerate(zip(updates, record["train_steps"])) if a != b), None)
        out.append(f"updates: {len(updates)} vs {len(record['train_steps'])}, first difference at update {first}")
    theirs = official_draws(record)
    if len(draws) != len(theirs):
        out.append(f"batches: {len(draws)} vs {len(theirs)}")
    for k, (a, b) in list(enumerate(zip(draws, theirs)))[skip:]:
        online = min(b[2], len(b[3]))
        if a[:3] != b[:3] or a[3][:online] != b[3][:online]:
            out.append(f"batch {k}: ours {a[:3]} {a[3][:online]}, official {b[:3]} {b[3][:online]}")
            break
        if any(not 0 <= s < a[1] for s in a[3][online:]):
            out.append(f"batch {k}: a uniform draw outside the stored windows")
            break
    return out


@pytest.mark.parametrize("name", CASES)
def test_updates_and_batches_as_the_official_loop_without_prefetch(name):
    """Our default: each update draws its batch at its own step, which is what the official loop
    draws at that step for the update after it. Our first batch also takes the first queued
    window (the official one's went into its early first batch); from the second on all match."""
    record = load(name)
    updates, draws = drive(record["meta"], prefetch=False)
    assert mismatches(updates, draws, record, skip=1) == []
    ours, theirs = draws[0], official_draws(record)[0]
    assert ours[:2] == theirs[:2] and ours[2] == theirs[2] + 1
    assert ours[3] == [1] + theirs[3][:theirs[2]]


@pytest.mark.parametrize("name", CASES)
def test_prefetch_draws_each_batch_one_update_ahead_as_the_official_stream(name):
    record = load(name)
    updates, draws = drive(record["meta"], prefetch=True)
    assert mismatches(updates, draws[1:], record) == []
    # the first batch: drawn long before training, with the first queued window, as the official
    # stream's (drawn whenever its thread got to it: here with more windows stored)
    assert draws[0][:3] == (66, 2, 1) and draws[0][3][0] == 1 == record["samples"][0]["starts"][0]
    assert record["samples"][0]["items"] < 1024
    assert len(draws) == len(updates) + 1 == len(record["samples"])


def test_the_fixtures_cover_a_fraction_one_and_several_updates_per_step():
    per_step = {}
    for name in CASES:
        record = load(name)
        counts = np.bincount(record["train_steps"])
        per_step[record["meta"]["train_ratio"] / 1024] = counts.max()
        assert record["meta"]["online"] and record["meta"]["replay_context"] == 1
        assert record["train_steps"][0] == 1088  # 1,024 windows of 65 steps stored
    assert per_step == {0.125: 1, 0.5: 1, 2.0: 2}


class CeilSchedule(TrainSchedule):
    """The rule before the fix: updates until 1 + (step − start)·r is reached, rounding up."""

    def added(self, step, replay):
        if replay.windows() < self.need:
            return 0
        if self.prev is None:
            self.prev, self.done = float(step), 0
        target = math.ceil((step - self.prev) * self.rate + 1)
        n, self.done = target - self.done, target
        return n


class StepsSchedule(TrainSchedule):
    """The start before the fix: once batch × length steps (not windows) are stored."""

    def added(self, step, replay):
        windows = replay.windows
        replay.windows = lambda: len(replay)
        try:
            return super().added(step, replay)
        finally:
            replay.windows = windows


def stride_of_length(replay):
    """The queue before the fix: windows at 0, T, 2T, … (trained steps tiling the stream)."""
    replay.online_next[:] = 0
    replay.online_stride = replay.length


@pytest.mark.parametrize("perturbed, fails", [
    (dict(schedule_cls=CeilSchedule), {"cartpole_ratio128", "dmc_ratio512"}),  # integer ratios round alike
    (dict(schedule_cls=StepsSchedule), set(CASES)),
    (dict(perturb_replay=stride_of_length), set(CASES)),
], ids=["ceil", "start-at-steps", "queue-stride-64"])
def test_the_comparison_fails_on_the_rules_it_replaced(perturbed, fails):
    failing = {name for name in CASES
               if mismatches(*drive(load(name)["meta"], prefetch=False, **perturbed), load(name), skip=1)}
    assert failing == fails


@pytest.mark.parametrize("envs", [1, 2, 3])
@pytest.mark.parametrize("ratio", [32.0, 512.0, 2048.0])
def test_planned_updates_count_what_the_schedule_runs(envs, ratio):
    meta = dict(train_ratio=ratio, batch_size=8, batch_length=10)
    for steps in (87, 90, 93, 300):
        updates, _ = drive(meta, prefetch=False, envs=envs, steps=steps * envs)
        assert planned_updates(steps * envs, envs, ratio, 8, 10) == len(updates), (steps, envs)
