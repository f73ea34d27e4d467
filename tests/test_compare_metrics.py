"""tools/official/compare_metrics.py: the two implementations' training metrics, quarter by quarter.

Both sides log the mean over the updates since their last row, at different intervals (ours every
30 s, the official every ~2 min), so each row stands for the interval it averages. Checked on
logs in both file formats written here for a quantity whose quarter means are known in closed
form: a linear fall q(x) = 2 − x/1000 over 12,000 env steps, each row the exact mean of q over
its interval (for a line, its value at the midpoint). Each quarter's mean is then q at the
quarter's midpoint, on both sides, whatever their intervals.
"""

from __future__ import annotations

import csv
import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tools" / "official"))
import compare_metrics  # noqa: E402

BUDGET = 12_000


def q(x: float) -> float:
    return 2 - x / 1000


def stamps(every: int, start: int = 0, first: int | None = None) -> list[tuple[int, float, int]]:
    """Training from env step ``start``, one update per 10 env steps: rows every ``every`` env
    steps (the first after ``first`` steps, default ``every``) and one at the budget (a run's last
    row), each with the exact mean of q since the row before and the updates it averages."""
    head = start + (first or every)
    ends = sorted({head, *range(head + every, BUDGET, every), BUDGET})
    return [(b, q((a + b) / 2), (b - a) // 10) for a, b in zip([start] + ends[:-1], ends)]


def our_run(folder: pathlib.Path, every: int, **kw) -> pathlib.Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"agent": {"latents": 4}, "run": {"seed": 0}}))
    rows, updates = [], 0
    for x, y, n in stamps(every, **kw):
        updates += n  # ours logs the updates so far
        rows.append({"env_steps": x, "imag/entropy": y, "wm/prior_entropy": y / 4, "updates": updates})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def official_run(folder: pathlib.Path, every: int) -> pathlib.Path:
    folder.mkdir(parents=True)
    (folder / "harness.jsonl").write_text(json.dumps({"seed": 0}) + "\n")
    rows = []
    for x, y, n in stamps(every):
        rows.append({"step": x - 7, "episode/score": 1.0})  # episodes are rows without train metrics
        # the official logs the samples drawn since the row before (16 per update here)
        rows.append({"step": x, "train/ent/action": y, "train/dyn_ent": y, "replay/samples": 16 * n})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.mark.parametrize("ours_every,official_every", [(300, 1500), (250, 1000), (600, 3000)])
def test_quarter_means_weight_each_row_by_the_interval_it_averages(tmp_path, ours_every, official_every):
    out = tmp_path / "out"
    code = compare_metrics.main(["--ours", str(our_run(tmp_path / "ours", ours_every)),
                                 "--official", str(official_run(tmp_path / "official", official_every)),
                                 "--out", str(out)])
    assert code == 0 and (out / "metrics.png").stat().st_size > 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    for name in ("policy entropy", "prior entropy"):  # the prior entropy: ours ×latents, theirs as logged
        for impl in ("ours", "official"):
            got = {int(r["quarter"]): float(r["mean"]) for r in rows
                   if r["quantity"] == name and r["implementation"] == impl}
            assert got == pytest.approx({k: q(BUDGET * (k - 0.5) / 4) for k in (1, 2, 3, 4)}, abs=1e-9), (name, impl)
    summary = {(r["quantity"], int(r["quarter"])): r for r in csv.DictReader((out / "summary.csv").open())}
    assert float(summary["policy entropy", 2]["relative_difference"]) == pytest.approx(0, abs=1e-9)
    assert int(summary["policy entropy", 2]["official_seeds"]) == 1


def test_rows_stamped_in_a_quarter_alone_would_read_the_longer_interval_high(tmp_path):
    """Why the weighting: averaging the rows stamped inside a quarter puts the side with the
    longer interval later, so a falling quantity reads higher there (what the old means did)."""
    pts = stamps(1100)  # rows by time: their intervals straddle the quarters' bounds
    truth = [q(BUDGET * (k + 0.5) / 4) for k in range(4)]
    stamped = []
    for k in range(4):
        inside = [y for x, y, _ in pts if BUDGET * k / 4 < x <= BUDGET * (k + 1) / 4]
        stamped.append(sum(inside) / len(inside))
    ends, ys = [x for x, _, _ in pts], [y for _, y, _ in pts]
    weighted = compare_metrics.quarter_means(compare_metrics.intervals(ends), ends, ys, BUDGET)
    for k, (s, w, t) in enumerate(zip(stamped, weighted, truth)):
        assert abs(w - t) < abs(s - t) / 2, (k, s, w, t)
        assert k == 3 or s - t > 0.2, (k, s, t)  # the last quarter ends with the budget's short row


def test_a_first_row_of_one_update_covers_one_update(tmp_path):
    """Our 30-s clock starts before the replay is filled, so our first row often averages a single
    update: training from 1,000 env steps, the first row at 1,010 covers (1,000, 1,010], not a
    whole logging interval before it."""
    run = our_run(tmp_path / "ours", 1990, start=1000, first=10)  # rows at 1,010, 3,000, 4,990, …
    _, rows = compare_metrics.ours(run)
    assert rows[0]["n"] == 1 and rows[1]["n"] == 199
    starts = compare_metrics.intervals([r["x"] for r in rows], [r["n"] for r in rows])
    assert starts[:3] == [1000, 1010, 3000]
    means = compare_metrics.quarter_means(starts, [r["x"] for r in rows], [r["policy entropy"] for r in rows], BUDGET)
    assert means[0] == pytest.approx(q(2000), abs=1e-9)  # the mean over (1000, 3000], where training ran
    # without the counts the first row would stand for (0, 1010] (as long as the second, cut at 0)
    plain = compare_metrics.intervals([r["x"] for r in rows])
    assert plain[0] == 0
    biased = compare_metrics.quarter_means(plain, [r["x"] for r in rows], [r["policy entropy"] for r in rows], BUDGET)
    assert biased[0] - q(2000) > 0.05


def test_a_run_still_training_counts_only_in_the_quarters_it_has_passed(tmp_path):
    """Beside a finished run, one that has come to 40% of the budget has a first quarter and no
    second: the second's first tenth alone (q there is above the quarter's mean) would read high."""
    finished = our_run(tmp_path / "done", 300)
    partial = tmp_path / "partial"
    our_run(partial, 300)
    rows = (partial / "metrics.jsonl").read_text().splitlines()
    (partial / "metrics.jsonl").write_text("".join(r + "\n" for r in rows if json.loads(r)["env_steps"] <= 0.4 * BUDGET))
    config = json.loads((partial / "config.json").read_text())
    config["run"]["seed"] = 1
    (partial / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    assert compare_metrics.main(["--ours", str(finished), str(partial), "--official",
                                 str(official_run(tmp_path / "official", 1500)), "--out", str(out)]) == 0
    got = {(r["run"], int(r["quarter"])): float(r["mean"]) for r in csv.DictReader((out / "metrics.csv").open())
           if r["quantity"] == "policy entropy"}
    assert sorted(q for run, q in got if run == "ours seed 1") == [1]
    assert sorted(q for run, q in got if run == "ours seed 0") == [1, 2, 3, 4]  # its last row is at the budget
    assert got["ours seed 1", 1] == pytest.approx(q(BUDGET / 8), abs=1e-9)
    # a run marked finished counts in every quarter, though its last rows fall short of the budget
    # by a logging interval (as the official CartPole runs' do, by up to 920 env steps)
    (partial / "status.json").write_text(json.dumps({"state": "done"}))
    assert compare_metrics.main(["--ours", str(finished), str(partial), "--official",
                                 str(official_run(tmp_path / "official2", 1500)), "--out", str(out)]) == 0
    got = {(r["run"], int(r["quarter"])) for r in csv.DictReader((out / "metrics.csv").open())
           if r["quantity"] == "policy entropy"}
    assert sorted(q for run, q in got if run == "ours seed 1") == [1, 2]  # its rows reach into the second
    assert compare_metrics.quarter_means([0, 6000], [6000, 11_800], [1.0, 2.0], BUDGET, reached=11_800)[3] == 2.0


def test_quarters_are_of_the_configured_budget_and_a_run_without_training_rows_is_left_out(tmp_path, capsys):
    """Two runs both still training at 40% of their 12,000 env steps: the quarters are the
    budget's (read from config.json and harness.jsonl), not of the furthest run's steps, so each
    has a first quarter only. An official run with episode rows alone (just begun) is left out."""
    def cut(folder):
        rows = (folder / "metrics.jsonl").read_text().splitlines()
        keep = [r for r in rows if json.loads(r).get("env_steps", json.loads(r).get("step", 0)) <= 0.4 * BUDGET]
        (folder / "metrics.jsonl").write_text("".join(r + "\n" for r in keep))
        return folder

    mine = cut(our_run(tmp_path / "ours", 300))
    (mine / "config.json").write_text(json.dumps({"agent": {"latents": 4}, "run": {"seed": 0}, "task": {"steps": BUDGET}}))
    theirs = cut(official_run(tmp_path / "official", 1500))
    (theirs / "harness.jsonl").write_text(json.dumps({"seed": 0, "steps": BUDGET}) + "\n")
    begun = tmp_path / "begun"
    begun.mkdir()
    (begun / "harness.jsonl").write_text(json.dumps({"seed": 1, "steps": BUDGET}) + "\n")
    (begun / "metrics.jsonl").write_text(json.dumps({"step": 500, "episode/score": 1.0}) + "\n")
    out = tmp_path / "out"
    assert compare_metrics.main(["--ours", str(mine), "--official", str(theirs), str(begun), "--out", str(out)]) == 0
    got = {(r["implementation"], int(r["quarter"])) for r in csv.DictReader((out / "metrics.csv").open())
           if r["quantity"] == "policy entropy"}
    assert got == {("ours", 1), ("official", 1)}
    assert "no training metrics yet, left out" in capsys.readouterr().err


def test_a_run_without_metrics_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = compare_metrics.main(["--ours", str(empty), "--official", str(empty), "--out", str(tmp_path / "o")])
    assert code == 2 and "has no metrics.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_summary_tests_the_two_sides_seed_means():
    import math

    import pandas as pd
    from scipy import stats

    rows = [{"implementation": impl, "run": f"{impl} seed {i}", "quantity": name, "quarter": 2, "mean": v}
            for name, sides in {"shifted": ([1.0, 1.1, 0.9], [5.0, 5.2, 4.9, 5.1]),
                                "alike": ([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]),
                                "one seed": ([1.0], [2.0, 3.0])}.items()
            for impl, values in zip(("ours", "official"), sides) for i, v in enumerate(values)]
    summary = compare_metrics.side_by_side(pd.DataFrame(rows)).set_index("quantity")
    # Welch's t and its Welch-Satterthwaite degrees of freedom by hand; p from the t distribution
    a, b = np.array([1.0, 1.1, 0.9]), np.array([5.0, 5.2, 4.9, 5.1])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    expected = 2 * stats.t.sf(abs(t), df)
    assert summary.loc["shifted", "welch_p"] == pytest.approx(expected) and expected < 1e-4
    assert summary.loc["shifted", "relative_difference"] == pytest.approx((1.0 - 5.05) / 5.05)
    assert summary.loc["alike", "welch_p"] == pytest.approx(1.0)
    assert math.isnan(summary.loc["one seed", "welch_p"])
    assert summary.loc["shifted", ["ours_min", "ours_max", "official_seeds"]].tolist() == [0.9, 1.1, 4]
