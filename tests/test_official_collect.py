"""tools/official/collect.py: the reference runs' logs into the evidence, finished or not, never
losing a run that came further.

Run folders in the layout of tools/official/train.py (harness.jsonl with the settings, the
official logger's scores.jsonl and metrics.jsonl, `done` when finished), written here.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tools" / "official"))
import collect  # noqa: E402


def official_run(root: pathlib.Path, task: str, seed: int, last: int, done: bool = False, every: int = 1000):
    d = root / task / f"seed_{seed}"
    d.mkdir(parents=True)
    settings = {"task": task, "seed": seed, "steps": 50_000, "action_repeat": 2, "train_ratio": 512}
    (d / "harness.jsonl").write_text(json.dumps(settings) + "\n")
    rows = [{"step": x, "episode/score": x / 100, "episode/length": 500} for x in range(every, last + 1, every)]
    (d / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "ckpt").mkdir()
    (d / "ckpt" / "state.pkl").write_bytes(b"x" * 100)  # never copied
    if done:
        (d / "done").write_text("wall_s=1\n")
    return d


def scores(out: pathlib.Path) -> dict:
    return {(r["task"], r["seed"]): r for r in json.loads((out / "scores.json").read_text())}


def test_partial_and_finished_runs_are_copied_without_checkpoints(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "evidence"
    official_run(runs, "dmc_walker_walk", 0, 12_000)
    official_run(runs, "gym_CartPole-v1", 1, 30_000, done=True)
    assert collect.main([str(runs), str(out)]) == 0
    got = scores(out)
    assert got["dmc_walker_walk", 0]["finished"] is False and got["dmc_walker_walk", 0]["xs"][-1] == 12_000
    assert got["gym_CartPole-v1", 1]["finished"] is True and len(got["gym_CartPole-v1", 1]["xs"]) == 30
    assert not list(out.rglob("ckpt")) and (out / "gym_CartPole-v1" / "seed_1" / "done").exists()


def test_the_package_copy_holds_the_same_records_and_bytes_for_the_same_runs(tmp_path):
    """--package writes what `report --compare official` reads: the records of scores.json,
    gzipped without a time stamp, so that rerunning over the same runs changes no committed byte."""
    import gzip

    runs, out, shipped = tmp_path / "runs", tmp_path / "evidence", tmp_path / "pkg" / "learning-official.json.gz"
    shipped.parent.mkdir()
    official_run(runs, "dmc_walker_walk", 0, 12_000)
    official_run(runs, "gym_CartPole-v1", 1, 30_000, done=True)
    assert collect.main([str(runs), str(out), "--package", str(shipped)]) == 0
    first = shipped.read_bytes()
    assert json.loads(gzip.decompress(first)) == json.loads((out / "scores.json").read_text())
    time.sleep(1.1)  # a gzip header's time stamp has whole seconds
    assert collect.main([str(runs), str(out), "--package", str(shipped)]) == 0
    assert shipped.read_bytes() == first and not list(shipped.parent.glob("*.tmp"))


def test_a_run_started_over_does_not_replace_a_partial_copy_that_came_further(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "evidence"
    official_run(runs, "dmc_walker_walk", 0, 20_000)
    collect.main([str(runs), str(out)])
    # a new machine without the checkpoints: the queue started seed 0 again, now at 5,000 steps
    again = tmp_path / "again"
    official_run(again, "dmc_walker_walk", 0, 5_000)
    assert collect.main([str(again), str(out)]) == 0
    assert scores(out)["dmc_walker_walk", 0]["xs"][-1] == 20_000
    assert "kept the partial copy" in capsys.readouterr().err
    # once the new attempt has come further, it replaces the copy; and finished, it is final
    later = tmp_path / "later"
    official_run(later, "dmc_walker_walk", 0, 26_000)
    (later / "dmc_walker_walk" / "seed_0" / "metrics.jsonl").unlink()  # a file this attempt lacks
    collect.main([str(later), str(out)])
    assert scores(out)["dmc_walker_walk", 0]["xs"][-1] == 26_000
    assert not (out / "dmc_walker_walk" / "seed_0" / "metrics.jsonl").exists()  # not the old attempt's
    final = tmp_path / "final"
    official_run(final, "dmc_walker_walk", 0, 50_000, done=True)
    collect.main([str(final), str(out)])
    official_run(tmp_path / "rerun", "dmc_walker_walk", 0, 3_000)
    collect.main([str(tmp_path / "rerun"), str(out)])
    rec = scores(out)["dmc_walker_walk", 0]
    assert rec["finished"] is True and rec["xs"][-1] == 50_000


def test_episodes_of_an_attempt_the_run_did_not_go_on_with_are_dropped(tmp_path):
    """tools/official/scores.py: the official script resumes from its last checkpoint and resets
    its environment there, so episodes the stopped attempt logged after that point belong to a
    branch the run did not continue (ours drops them too: its episodes past the checkpoint). The
    point is where the resumed attempt's first episode began (its end minus its length, policy
    steps × action repeat); the steps need not fall back for it to show."""
    import scores

    run = tmp_path / "seed_0"
    run.mkdir()
    (run / "harness.jsonl").write_text(json.dumps({"task": "dmc_walker_walk", "seed": 0, "steps": 50_000,
                                                   "action_repeat": 2}) + "\n")
    # attempt 1: 1,000-step episodes to 3,000; its checkpoint was at 2,500. Attempt 2 resumed there:
    # 3,500 and 4,500; its checkpoint at 4,000. Attempt 3 resumed there: 5,000.
    ends = [1000, 2000, 3000, 3500, 4500, 5000]
    (run / "scores.jsonl").write_text("".join(json.dumps({"step": x, "episode/score": float(x)}) + "\n" for x in ends))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": x, "episode/length": 500.0}) + "\n" for x in ends))
    assert scores.record(run)["xs"] == [1000, 2000, 3500, 5000]
    assert scores.record(run)["machines"] == []  # its harness named no CPU
    # without the lengths only a fall-back of the steps marks a restart: nothing here
    (run / "metrics.jsonl").unlink()
    assert scores.record(run)["xs"] == ends
    # a fall-back alone: an attempt that resumed from 1,500 and logged 2,500
    (run / "scores.jsonl").write_text("".join(json.dumps({"step": x, "episode/score": 1.0}) + "\n"
                                              for x in [1000, 2000, 3000, 2500]))
    assert scores.record(run)["xs"] == [1000, 2000, 2500]
