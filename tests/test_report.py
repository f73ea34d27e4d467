"""The report: known answers on synthetic results, the official score files, and rliable."""

import gzip
import json
import re
import shutil
import subprocess
import tarfile
import sys
from pathlib import Path

import numpy as np
import pytest

from dreamer_bench import suites
from dreamer_bench.report import stats
from dreamer_bench.report.data import CRAFTER_EVAL, PUBLISHED_DIR, load_published, load_results, records_from_score_file
from dreamer_bench.results import read_score_file, write_score_file
from dreamer_bench.report.scores import score_matrices, score_table


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True, text=True)


def write_run(root: Path, suite, variant, task, seed, xs, ys, state="done", steps=1000, family="gym",
              refs=None, normalise=None, score=None, identity="abc123"):
    d = root / suite / variant / task / f"seed_{seed}"
    d.mkdir(parents=True)
    task_settings = {"task": task, "family": family, "steps": steps, "refs": refs or {"random": 0.0, "max": 100.0},
                     "normalise": normalise or {"method": "range"}, "score": score or {"rule": "last", "width": 100},
                     "env": {}}
    off = [] if variant == "full" else variant[4:].split("+")
    (d / "config.json").write_text(json.dumps({"run": {"suite": suite, "task": task, "variant": variant, "seed": seed},
                                               "task": task_settings, "agent": {"off": off}, "identity": identity}))
    (d / "status.json").write_text(json.dumps({"state": state}))
    (d / "scores.json").write_text(json.dumps([{"task": task, "method": variant, "seed": seed, "xs": xs, "ys": ys}]))
    return d


@pytest.fixture
def synthetic(tmp_path):
    """Two tasks × 3 seeds × {full, off-symlog}; the score is the mean of episodes in (900, 1000]."""
    root = tmp_path / "results"
    finals = {("full", "task_a"): [80, 90, 100], ("full", "task_b"): [40, 50, 60],
              ("off-symlog", "task_a"): [20, 30, 40], ("off-symlog", "task_b"): [10, 20, 30]}
    for (variant, task), values in finals.items():
        for seed, v in enumerate(values):
            # an early episode outside the window that must not count, then two inside it
            write_run(root, "toy", variant, f"gym_{task}", seed, [500, 950, 1000], [-999.0, v - 5.0, v + 5.0])
    return root


def test_known_answers_on_a_synthetic_results_directory(synthetic):
    runs, notes, left_out = load_results(synthetic)
    assert len(runs) == 12 and not notes and not left_out
    table = score_table(runs)
    full_a = table[(table.method == "full") & (table.task == "gym_task_a")].sort_values("seed")
    assert full_a["score"].tolist() == [80.0, 90.0, 100.0]
    assert full_a["normalised"].tolist() == pytest.approx([0.8, 0.9, 1.0])
    m = score_matrices(table, ["full", "off-symlog"], ["gym_task_a", "gym_task_b"])
    assert stats.aggregate_mean(m["full"]) == pytest.approx((0.9 + 0.5) / 2)
    assert stats.aggregate_median(m["off-symlog"]) == pytest.approx((0.3 + 0.2) / 2)
    # IQM of the six full scores 0.4 0.5 0.6 0.8 0.9 1.0: drop one from each end → mean of the middle four
    assert stats.aggregate_iqm(m["full"]) == pytest.approx((0.5 + 0.6 + 0.8 + 0.9) / 4)
    assert stats.aggregate_optimality_gap(m["full"]) == pytest.approx(np.mean([0.2, 0.1, 0.0, 0.6, 0.5, 0.4]))
    # every off-symlog run loses to every full run on its task
    assert stats.probability_of_improvement(m["off-symlog"], m["full"]) == 0.0
    assert stats.probability_of_improvement(m["full"], m["full"]) == pytest.approx(0.5)


def test_report_command_writes_tables_and_figures(synthetic, tmp_path, cli_here):
    out = tmp_path / "report"
    r = cli_here("report", synthetic, "--out", out, "--reps", "2000")
    assert r.returncode == 0, r.stderr
    text = (out / "report.md").read_text()
    assert "Suite `toy`" in text and "Ablation" in text and "off-symlog" in text
    for name in ("toy_aggregates", "toy_per_task", "toy_ablation", "toy_ablation_per_task", "toy_probability_of_improvement"):
        assert (out / f"{name}.csv").exists() and (out / f"{name}.tex").exists(), name
    for name in ("toy_aggregates", "toy_ablation", "toy_performance_profiles", "toy_sample_efficiency",
                 "toy_learning_curves", "toy_probability_of_improvement"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").exists(), name
    import pandas as pd

    deltas = pd.read_csv(out / "toy_ablation.csv")
    mean = deltas[deltas.metric == "Mean"].iloc[0]
    assert mean["delta"] == pytest.approx((0.3 + 0.2) / 2 - (0.9 + 0.5) / 2)
    assert mean["upper"] < 0  # the seeds support the loss
    assert read_score_file(out / "scores.json.gz")  # all runs in the official format


def test_per_task_scores_show_a_spread_only_where_there_are_seeds_to_spread(tmp_path, cli_here):
    root = tmp_path / "results"
    write_run(root, "toy", "full", "gym_one", 0, [1000], [42.0])
    for seed, y in enumerate((30.0, 50.0)):
        write_run(root, "toy", "full", "gym_two", seed, [1000], [y])
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "rep" / "report.md").read_text().splitlines()
            if line.startswith("| gym_") and "| full |" in line}
    assert "| 42.0 |" in rows["gym_one"] and "±" not in rows["gym_one"]  # one seed: no spread to show
    assert f"| 40.0 ± {np.std([30.0, 50.0], ddof=1):.1f} |" in rows["gym_two"]  # sample std over the two seeds


def test_the_report_names_agent_settings_that_differ_from_the_preset(tmp_path, cli_here):
    from dataclasses import asdict

    from dreamer_bench.agent.config import make_config
    from dreamer_bench.runner.run import beyond_preset

    root = tmp_path / "results"
    for seed in (0, 1):
        d = write_run(root, "toy", "full", "gym_x", seed, [1000], [10.0 + seed])
        config = json.loads((d / "config.json").read_text())
        config["task"]["preset"] = "debug"
        config["agent"] = asdict(make_config("debug", {"actor_grad_cont": "backprop", "lr": "1e-3", "seed": str(seed)}))
        config["beyond_preset"] = beyond_preset("debug", config["agent"])  # as the runner records it
        (d / "config.json").write_text(json.dumps(config))
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0, r.stderr
    line = next(x for x in (tmp_path / "rep" / "report.md").read_text().splitlines() if x.startswith("Agent settings"))
    # the two --set values, and neither the seed (which differs per run) nor anything the preset fixes
    assert line == "Agent settings that differ from the preset: `full` (debug): `actor_grad_cont=backprop`, `lr=0.001`."


def test_the_report_names_the_machines_that_trained_the_runs(tmp_path, cli_here):
    """From each run's starts.jsonl (a run resumed elsewhere counts under both machines), else its
    config.json's record, which is also the first machine of a run whose starts.jsonl begins with
    a resume (kept only from a later version on); runs that recorded neither are counted as such.
    Read through an archive made by tools/evidence/pack.py, which carries starts.jsonl."""
    xeon = {"host": "a", "cpu": "Xeon (GenuineIntel family 6 model 143; AVX2, AVX-512, AMX)", "device": "cpu"}
    epyc = {"host": "b", "cpu": "AMD EPYC (AuthenticAMD family 25 model 17; AVX2)", "device": "cpu"}
    gpu = {**epyc, "device": "cuda:0", "gpu": "NVIDIA H200"}
    root = tmp_path / "results"
    dirs = [write_run(root, "toy", "full", "gym_x", seed, [1000], [10.0]) for seed in range(6)]
    starts = {0: [(0, xeon), (500, epyc)], 1: [(0, xeon), (700, xeon)], 2: [(0, gpu)],
              5: [(5000, epyc)]}  # seed 5 began before starts.jsonl was kept; its config names no CPU
    for seed, rows in starts.items():
        lines = [json.dumps({"env_steps": steps, **m}) for steps, m in rows]
        if seed == 1:
            lines.insert(1, "null")  # valid JSON but no record: skipped
        (dirs[seed] / "starts.jsonl").write_text("\n".join(lines) + "\n")
    config = json.loads((dirs[3] / "config.json").read_text())  # made before starts.jsonl: config.json says
    (dirs[3] / "config.json").write_text(json.dumps({**config, "machine": epyc}))
    archive = tmp_path / "runs.tar.gz"  # seed 4 recorded neither
    subprocess.run([sys.executable, str(REPO / "tools/evidence/pack.py"), str(archive), *map(str, dirs)],
                   check=True, capture_output=True)
    r = cli_here("report", archive, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0, r.stderr
    line = next(x for x in (tmp_path / "rep" / "report.md").read_text().splitlines() if x.startswith("Trained on"))
    assert line == ("Trained on: Xeon (GenuineIntel family 6 model 143; AVX2, AVX-512, AMX) (2 runs); "
                    "AMD EPYC (AuthenticAMD family 25 model 17; AVX2) (3 runs); "
                    "AMD EPYC (AuthenticAMD family 25 model 17; AVX2) with NVIDIA H200 (1 run); "
                    "not recorded (2 runs trained, at least in part, before runs recorded their CPU). "
                    "2 runs trained on more than one of these.")
    for d in dirs:  # runs none of which names a machine: no line
        (d / "starts.jsonl").unlink(missing_ok=True)
        (d / "config.json").write_text(json.dumps({k: v for k, v in json.loads((d / "config.json").read_text()).items()
                                                   if k != "machine"}))
    r = cli_here("report", root, "--out", tmp_path / "rep2", "--reps", "200")
    assert r.returncode == 0 and "Trained on" not in (tmp_path / "rep2" / "report.md").read_text(), r.stderr


def test_report_is_repeatable_for_a_seed(synthetic, tmp_path, cli_here):
    a = cli_here("report", synthetic, "--out", tmp_path / "a", "--reps", "1000", "--seed", "3")
    b = cli_here("report", synthetic, "--out", tmp_path / "b", "--reps", "1000", "--seed", "3")
    c = cli_here("report", synthetic, "--out", tmp_path / "c", "--reps", "1000", "--seed", "4")
    assert a.returncode == b.returncode == c.returncode == 0
    read = lambda d: (d / "toy_aggregates.csv").read_text()
    assert read(tmp_path / "a") == read(tmp_path / "b") != read(tmp_path / "c")


def test_unfinished_runs_are_left_out_and_counted_and_corrupt_files_skipped(synthetic, tmp_path, cli_here):
    write_run(synthetic, "toy", "full", "gym_task_c", 0, [1000], [50.0], state="running")
    bad = write_run(synthetic, "toy", "full", "gym_task_d", 0, [1000], [50.0])
    (bad / "scores.json").write_text('[{"task": "gym_task_d", "xs": [1')  # truncated
    queued = synthetic / "toy" / "full" / "gym_task_a" / "seed_9"  # a grid's queued run: status only
    queued.mkdir(parents=True)
    (queued / "status.json").write_text('{"state": "pending"}')
    with pytest.warns(UserWarning, match="gym_task_d"):
        runs, notes, left_out = load_results(synthetic)
    assert left_out == {"running": 1, "pending": 1} and len(notes) == 1 and "truncated" in notes[0]
    assert {r.task for r in runs} == {"gym_task_a", "gym_task_b"}
    runs, _, _ = load_results(synthetic, include_unfinished=True)
    assert "gym_task_c" in {r.task for r in runs}
    r = cli_here("report", synthetic, "--out", tmp_path / "r", "--reps", "500")
    assert r.returncode == 0 and "gym_task_d" in r.stderr
    assert "1 running" in (tmp_path / "r" / "report.md").read_text()


def test_a_corrupt_score_file_is_named_also_when_it_is_the_only_run(tmp_path, cli_here):
    only = write_run(tmp_path / "r", "toy", "full", "gym_task_a", 0, [1000], [50.0])
    (only / "scores.json").write_text('[{"task": "gym_task_a", "xs": [1')  # truncated
    r = cli_here("report", tmp_path / "r", "--out", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert "no finished runs" in line and str(only / "scores.json") in line and "truncated or corrupt" in line


def test_empty_or_missing_results_are_one_line_errors(tmp_path, cli_here):
    for target in (tmp_path / "missing", tmp_path):
        r = cli_here("report", target)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = cli_here("report", tmp_path, "--compare", "dreamerv4")
    assert r.returncode == 2 and "valid: dreamerv3, official" in r.stderr


def test_runs_of_different_configurations_are_never_pooled(tmp_path):
    root = tmp_path / "results"
    a = write_run(root, "toy", "full", "gym_x", 0, [1000], [10.0])
    b = write_run(root / "other", "toy", "full", "gym_x", 1, [1000], [90.0])
    config = json.loads((b / "config.json").read_text())
    config["agent"]["lr"] = 1e-3  # another configuration under the same label
    (b / "config.json").write_text(json.dumps(config))
    from dreamer_bench.report.data import separate_configurations

    runs = separate_configurations(load_results(root)[0])
    labels = sorted(r.method for r in runs)
    assert len(set(labels)) == 2 and all(m.startswith("full#") for m in labels)
    # a different judging rule (score window, references, target) is the same configuration
    config = json.loads((a / "config.json").read_text())
    config["task"]["refs"] = {"random": 1.0, "max": 50.0}
    config["agent"]["lr"] = 1e-3
    (a / "config.json").write_text(json.dumps(config))
    runs = separate_configurations(load_results(root)[0])
    assert [r.method for r in runs] == ["full", "full"]


def test_score_files_round_trip(tmp_path):
    records = [{"task": "atari_pong", "method": "full", "seed": 0, "xs": [4.0, 8.0], "ys": [-21.0, -20.0]}]
    for name in ("s.json", "s.json.gz"):
        write_score_file(tmp_path / name, records)
        assert read_score_file(tmp_path / name) == records


# ------------------------------------------------------------------------------------------------
# the official files

def test_official_atari_file_reproduces_the_published_aggregates():
    suite = suites.load("atari100k")
    runs = records_from_score_file(PUBLISHED_DIR / "atari100k-dreamerv3.json.gz",
                                   {k: v.to_dict() for k, v in suite.tasks.items()}, "atari100k")
    table = score_table(runs)
    m = score_matrices(table, ["dreamerv3"], list(suite.tasks))["dreamerv3"]
    assert m.shape == (5, 26)
    # the values ../shared/CONVENTIONS.md states for this rule on this file (mean 124.7%, median 49.4%)
    assert 100 * stats.aggregate_mean(m) == pytest.approx(124.7, abs=0.05)
    assert 100 * stats.aggregate_median(m) == pytest.approx(49.4, abs=0.05)
    # seeds with no episode in [390K, 400K] frames are left out for their game
    lost = {t for t in suite.tasks if np.isnan(m[:, list(suite.tasks).index(t)]).any()}
    assert {"atari_crazy_climber", "atari_gopher", "atari_kung_fu_master", "atari_pong", "atari_up_n_down"} <= lost


def test_official_dmc_proprio_file_at_490k_and_cut_at_a_users_budget():
    suite = suites.load("dmc_proprio")
    settings = {k: {**v.to_dict(), "steps": 490_000} for k, v in suite.tasks.items()}
    runs = records_from_score_file(PUBLISHED_DIR / "dmc_proprio-dreamerv3.json.gz", settings, "dmc_proprio")
    m = score_matrices(score_table(runs), ["dreamerv3"], list(suite.tasks))["dreamerv3"]
    # straight from the file: each run's points in (480K, 490K], its tasks' means over seeds
    raw = json.loads(gzip.decompress((PUBLISHED_DIR / "dmc_proprio-dreamerv3.json.gz").read_bytes()))
    per_task: dict[str, list[float]] = {}
    for rec in raw:
        xs, ys = np.array(rec["xs"], float), np.array(rec["ys"], float)
        inside = (xs > 480_000) & (xs <= 490_000)
        if inside.any():
            per_task.setdefault(rec["task"], []).append(ys[inside].mean() / 1000)
    task_means = [np.mean(v) for v in per_task.values()]
    assert len(task_means) == 18
    assert stats.aggregate_mean(m) == pytest.approx(np.mean(task_means), rel=1e-9)  # 0.758
    assert stats.aggregate_median(m) == pytest.approx(np.median(task_means), rel=1e-9)  # 0.869
    # a user's 50K run is compared with the published bin labelled 50000, never the 500K score
    from dreamer_bench.report.data import RunRecord

    mine = RunRecord(suite="learning", task="dmc_walker_walk", method="full", seed=0, xs=[50_000], ys=[300.0],
                     budget=50_000, task_settings={**suite.task("dmc_walker_walk").to_dict(), "steps": 50_000})
    published = load_published("dreamerv3", [mine])
    assert len(published) == 5 and all(r.method == "dreamerv3 (published)" for r in published)
    raw = json.loads(gzip.decompress((PUBLISHED_DIR / "dmc_proprio-dreamerv3.json.gz").read_bytes()))
    expected = [r["ys"][r["xs"].index(50000.0)] for r in raw if r["task"] == "dmc_walker_walk"]
    got = score_table(published).sort_values("seed")["score"].tolist()
    assert got == pytest.approx(expected)


def test_the_published_runs_alone_reproduce_the_published_aggregates(tmp_path, cli_here):
    """No runs of the user's: `report --compare dreamerv3 --suite atari100k` reports the published
    runs on their own, with the published human-normalised mean 124.7% and median 49.4%."""
    results = tmp_path / "results"  # a fresh clone's: not there yet
    r = cli_here("report", results, "--compare", "dreamerv3", "--suite", "atari100k", "--reps", "1000")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    agg = pd.read_csv(results / "report" / "atari100k_aggregates.csv").set_index("metric")
    assert set(agg["method"]) == {"dreamerv3 (published)"}
    assert 100 * agg.loc["Mean", "value"] == pytest.approx(124.7, abs=0.05)
    assert 100 * agg.loc["Median", "value"] == pytest.approx(49.4, abs=0.05)
    assert (agg["lower"] < agg["value"]).all() and (agg["value"] < agg["upper"]).all()
    text = (results / "report" / "report.md").read_text()
    assert "published runs alone" in text and text.count("| atari_") == 26
    # what made them is stated beside them, and only for the files the report used
    assert "`atari100k-dreamerv3.json.gz`: 2024 runs: episodes capped at 100,000 frames" in text
    assert "dmc_proprio-dreamerv3" not in text
    # the same without --suite is the usual one-line error, which now says how to see them
    r = cli_here("report", tmp_path / "elsewhere")
    assert r.returncode == 2 and "--compare dreamerv3 --suite atari100k" in r.stderr


def test_every_published_file_has_its_protocol_stated():
    from dreamer_bench.report.data import PUBLISHED, PUBLISHED_PROTOCOL

    files = {f for family in PUBLISHED.values() for f in family.values()}
    assert files == set(PUBLISHED_PROTOCOL) and all((PUBLISHED_DIR / f).exists() for f in files)


def test_the_report_states_that_the_published_dmc_proprio_runs_came_from_the_2023_agent(tmp_path, cli_here):
    r = cli_here("report", tmp_path / "results", "--compare", "dreamerv3", "--suite", "dmc_proprio", "--reps", "200")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "results" / "report" / "report.md").read_text()
    assert ("`dmc_proprio-dreamerv3.json.gz`: 2023 runs of the 2023 agent: its \"small\" model (deter 512, "
            "units 512, 2-layer MLPs), the continuous actor trained by backpropagation") in text


@pytest.mark.parametrize("suite, file, budget", [("dmc_proprio", "dmc_proprio-dreamerv3.json.gz", 490_000),
                                                 ("dmc_vision", "dmc_vision-dreamerv3.json.gz", 1_000_000)])
def test_the_published_dmc_runs_alone_are_scored_by_the_suite_rule(suite, file, budget):
    """Each published run's score is the mean return of its points in the last 10K env steps of
    its budget, computed here straight from the file; the proprio file's 10K bins stop at 490K of
    the suite's 500K, so its window is the bin labelled 490K."""
    from dreamer_bench.report.data import published_alone

    runs = published_alone("dreamerv3", [suite])
    tasks = sorted({r.task for r in runs})
    got = score_matrices(score_table(runs), ["dreamerv3 (published)"], tasks)["dreamerv3 (published)"]
    raw = json.loads(gzip.decompress((PUBLISHED_DIR / file).read_bytes()))
    per_task = {}
    for rec in raw:
        xs, ys = np.array(rec["xs"], float), np.array(rec["ys"], float)
        inside = (xs > budget - 10_000) & (xs <= budget)
        if inside.any():
            per_task.setdefault(rec["task"], []).append(ys[inside].mean() / 1000)
    assert tasks == sorted(per_task) and len(tasks) == (18 if suite == "dmc_proprio" else 20)
    expected = np.mean([np.mean(v) for v in per_task.values()])
    assert np.nanmean(np.nanmean(got, 0)) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------------------------
# against rliable

def test_point_estimates_and_intervals_agree_with_rliable():
    pytest.importorskip("rliable")
    from rliable import library as rly
    from rliable import metrics

    rng = np.random.default_rng(0)
    scores = {"a": rng.normal(0.6, 0.3, (5, 12)), "b": rng.gamma(2.0, 0.3, (5, 12))}
    funcs = {"IQM": metrics.aggregate_iqm, "Mean": metrics.aggregate_mean, "Median": metrics.aggregate_median,
             "Optimality Gap": metrics.aggregate_optimality_gap}
    ours = stats.interval_estimates(scores, reps=20_000, seed=0)
    for name, fn in funcs.items():
        points, intervals = rly.get_interval_estimates(scores, lambda x, fn=fn: np.array([fn(x)]), reps=20_000)
        for method in scores:
            value, lo, hi = ours[method][name]
            assert value == pytest.approx(points[method][0], rel=1e-12)
            width = intervals[method][1, 0] - intervals[method][0, 0]
            assert abs(lo - intervals[method][0, 0]) < 0.05 * width + 1e-9, (name, method)
            assert abs(hi - intervals[method][1, 0]) < 0.05 * width + 1e-9, (name, method)
    # probability of improvement: the same statistic as rliable's
    p = metrics.probability_of_improvement(scores["a"], scores["b"])
    assert stats.probability_of_improvement(scores["a"], scores["b"]) == pytest.approx(p)


def test_targets_are_judged_per_method(tmp_path, cli_here):
    root = tmp_path / "results"
    target = {"episodes": 2, "at_least": 90}
    for seed, ys in enumerate(([10, 95, 100], [10, 80, 100])):
        d = write_run(root, "toy", "full", "gym_t", seed, [300, 600, 1000], ys)
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = target
        (d / "config.json").write_text(json.dumps(config))
    from dreamer_bench.report.build import target_rows

    runs, _, _ = load_results(root)
    rows = target_rows(runs, ["gym_t"], ["full"])
    assert rows.iloc[0]["per_seed"] == [97.5, 90.0] and rows.iloc[0]["passed"]
    from dreamer_bench import scoring

    judged = scoring.evaluate_target({"range": [50, 60]}, [], [40.0, 80.0], 1000)
    assert judged["value"] == 60.0 and judged["passed"]
    assert not scoring.evaluate_target({"range": [50, 59]}, [], [40.0, 80.0], 1000)["passed"]
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "500")
    assert r.returncode == 0 and "PASS" in (tmp_path / "rep" / "report.md").read_text()


def test_seeds_of_one_configuration_share_an_identity():
    from dreamer_bench.results import identity_hash

    task = {"steps": 100, "score": {"rule": "last", "width": 10}}
    assert identity_hash(task, {"lr": 1e-4, "seed": 0}, "0.1.0") == identity_hash(task, {"lr": 1e-4, "seed": 7}, "0.1.0")
    assert identity_hash(task, {"lr": 1e-4, "seed": 0}, "0.1.0") != identity_hash(task, {"lr": 2e-4, "seed": 0}, "0.1.0")


def test_an_ablation_of_one_task_is_compared_on_that_task_only(tmp_path, cli_here):
    """Full agent on two tasks, the variant on one: the ablation delta is the difference on the
    shared task, not the variant's one task against the full agent's two."""
    root = tmp_path / "results"
    finals = {("full", "task_a"): [80, 90, 100], ("full", "task_b"): [10, 20, 30],
              ("off-twohot", "task_a"): [50, 60, 70]}
    for (variant, task), values in finals.items():
        for seed, v in enumerate(values):
            write_run(root, "toy", variant, f"gym_{task}", seed, [1000], [float(v)])
    out = tmp_path / "report"
    r = cli_here("report", root, "--out", out, "--reps", "2000")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    deltas = pd.read_csv(out / "toy_ablation.csv")
    mean = deltas[deltas.metric == "Mean"].iloc[0]
    assert mean["delta"] == pytest.approx(0.6 - 0.9)  # task_a only; with task_b it would be 0.6 − 0.55
    assert mean["lower"] <= -0.3 <= mean["upper"]
    per_task = pd.read_csv(out / "toy_ablation_per_task.csv")
    assert per_task["task"].tolist() == ["gym_task_a"] and per_task["delta"].iloc[0] == pytest.approx(-0.3)
    text = (out / "report.md").read_text()
    assert "`off-twohot` on gym_task_a" in text and "`full` 2 of 2; `off-twohot` 1 of 2" in text


def test_ablation_bars_are_red_where_the_variant_is_worse_for_every_metric():
    from dreamer_bench.report.figures import delta_colour

    # A higher score is better: an interval below 0 is a loss, above 0 a gain.
    assert delta_colour(-0.5, -0.1) == "tab:red"
    assert delta_colour(0.1, 0.5) == "tab:green"
    assert delta_colour(-0.2, 0.3) == "tab:gray"
    # The optimality gap is better when lower: a rise is a loss.
    assert delta_colour(0.1, 0.5, higher_is_better=False) == "tab:red"
    assert delta_colour(-0.5, -0.1, higher_is_better=False) == "tab:green"
    assert delta_colour(-0.2, 0.3, higher_is_better=False) == "tab:gray"


def test_mean_difference_interval_is_scipys_two_sample_percentile_bootstrap():
    from scipy.stats import bootstrap

    x, y = np.array([352.0, 383.0, 113.0, 290.0]), np.array([228.0, 410.0, 150.0])
    d, lo, hi = stats.mean_difference_interval(x, y, reps=40_000, seed=3)
    ref = bootstrap((x, y), lambda a, b, axis=-1: a.mean(axis) - b.mean(axis), n_resamples=40_000,
                    method="percentile", paired=False, vectorized=True, random_state=0).confidence_interval
    assert d == pytest.approx(x.mean() - y.mean())
    width = ref.high - ref.low
    assert abs(lo - ref.low) < 0.03 * width and abs(hi - ref.high) < 0.03 * width


def test_the_false_exclusion_rate_of_the_percentile_interval_matches_the_ideal_bootstrap():
    """stats.false_exclusion_rate, by Monte Carlo over resamples, against the ideal bootstrap: for
    a few seeds every resample can be enumerated (n**n equally likely index tuples per side), so
    the interval of each simulated comparison is computed exactly, independently of the sampler."""
    import itertools

    def ideal(n, m, trials=3000):
        rng = np.random.default_rng(11)
        wx = np.array([np.bincount(c, minlength=n) for c in itertools.product(range(n), repeat=n)]) / n
        wy = np.array([np.bincount(c, minlength=m) for c in itertools.product(range(m), repeat=m)]) / m
        x, y = rng.standard_normal((trials, n)), rng.standard_normal((trials, m))
        d = ((x @ wx.T)[:, :, None] - (y @ wy.T)[:, None, :]).reshape(trials, -1)
        lo, hi = np.percentile(d, [2.5, 97.5], axis=1)
        return ((lo > 0) | (hi < 0)).mean()

    for n, m in ((3, 3), (3, 4), (2, 5)):
        assert stats.false_exclusion_rate(n, m) == pytest.approx(ideal(n, m), abs=0.035), (n, m)
    # and it is the rate of the interval the targets use: mean_difference_interval itself, 600 times
    rng = np.random.default_rng(12)
    misses = [not lo <= 0 <= hi for lo, hi in (stats.mean_difference_interval(rng.standard_normal(3), rng.standard_normal(3),
                                                                              reps=1000, seed=k)[1:] for k in range(600))]
    assert np.mean(misses) == pytest.approx(stats.false_exclusion_rate(3, 3), abs=0.05)
    # far above the nominal 5% with a few seeds; near it with many
    assert stats.false_exclusion_rate(3, 3) > 0.14
    assert 0.03 < stats.false_exclusion_rate(40, 40) < 0.08


def test_a_runs_score_se_is_the_spread_of_its_windows_returns_over_their_count():
    from dreamer_bench import scoring

    rule = {"rule": "window", "start": 500, "end": 1000}
    # (500, 1000] holds 9, 11 and 13: spread 2 (n − 1), so 2 / √3; the 50 at 100 does not count
    assert scoring.run_score_se([100, 600, 800, 1000], [50, 9, 11, 13], rule, 1000) == pytest.approx(2 / 3 ** 0.5)
    assert np.isnan(scoring.run_score_se([100, 1000], [50, 9], rule, 1000))  # one episode: no spread
    assert np.isnan(scoring.run_score_se([600, 1000], [1, 2], {"rule": "crafter"}, 1000))  # not a mean


def test_the_episode_noise_se_is_how_far_the_difference_scatters_when_seeds_do_not_differ():
    # by hand: runs of standard errors 1, 1, 1 against 3, 3, 3: √(3·1/9 + 3·9/9) = √(10/3)
    assert stats.episode_noise_se([1, 1, 1], [3, 3, 3]) == pytest.approx((10 / 3) ** 0.5)
    assert np.isnan(stats.episode_noise_se([1, np.nan], [3, 3]))
    # and what it means: runs whose scores are means of 4 and 9 noisy episodes around one true value,
    # no seed effect; the difference of the two sides' mean scores scatters by exactly that
    rng = np.random.default_rng(5)
    sd_x, sd_y, k_x, k_y = 20.0, 35.0, 4, 9
    x = rng.normal(0, sd_x, (20_000, 3, k_x)).mean(-1).mean(-1)
    y = rng.normal(0, sd_y, (20_000, 2, k_y)).mean(-1).mean(-1)
    se = stats.episode_noise_se([sd_x / k_x ** 0.5] * 3, [sd_y / k_y ** 0.5] * 2)
    assert np.std(x - y) == pytest.approx(se, rel=0.02)


def test_a_match_target_shows_its_difference_in_episode_noise(tmp_path, cli_here):
    """Three seeds a side that cluster tightly make a narrow interval; beside it the report puts the
    difference over the standard error the episodes' own noise gives it."""
    from dreamer_bench.report.build import target_rows

    root = tmp_path / "results"
    for seed, final in enumerate([99, 100, 101]):  # episodes final ± 1 in the window: se 1 each
        d = write_run(root, "toy", "full", "gym_t", seed, [300, 950, 1000], [0, final - 1, final + 1])
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = {"match": "official"}
        (d / "config.json").write_text(json.dumps(config))
    runs, _, _ = load_results(root)
    settings = {"gym_t": {**runs[0].task_settings, "steps": 1000}}
    for spread, floor in ((3, (1 / 3 + 9 / 3) ** 0.5), (30, (1 / 3 + 900 / 3) ** 0.5)):  # official se 3 or 30
        path = tmp_path / f"official_{spread}.json"
        write_score_file(path, [{"task": "gym_t", "method": "official", "seed": s, "xs": [300, 950, 1000],
                                 "ys": [0, v - spread, v + spread]} for s, v in enumerate([95, 96, 97])])
        theirs = records_from_score_file(path, settings, "toy")
        row = target_rows(runs + theirs, ["gym_t"], ["full", "official"], reps=2000).iloc[0]
        assert row["passed"] is not None and not row["passed"] and row["value"] == pytest.approx(4.0)  # 0 left out
        assert row["episode_se"] == pytest.approx(floor)
        r = cli_here("report", root, "--out", tmp_path / f"rep_{spread}", "--reps", "500", "--scores", path)
        assert r.returncode == 0, r.stderr
        text = (tmp_path / f"rep_{spread}" / "report.md").read_text()
        header = next(line for line in text.splitlines() if line.startswith("| task | method | seeds | target"))
        assert header.endswith("| difference / episode SE | FAIL if equal | passed |"), header
        line = next(line for line in text.splitlines() if "interval contains 0" in line)
        assert line.endswith(f"| {4.0 / floor:.1f} | {100 * stats.false_exclusion_rate(3, 3):.0f}% | FAIL |"), line
    assert "*difference / episode SE*" in text and 4.0 / floor < 0.3  # the second: well within the noise


def test_a_match_target_judges_ours_against_the_official_runs_of_a_score_file(tmp_path, cli_here):
    from dreamer_bench.report.build import target_rows

    root = tmp_path / "results"
    for seed, final in enumerate([90, 100, 110]):
        d = write_run(root, "toy", "full", "gym_t", seed, [300, 950, 1000], [0, final - 1, final + 1])
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = {"match": "official"}
        (d / "config.json").write_text(json.dumps(config))

    def official(path, finals):
        write_score_file(path, [{"task": "gym_t", "method": "official", "seed": s, "xs": [500, 1000], "ys": [0, v]}
                                for s, v in enumerate(finals)])
        return path

    runs, _, _ = load_results(root)
    settings = {"gym_t": {**runs[0].task_settings, "steps": 1000}}
    for finals, passed in (([95, 105, 100], True), ([10, 12, 11], False), ([100], None), ([], None)):
        theirs = records_from_score_file(official(tmp_path / "o.json", finals), settings, "toy")
        rows = target_rows(runs + theirs, ["gym_t"], ["full", "official"], reps=2000)
        assert len(rows) == 1 and rows.iloc[0]["method"] == "full", rows  # official is what is matched
        assert rows.iloc[0]["passed"] == passed, finals
        rate = rows.iloc[0]["fail_if_equal"]  # for equal methods at these seeds; none where not judged
        assert rate == stats.false_exclusion_rate(3, 3) if passed is not None else np.isnan(rate), (finals, rate)
        if finals:
            assert rows.iloc[0]["value"] == pytest.approx(100 - np.mean(finals))
    # runs that are context (published, or another method of a score file) are not judged
    elsewhere = tmp_path / "elsewhere.json"
    write_score_file(elsewhere, [{"task": "gym_t", "method": "elsewhere", "seed": s, "xs": [1000], "ys": [50.0]}
                                 for s in range(3)])
    others = records_from_score_file(elsewhere, settings, "toy")
    rows = target_rows(runs + theirs + others, ["gym_t"], ["full", "official", "elsewhere"], reps=500)
    assert list(rows["method"]) == ["full"]
    # end to end: the report's table says it
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "500", "--scores", official(tmp_path / "a.json", [95, 105, 100]))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    lines = [line for line in text.splitlines() if "interval contains 0" in line]
    assert len(lines) == 1 and lines[0].startswith("| gym_t | full") and lines[0].endswith("| PASS |"), lines
    # beside the verdict, how often it would fail for equal methods at 3 against 3 seeds
    assert lines[0].endswith(f"| {100 * stats.false_exclusion_rate(3, 3):.0f}% | PASS |") and "*FAIL if equal*" in text
    # official runs of gym_t but none of another task: the hint on where they come from is for that task
    for seed in range(2):
        d = write_run(root, "toy", "full", "gym_u", seed, [300, 950, 1000], [0, 99, 101])
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = {"match": "official"}
        (d / "config.json").write_text(json.dumps(config))
    r = cli_here("report", root, "--out", tmp_path / "rep_u", "--reps", "500", "--scores", tmp_path / "a.json")
    text = (tmp_path / "rep_u" / "report.md").read_text()
    assert r.returncode == 0 and "| gym_u | full | 2 | full − official (0 seeds)" in text
    assert "No runs of `official` were given for gym_u (the official agent's reference runs: `--compare official`" in text
    for seed in range(2):
        shutil.rmtree(root / "toy" / "full" / "gym_u" / f"seed_{seed}")
    # a run that has no score yet (none of its episodes in the window) is not counted as a seed:
    # two scored official seeds and one that only began judge, and the line says 2
    begun = [{"task": "gym_t", "method": "official", "seed": s, "xs": [500, 1000], "ys": [0, v]}
             for s, v in enumerate([95, 105])] + [{"task": "gym_t", "method": "official", "seed": 2, "xs": [200], "ys": [7.0]}]
    write_score_file(tmp_path / "b.json", begun)
    rows = target_rows(runs + records_from_score_file(tmp_path / "b.json", settings, "toy"), ["gym_t"], ["full", "official"],
                       reps=2000)
    assert rows.iloc[0]["target"].startswith("full − official (2 seeds)") and rows.iloc[0]["passed"], rows
    write_score_file(tmp_path / "c.json", begun[:1] + begun[2:])  # one scored seed and one begun: not judged
    rows = target_rows(runs + records_from_score_file(tmp_path / "c.json", settings, "toy"), ["gym_t"], ["full", "official"],
                       reps=2000)
    assert "(1 seed)" in rows.iloc[0]["target"] and rows.iloc[0]["passed"] is None, rows


def learning_run(root, seed, final):
    """A finished CartPole-v1 run of the `learning` suite with its real task settings (the last 3K
    env steps score it), its episodes ending at 1K and at the budget."""
    from dreamer_bench.suites import load

    spec = next(s for s in load("learning").select([]) if s.task == "gym_CartPole-v1")
    d = write_run(root, "learning", "full", spec.task, seed, [1000.0, float(spec.steps)], [9.0, final], steps=spec.steps)
    config = json.loads((d / "config.json").read_text())
    config["task"] = spec.to_dict()
    (d / "config.json").write_text(json.dumps(config))


def test_compare_official_judges_against_the_shipped_reference_runs(tmp_path, cli_here):
    """`--compare official` reads the official agent's reference runs shipped in the package: the
    same records as the committed evidence, judged by the suite's match target; the value is
    ours − official computed here from the file by the task's rule (mean return of the episodes
    ending in the last 3K env steps)."""
    import gzip

    from dreamer_bench.report.data import OFFICIAL_REFERENCE, PUBLISHED_DIR

    shipped = json.loads(gzip.decompress((PUBLISHED_DIR / OFFICIAL_REFERENCE["learning"]).read_bytes()))
    evidence = Path(__file__).resolve().parents[1] / "evidence" / "learning" / "official" / "scores.json"
    if evidence.exists():  # in a checkout: the shipped copy is the committed one (collect.py --package)
        assert shipped == json.loads(evidence.read_text())
    theirs = []
    for rec in shipped:
        if rec["task"] == "gym_CartPole-v1" and rec["finished"]:
            window = [y for x, y in zip(rec["xs"], rec["ys"]) if 27_000 < x <= 30_000]
            theirs.append(np.mean(window))
    assert len(theirs) >= 2
    root = tmp_path / "results"
    for seed, final in enumerate([150.0, 250.0]):
        learning_run(root, seed, final)
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "500", "--compare", "official")
    assert r.returncode == 0, r.stderr
    lines = [line for line in (tmp_path / "rep" / "report.md").read_text().splitlines() if "interval contains 0" in line]
    assert len(lines) == 1 and f"full − official ({len(theirs)} seeds)" in lines[0], lines
    # the machines that trained the official runs, as their harness recorded them
    cpus = {m for rec in shipped if rec["task"] == "gym_CartPole-v1" and rec["finished"] for m in rec["machines"]}
    intro = next(line for line in (tmp_path / "rep" / "report.md").read_text().splitlines()
                 if line.startswith("The official runs trained on: "))
    assert cpus and all(f"{m} (" in intro for m in cpus), intro
    value = float(lines[0].split(" | ")[4].split(" [")[0])
    assert value == pytest.approx(200.0 - np.mean(theirs), abs=0.06)
    # without it the verdict is not given, and the report says where the official runs come from
    r = cli_here("report", root, "--out", tmp_path / "rep0", "--reps", "500")
    text = (tmp_path / "rep0" / "report.md").read_text()
    assert r.returncode == 0 and "(0 seeds): 95% interval contains 0" in text and "| NOT JUDGED |" in text
    assert "No runs of `official` were given for gym_CartPole-v1 (the official agent's reference runs: `--compare official`" in text
    # asked twice, drawn once
    r = cli_here("report", root, "--out", tmp_path / "rep1", "--reps", "500", "--compare", "official,official")
    assert r.returncode == 0 and f"full − official ({len(theirs)} seeds)" in (tmp_path / "rep1" / "report.md").read_text()
    # a run counted twice is refused, before anything is written: the shipped official runs again from a
    # score file, a score file with your own runs, one score file named twice
    write_score_file(tmp_path / "dup.json", shipped)
    write_score_file(tmp_path / "own.json", json.loads((root / "learning" / "full" / "gym_CartPole-v1" / "seed_0"
                                                        / "scores.json").read_text()))
    for extra, needle in ((["--compare", "official", "--scores", tmp_path / "dup.json"], "has runs of method official"),
                          (["--scores", tmp_path / "own.json"], "comes from both your own runs and"),
                          (["--scores", tmp_path / "own.json", "--scores", tmp_path / "own.json"], "named twice")):
        r = cli_here("report", root, "--out", tmp_path / "rep2", "--reps", "500", *extra)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
        assert not (tmp_path / "rep2").exists()
    # runs of another suite: the reference is not theirs, said in one line
    write_run(tmp_path / "other", "toy", "full", "gym_CartPole-v1", 0, [1000], [5.0])
    r = cli_here("report", tmp_path / "other", "--out", tmp_path / "rep3", "--compare", "official")
    assert r.returncode == 2 and "--compare official" in r.stderr and "learning" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and not (tmp_path / "rep3").exists()
    # before any run of yours: the reference alone
    r = cli_here("report", tmp_path / "none", "--out", tmp_path / "rep4", "--reps", "200", "--compare", "official",
                 "--suite", "learning")
    assert r.returncode == 0, r.stderr
    assert f"| gym_CartPole-v1 | official | {len(theirs)} |" in (tmp_path / "rep4" / "report.md").read_text()
    r = cli_here("report", tmp_path / "none", "--out", tmp_path / "rep5", "--compare", "official", "--suite", "smoke")
    assert r.returncode == 2 and "cover no task of smoke" in r.stderr


def test_compare_official_judges_only_runs_at_the_official_settings(tmp_path, monkeypatch):
    """The official runs were made at the suite's budget, action repeat, train ratio, preset and
    environments: a run of yours at other settings is not compared with them (a warning; an error
    where no task is left), and runs still training come only with include_unfinished."""
    import gzip

    from dreamer_bench.report import data
    from dreamer_bench.report.build import ReportOptions, make_report

    settings = {"steps": 30000, "action_repeat": 1, "train_ratio": 128.0, "preset": "size1m", "envs": 1}
    records = [{"task": "gym_CartPole-v1", "method": "official", "seed": s, "xs": [29_000, 30_000], "ys": [v, v],
                "finished": done, "settings": settings} for s, v, done in ((0, 100.0, True), (1, 120.0, True), (2, 7.0, False))]
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / data.OFFICIAL_REFERENCE["learning"]).write_bytes(gzip.compress(json.dumps(records).encode()))
    monkeypatch.setattr(data, "PUBLISHED_DIR", tmp_path / "pub")
    root = tmp_path / "results"
    for seed, final in enumerate([150.0, 250.0]):
        learning_run(root, seed, final)
    runs, _, _ = load_results(root)
    got, differ = data.load_official(runs)
    assert sorted(r.seed for r in got) == [0, 1] and differ == []
    assert sorted(r.seed for r in data.load_official(runs, include_unfinished=True)[0]) == [0, 1, 2]
    # the same runs at a larger budget and another train ratio
    for r in runs:
        r.budget, r.task_settings = 100_000.0, {**r.task_settings, "train_ratio": 512.0}
    got, differ = data.load_official(runs)
    assert got == [] and differ == ["gym_CartPole-v1 (steps: 100000.0 ≠ 30000, train_ratio: 512.0 ≠ 128.0)"]
    for seed in (0, 1):
        d = root / "learning" / "full" / "gym_CartPole-v1" / f"seed_{seed}"
        config = json.loads((d / "config.json").read_text())
        config["task"]["steps"] = 100_000
        (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(data.ReportError, match="settings differ from the official runs' on every task they share: "
                                               "gym_CartPole-v1 \\(steps: 100000.0 ≠ 30000\\)"):
        make_report(ReportOptions(results=root, out=tmp_path / "rep", compare=["official"], reps=200))


def test_runs_still_training_are_drawn_not_judged(tmp_path, monkeypatch):
    """--include-unfinished: a run part-way into its score window has a score over what it has
    reached, which is not its score. The per-task table counts it as unfinished; a target judges
    finished runs only and waits while either side has a run still training; once they finish,
    it is judged. Ours: 150, 250 finished, seed 2 at 28.5K with 900; official: 100, 120
    finished, seed 2 at 28K with 500 (window (27K, 30K])."""
    import pandas as pd

    from dreamer_bench.report import data
    from dreamer_bench.report.build import ReportOptions, make_report, target_rows

    settings = {"steps": 30000, "action_repeat": 1, "train_ratio": 128.0, "preset": "size1m", "envs": 1}

    def publish(third):  # the official seed 2: (x, y, finished)
        x, y, done = third
        records = [{"task": "gym_CartPole-v1", "method": "official", "seed": s, "xs": xs, "ys": ys, "finished": f,
                    "settings": settings}
                   for s, xs, ys, f in ((0, [30_000], [100.0], True), (1, [30_000], [120.0], True), (2, [x], [y], done))]
        (tmp_path / "pub").mkdir(exist_ok=True)
        (tmp_path / "pub" / data.OFFICIAL_REFERENCE["learning"]).write_bytes(gzip.compress(json.dumps(records).encode()))

    monkeypatch.setattr(data, "PUBLISHED_DIR", tmp_path / "pub")
    root = tmp_path / "results"
    for seed, final in enumerate([150.0, 250.0, 0.0]):
        learning_run(root, seed, final)
    third = root / "learning" / "full" / "gym_CartPole-v1" / "seed_2"

    def ours_third(x, y, state):
        (third / "status.json").write_text(json.dumps({"state": state}))
        (third / "scores.json").write_text(json.dumps([{"task": "gym_CartPole-v1", "method": "full", "seed": 2,
                                                         "xs": [1000.0, x], "ys": [9.0, y]}]))

    ours_third(28_500.0, 900.0, "running")
    publish((28_000.0, 500.0, False))
    make_report(ReportOptions(results=root, out=tmp_path / "rep", compare=["official"], reps=500,
                              include_unfinished=True))
    per_task = pd.read_csv(tmp_path / "rep" / "learning_per_task.csv").set_index("method")
    assert per_task.loc["full", "seeds"] == 3 and per_task.loc["full", "unfinished"] == 1
    assert per_task.loc["full", "score"] == pytest.approx((150 + 250 + 900) / 3)  # drawn, partial score and all
    assert per_task.loc["official", "unfinished"] == 1
    targets = pd.read_csv(tmp_path / "rep" / "learning_targets.csv")
    row = targets.iloc[0]
    assert row["seeds"] == 2 and row["value"] == pytest.approx((150 + 250) / 2 - (100 + 120) / 2)
    assert pd.isna(row["passed"]) and row["target"].endswith("waits for 2 unfinished runs")
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "NOT JUDGED" in text and "waits for it (not judged)" in text
    # one side finished: still waiting, for one run
    ours_third(30_000.0, 200.0, "done")
    runs, _, _ = load_results(root, include_unfinished=True)
    theirs, _ = data.load_official(runs, include_unfinished=True)
    rows = target_rows(runs + theirs, ["gym_CartPole-v1"], ["full", "official"], reps=500)
    assert rows.iloc[0]["passed"] is None and rows.iloc[0]["target"].endswith("waits for 1 unfinished run")
    # both finished: judged on all three seeds a side
    publish((30_000.0, 130.0, True))
    theirs, _ = data.load_official(runs, include_unfinished=True)
    rows = target_rows(runs + theirs, ["gym_CartPole-v1"], ["full", "official"], reps=500)
    assert rows.iloc[0]["passed"] in (True, False) and rows.iloc[0]["seeds"] == 3
    assert rows.iloc[0]["value"] == pytest.approx(200.0 - 350 / 3) and "waits" not in rows.iloc[0]["target"]


def test_a_target_that_is_not_a_match_waits_for_runs_still_training(tmp_path):
    """A range target over seeds 50 and 60 (finished) and a running seed at 99 so far: the value
    is over the finished seeds (55), not judged while the third trains; judged once it is done."""
    from dreamer_bench.report.build import target_rows

    root = tmp_path / "results"
    for seed, (y, state) in enumerate(((50.0, "done"), (60.0, "done"), (99.0, "running"))):
        d = write_run(root, "toy", "full", "gym_t", seed, [1000], [y], state=state)
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = {"range": [0, 70]}
        (d / "config.json").write_text(json.dumps(config))
    runs, _, _ = load_results(root, include_unfinished=True)
    row = target_rows(runs, ["gym_t"], ["full"]).iloc[0]
    assert row["value"] == pytest.approx(55.0) and row["passed"] is None and row["seeds"] == 2
    assert row["target"] == "mean over seeds in [0, 70]; waits for 1 unfinished run"
    (root / "toy" / "full" / "gym_t" / "seed_2" / "status.json").write_text(json.dumps({"state": "done"}))
    runs, _, _ = load_results(root, include_unfinished=True)
    row = target_rows(runs, ["gym_t"], ["full"]).iloc[0]
    assert row["value"] == pytest.approx(209 / 3) and row["passed"] is not None and bool(row["passed"])  # 69.67 in [0, 70]


def test_which_runs_a_target_waits_for_and_which_seeds_it_needs(tmp_path):
    """Range target [40, 60], --include-unfinished. gym_a: two finished seeds at 50 and one
    training that has logged no episode yet (no scores.json): counted, and the target waits.
    gym_b: the third seed failed: drawn, not waited for, so the target is judged on the two
    finished seeds (PASS). gym_c: three finished seeds, two without an episode in the window:
    a mean over one seed is not judged."""
    from dreamer_bench.report.build import target_rows

    root = tmp_path / "results"

    def run(task, seed, xs, ys, state="done", scores=True):
        d = write_run(root, "toy", "full", task, seed, xs, ys, state=state)
        config = json.loads((d / "config.json").read_text())
        config["task"]["target"] = {"range": [40, 60]}
        (d / "config.json").write_text(json.dumps(config))
        if not scores:
            (d / "scores.json").unlink()

    for task in ("gym_a", "gym_b"):
        run(task, 0, [950, 1000], [50.0, 50.0])
        run(task, 1, [950, 1000], [50.0, 50.0])
    run("gym_a", 2, [], [], state="running", scores=False)
    run("gym_b", 2, [200, 400], [5.0, 5.0], state="failed")
    run("gym_c", 0, [1000], [50.0])
    run("gym_c", 1, [850], [0.0])
    run("gym_c", 2, [880], [0.0])
    runs, _, left_out = load_results(root, include_unfinished=True)
    assert len(runs) == 9 and not left_out
    rows = target_rows(runs, ["gym_a", "gym_b", "gym_c"], ["full"]).set_index("task")
    assert rows.loc["gym_a", "passed"] is None and rows.loc["gym_a", "target"].endswith("waits for 1 unfinished run")
    assert bool(rows.loc["gym_b", "passed"]) and rows.loc["gym_b", "seeds"] == 2 and "waits" not in rows.loc["gym_b", "target"]
    assert rows.loc["gym_c", "passed"] is None and rows.loc["gym_c", "seeds"] == 1
    assert rows.loc["gym_c", "target"].endswith("2 seeds without a score")
    _, _, left_out = load_results(root)  # without the flag: left out and counted, as before
    assert left_out == {"running": 1, "failed": 1}


def test_captions_say_which_scores_are_over_part_of_a_window(tmp_path, cli_here):
    """off-x is still training, one episode into its (900, 1000] window: its aggregates and
    ablation are drawn, and every caption says that those 2 runs are scored on part of it."""
    root = tmp_path / "results"
    for seed in (0, 1):
        write_run(root, "toy", "full", "gym_t", seed, [950, 1000], [80.0, 80.0])
        write_run(root, "toy", "off-x", "gym_t", seed, [500, 905], [10.0, 20.0], state="running")
    r = cli_here("report", root, "--include-unfinished", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    captions = [line for line in text.splitlines() if line.startswith("*") and "seeds:" in line]
    assert captions and all("off-x 2 seeds (2 runs unfinished, scored on part of the window)" in c for c in captions)
    assert all("full 2 seeds;" in c for c in captions)  # the finished method: no mark


def test_sample_efficiency_stops_where_a_run_still_training_has_not_come(tmp_path, cli_here):
    """--include-unfinished: two finished seeds return 50 throughout, a third still training returns
    10 and its last episode ended at 550 of 1,000 env steps. Each tenth's window of 100 steps holds
    one episode per run. The curve of `full` has the tenths 0.1-0.5, each the IQM of the three runs
    (0.5, 0.5, 0.1), and stops there: at 0.6 the third run would be scored on part of its window
    and from 0.7 on it would be missing, so that the points would average other runs. The caption
    says where it stopped."""
    import pandas as pd

    root = tmp_path / "results"
    steps = [100.0 * k for k in range(1, 11)]
    for seed in (0, 1):
        write_run(root, "toy", "full", "gym_t", seed, steps, [50.0] * 10)
    write_run(root, "toy", "full", "gym_t", 2, [100.0 * k for k in range(1, 6)] + [550.0], [10.0] * 6,
              state="running")
    r = cli_here("report", root, "--include-unfinished", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    curve = pd.read_csv(tmp_path / "rep" / "toy_sample_efficiency.csv")
    assert curve["fraction"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    # the middle 50% of 3 sorted values (floor(0.75) = 0 cut from each end): their mean
    assert curve["iqm"].tolist() == pytest.approx([(0.1 + 0.5 + 0.5) / 3] * 5)
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "left out: full from 0.6 of the budget" in text


def test_a_method_at_other_settings_is_not_judged_against_the_official_runs(tmp_path, monkeypatch):
    """--compare official with `full` at the official settings and `off-x` at train ratio 16:
    `full` is judged; off-x is not comparable (no value, NOT JUDGED, the differing setting named)."""
    from dreamer_bench.report import data
    from dreamer_bench.report.build import target_rows

    settings = {"steps": 30000, "action_repeat": 1, "train_ratio": 128.0, "preset": "size1m", "envs": 1}
    records = [{"task": "gym_CartPole-v1", "method": "official", "seed": s, "xs": [30_000], "ys": [v], "finished": True,
                "settings": settings} for s, v in ((0, 100.0), (1, 120.0), (2, 140.0))]
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / data.OFFICIAL_REFERENCE["learning"]).write_bytes(gzip.compress(json.dumps(records).encode()))
    monkeypatch.setattr(data, "PUBLISHED_DIR", tmp_path / "pub")
    root = tmp_path / "results"
    for seed, final in enumerate([110.0, 130.0, 120.0]):
        learning_run(root, seed, final)
        src = root / "learning" / "full" / "gym_CartPole-v1" / f"seed_{seed}"
        dst = root / "learning" / "off-x" / "gym_CartPole-v1" / f"seed_{seed}"
        shutil.copytree(src, dst)
        config = json.loads((dst / "config.json").read_text())
        config["run"]["variant"], config["agent"]["off"], config["task"]["train_ratio"] = "off-x", ["x"], 16.0
        (dst / "config.json").write_text(json.dumps(config))
        (dst / "scores.json").write_text((dst / "scores.json").read_text().replace('"full"', '"off-x"'))
    runs, _, _ = load_results(root)
    theirs, differ = data.load_official(runs)
    assert len(theirs) == 3 and differ == []  # full matches, so the task is compared
    rows = target_rows(runs + theirs, ["gym_CartPole-v1"], ["full", "off-x", "official"], reps=500).set_index("method")
    assert rows.loc["full", "passed"] is not None and rows.loc["full", "value"] == pytest.approx(0.0)
    assert rows.loc["off-x", "passed"] is None and np.isnan(rows.loc["off-x", "value"])
    assert rows.loc["off-x", "target"].endswith("not comparable, settings differ (train_ratio: 16.0 ≠ 128.0)")


def test_a_score_file_method_named_as_your_own_is_refused(tmp_path, cli_here):
    """Another agent's runs in a --scores file under the name of your own method (other seeds)
    would pool with yours: one line, exit 2, nothing written."""
    root = tmp_path / "results"
    for seed in range(2):
        write_run(root, "toy", "full", "gym_t", seed, [950, 1000], [80.0, 80.0])
    (tmp_path / "other.json").write_text(json.dumps([{"task": "gym_t", "method": "full", "seed": s, "xs": [1000],
                                                      "ys": [10.0]} for s in (3, 4)]))
    r = cli_here("report", root, "--scores", tmp_path / "other.json", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "has runs of method full on gym_t, a method of your own runs" in r.stderr and not (tmp_path / "rep").exists()


def test_evaluation_episodes_leave_out_crafter_and_count_runs_without_them(tmp_path):
    """--episodes eval: a Crafter run's score is a rate over achievements, which evaluation
    episodes do not record, so it is left out and counted (it was once scored from its training
    episodes' achievements); a later run without evaluation episodes is counted as such."""
    root = tmp_path / "results"
    train = [{"env_steps": 100 * (i + 1), "return": float(i), "achievements": {"collect_wood": int(i >= 5)}}
             for i in range(10)]
    d = write_run(root, "cr", "full", "crafter_reward", 0, [e["env_steps"] for e in train], [e["return"] for e in train],
                  family="crafter", score={"rule": "crafter"}, normalise={"method": "none"})
    (d / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in train))
    (d / "eval_scores.json").write_text(json.dumps([{"task": "crafter_reward", "method": "full", "seed": 0,
                                                     "xs": [1000], "ys": [9.0]}]))
    e = write_run(root, "toy", "full", "gym_t", 0, [1000], [50.0])
    (e / "eval_scores.json").write_text(json.dumps([{"task": "gym_t", "method": "full", "seed": 0, "xs": [1000],
                                                     "ys": [60.0]}]))
    write_run(root, "toy", "full", "gym_t", 1, [1000], [50.0])  # made without --eval-every
    runs, notes, left_out = load_results(root, episodes="eval")
    assert [(r.task, r.seed, r.ys) for r in runs] == [("gym_t", 0, [60.0])] and not notes
    assert left_out == {"without evaluation episodes": 1, CRAFTER_EVAL: 1}


def test_a_variant_in_two_configurations_is_still_ablated(tmp_path, cli_here):
    """off-x in two configurations (a learning rate changed for seeds 2-3) is shown as two labels,
    off-x#<hash>, each ablated against the full agent (once the hash was read as a plug-in name
    and the ablation vanished)."""
    from dreamer_bench.results import baseline_variant

    root = tmp_path / "results"
    for seed in range(4):
        write_run(root, "toy", "full", "gym_t", seed, [950, 1000], [80.0, 80.0])
        d = write_run(root, "toy", "off-x", "gym_t", seed, [950, 1000], [20.0, 20.0])
        if seed >= 2:
            config = json.loads((d / "config.json").read_text())
            config["agent"]["lr"] = 2e-4
            (d / "config.json").write_text(json.dumps(config))
    r = cli_here("report", root, "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    labels = sorted(set(re.findall(r"off-x#[0-9a-f]{6}", text)))
    assert len(labels) == 2 and "### Ablation" in text
    ablation = text.split("### Ablation", 1)[1].split("\n### ", 1)[0]
    assert all(label in ablation for label in labels)
    assert [baseline_variant(v) for v in ("off-x#3a9f0c", "off-x@p#3a9f0c", "off-x@p", "off-x")] == ["full", "full@p",
                                                                                                   "full@p", "full"]


def test_runs_judged_by_different_rules_are_named(tmp_path, cli_here):
    """Seed 1 records another score window and references (its suite file changed, and only the
    other seeds were invoked again): each is scored by its own, and the report and stderr say so."""
    root = tmp_path / "results"
    write_run(root, "toy", "full", "gym_t", 0, [950, 1000], [50.0, 50.0])
    write_run(root, "toy", "full", "gym_t", 1, [950, 1000], [50.0, 50.0], refs={"random": 0.0, "max": 500.0},
              score={"rule": "last", "width": 600})
    r = cli_here("report", root, "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0
    line = ("toy/gym_t: its runs record different score, refs (full seed 0; full seed 1), and each is scored by its "
            "own; `dreamer-bench run` with the suite again brings them all to the suite file's")
    assert f"warning: {line}" in r.stderr and f"- {line}" in (tmp_path / "rep" / "report.md").read_text()


def test_published_runs_say_at_which_budget_they_are_scored(tmp_path, cli_here):
    """walker_walk at two budgets (full to 50K, off-x to 100K): the published runs are scored
    once, at the first run's budget, and the report and stderr say at which."""
    root = tmp_path / "results"
    for variant, steps in (("full", 50_000), ("off-x", 100_000)):
        write_run(root, "dmc_proprio", variant, "dmc_walker_walk", 0, [steps], [500.0], steps=steps, family="dmc",
                  normalise={"method": "divide", "by": 1000}, score={"rule": "last", "width": 10_000})
    r = cli_here("report", root, "--compare", "dreamerv3", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    line = ("dreamerv3 (published) runs of dmc_walker_walk are scored at 50,000 env steps, the budget of full's "
            "runs; your other runs of it trained to other budgets (off-x at 100,000)")
    assert f"warning: {line}" in r.stderr and f"- {line}" in (tmp_path / "rep" / "report.md").read_text()


def test_a_score_file_run_still_training_is_left_out_unless_asked(tmp_path):
    path = tmp_path / "official.json"
    path.write_text(json.dumps([{"task": "gym_t", "method": "official", "seed": s, "xs": [1000], "ys": [v],
                                 "finished": done} for s, v, done in ((0, 90.0, True), (1, 5.0, False), (2, 80.0, None))]))
    settings = {"gym_t": {"steps": 1000, "score": {"rule": "last", "width": 100}, "normalise": {"method": "none"}}}
    assert [r.seed for r in records_from_score_file(path, settings, "toy")] == [0, 2]  # no mark: a finished file
    assert [r.seed for r in records_from_score_file(path, settings, "toy", include_unfinished=True)] == [0, 1, 2]


BAD_RECORDS = {  # one record's values → what the one line says
    "scores-xs-not-numbers": ({"xs": ["a"], "ys": [1.0]}, "record 0 ('gym_task_a', 'official'): xs and ys must be numbers, got 'a'"),
    "scores-seed-not-integer": ({"seed": "zero"}, "seed must be an integer, got 'zero'"),
    "scores-lengths-differ": ({"xs": [1, 2], "ys": [1.0]}, "xs and ys differ in length (2 and 1)"),
}


@pytest.mark.parametrize("case", ["scores-not-json", *BAD_RECORDS, "filters-match-nothing", "a-filter-value-matches-nothing",
                                  "seed-negative", "results-is-a-file", "out-unwritable"])
def test_report_input_errors_are_one_line_exit_two(synthetic, tmp_path, case, cli_here):
    args = ["report", synthetic, "--reps", "100", "--out", tmp_path / "rep"]
    if case == "scores-not-json":
        (tmp_path / "bad.json").write_text("{bad")
        args += ["--scores", tmp_path / "bad.json"]
        needle = "is not a valid score file"
    elif case in BAD_RECORDS:  # once a traceback (or, for the lengths, a report of nonsense)
        change, needle = BAD_RECORDS[case]
        record = {"task": "gym_task_a", "method": "official", "seed": 0, "xs": [1000], "ys": [1.0], **change}
        (tmp_path / "bad.json").write_text(json.dumps([record]))
        args += ["--scores", tmp_path / "bad.json"]
    elif case == "a-filter-value-matches-nothing":  # once dropped without a word beside a valid one
        args += ["--tasks", "gym_task_a,gym_task_z"]
        needle = "--tasks gym_task_z matches no run in"
    elif case == "seed-negative":  # once a traceback after part of the report was written
        args += ["--seed", "-1"]
        needle = "--seed must be ≥ 0, got -1"
    elif case == "results-is-a-file":
        (tmp_path / "notes.txt").write_text("x")
        args[1] = tmp_path / "notes.txt"
        needle = "is a file, not a results directory or a .tar.gz of one"
    elif case == "filters-match-nothing":
        args += ["--tasks", "gym_task_z"]
        needle = "there are suites toy, variants full, off-symlog, tasks gym_task_a, gym_task_b"
    else:
        args[-1] = "/proc/no/report"
        needle = "report directory /proc/no/report is not writable"
    r = cli_here(*args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "rep").exists()


def test_unfinished_runs_before_their_score_window_are_drawn_not_a_traceback(tmp_path, cli_here):
    """--include-unfinished on runs that have not reached their score window (a long grid checked
    part-way): once a traceback in the performance profiles; now curves, and no score yet."""
    root = tmp_path / "results"
    for seed in (0, 1):
        write_run(root, "toy", "full", "gym_t", seed, [100, 200, 300], [10, 20, 30 + seed], state="running")
    r = cli_here("report", root, "--include-unfinished", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "No run has a score yet: none has reached its score window." in text
    assert (tmp_path / "rep" / "toy_learning_curves.png").stat().st_size > 0


def test_learning_curves_draw_each_seed_and_write_the_numbers_they_draw(tmp_path, cli_here):
    """Budget 1,000 in 20 bins of 50 env steps (labelled by their right edge): seed 0 has episodes
    ending at 30, 40 and 990 (returns 1, 3, 10), seed 1 at 45 and 1000 (5, 20). Each seed's bin
    means: 2 and 10; 5 and 20. The mean over seeds: 3.5 at 50, 15 at 1000."""
    import pandas as pd

    root = tmp_path / "results"
    write_run(root, "toy", "full", "gym_t", 0, [30, 40, 990], [1.0, 3.0, 10.0])
    write_run(root, "toy", "full", "gym_t", 1, [45, 1000], [5.0, 20.0])
    r = cli_here("report", root, "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    seeds = pd.read_csv(tmp_path / "rep" / "toy_learning_curves_seeds.csv")
    assert seeds[["seed", "env_steps", "return"]].values.tolist() == [[0, 50, 2], [0, 1000, 10], [1, 50, 5],
                                                                     [1, 1000, 20]]
    mean = pd.read_csv(tmp_path / "rep" / "toy_learning_curves.csv")
    assert mean[["env_steps", "mean"]].values.tolist() == [[50, 3.5], [1000, 15]]
    assert (mean["lower"] >= [2, 10]).all() and (mean["upper"] <= [5, 20]).all()  # a band over the two seeds
    assert "toy_learning_curves_seeds.csv" in (tmp_path / "rep" / "report.md").read_text()


def test_a_filter_value_is_checked_against_the_runs_the_other_filters_keep(tmp_path, cli_here):
    """gym_u exists, but not in suite toy: `--suite toy --tasks gym_t,gym_u` would report gym_t
    alone without a word."""
    root = tmp_path / "results"
    write_run(root, "toy", "full", "gym_t", 0, [950, 1000], [90, 90])
    write_run(root, "other", "full", "gym_u", 0, [950, 1000], [50, 50])
    r = cli_here("report", root, "--suite", "toy", "--tasks", "gym_t,gym_u", "--reps", "100", "--out", tmp_path / "rep")
    assert r.returncode == 2 and "--tasks gym_u matches no run in" in r.stderr and "valid: gym_t" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "rep").exists()
    r = cli_here("report", root, "--suite", "toy", "--tasks", "gym_t", "--reps", "100", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr


def test_a_report_over_one_seed_says_its_intervals_are_points(tmp_path, cli_here):
    root = tmp_path / "results"
    for variant, final in (("full", 90), ("off-symlog", 40)):
        write_run(root, "toy", variant, "gym_t", 0, [950, 1000], [final, final])
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "**One seed:** `full`, `off-symlog` have one seed" in text and "no difference" in text
    # the ablation, whose interval over one seed is a point that excludes 0, claims nothing
    assert "`off-symlog`: with one seed" in text and "supports no difference for it" in text
    assert "seeds: full 1 seed; off-symlog 1 seed" in text


def test_captions_name_the_statistic_the_window_and_the_seeds(synthetic, tmp_path, cli_here):
    r = cli_here("report", synthetic, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    captions = [line for line in text.splitlines() if line.startswith("*") and line.endswith(".*")]
    assert len(captions) == 5  # aggregates, ablation, profiles, sample efficiency, learning curves
    for caption in captions[:-1]:
        assert "training episodes ending in (900, 1,000] env steps" in caption
        assert "seeds: full 3 seeds; off-symlog 3 seeds" in caption and "200 resamples" in caption
    assert "IQM, mean, median and optimality gap" in captions[0] and "20 equal bins" in captions[-1]


def test_every_method_keeps_its_colour_and_published_runs_are_grey():
    from dreamer_bench.report.figures import method_colours

    a = method_colours(["full", "off-symlog", "dreamerv3 (published)"])
    b = method_colours(["full", "off-symlog", "off-unimix"])
    assert a["full"] == b["full"] and a["off-symlog"] == b["off-symlog"] and len(set(b.values())) == 3
    r, g, bl = a["dreamerv3 (published)"]
    assert r == g == bl  # a grey


def test_the_ablation_axis_does_not_magnify_a_tiny_change():
    """A −0.0006 change of a 0.5 IQM is drawn on an axis of at least ±5% of 0.5 (±0.025, then a
    10% margin), where it spans 2% of the half-axis; a real change sets the axis itself."""
    import pandas as pd

    from dreamer_bench.report.figures import ablation_span

    tiny = pd.DataFrame({"delta": [-0.0006], "lower": [-0.0009], "upper": [-0.0003]})
    assert ablation_span(tiny, 0.5) == pytest.approx(1.1 * 0.025)
    assert 0.0006 / ablation_span(tiny, 0.5) < 0.03
    large = pd.DataFrame({"delta": [-0.3], "lower": [-0.4], "upper": [-0.2]})
    assert ablation_span(large, 0.5) == pytest.approx(1.1 * 0.4)
    assert ablation_span(tiny, None) == pytest.approx(1.1 * 0.01)


def test_html_report_is_one_self_contained_file_a_browser_renders(synthetic, tmp_path, cli_here):
    """Opened in headless Chromium (Debian's, driven by Playwright) from a folder of its own: every
    table of report.md is a table, every figure an image the browser decoded."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    r = cli_here("report", synthetic, "--out", tmp_path / "rep", "--reps", "200", "--html")
    assert r.returncode == 0, r.stderr
    alone = tmp_path / "elsewhere" / "report.html"
    alone.parent.mkdir()
    shutil.copy(tmp_path / "rep" / "report.html", alone)  # without the PNG files beside it
    markdown = (tmp_path / "rep" / "report.md").read_text()
    tables = sum(1 for a, b in zip(markdown.splitlines(), markdown.splitlines()[1:])
                 if a.startswith("|") and b.startswith("|---"))
    figures = markdown.count("![")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(alone.as_uri())
            page.wait_for_load_state("load")
            found = page.evaluate("""() => ({
                tables: document.querySelectorAll('table').length,
                images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 22)})),
                headings: [...document.querySelectorAll('h2, h3')].map(h => h.textContent),
                cells: document.querySelector('table td').textContent})""")
        finally:
            browser.close()
    assert found["tables"] == tables >= 4
    assert len(found["images"]) == figures >= 5
    assert all(i["ok"] and i["src"] == "data:image/png;base64," for i in found["images"])
    assert "Suite toy" in found["headings"] and any(h.startswith("Ablation") for h in found["headings"])


def test_pooling_raw_scores_of_tasks_without_references_is_warned(tmp_path, cli_here):
    root = tmp_path / "results"
    for seed in (0, 1):
        write_run(root, "toy", "full", "gym_a", seed, [1000], [10.0 + seed], normalise={"method": "none"})
        write_run(root, "toy", "full", "gym_b", seed, [1000], [900.0 + seed])
    r = cli_here("report", root, "--out", tmp_path / "rep", "--reps", "200")
    assert r.returncode == 0 and "warning: suite toy: the aggregates pool raw scores of gym_a" in r.stderr, r.stderr
    assert "pool raw, unnormalised scores of `gym_a`" in (tmp_path / "rep" / "report.md").read_text()


# ------------------------------------------------------------------------------------------------
# committed evidence: compact archives, outside the default results folder

REPO = Path(__file__).resolve().parents[1]


def test_a_packed_results_folder_reports_as_the_folder_itself(synthetic, tmp_path, cli_here):
    runs = sorted(p.parent for p in synthetic.rglob("config.json"))
    packed = subprocess.run([sys.executable, str(REPO / "tools/evidence/pack.py"), str(tmp_path / "runs.tar.gz"),
                             *map(str, runs)], capture_output=True, text=True)
    assert packed.returncode == 0 and "12 runs" in packed.stdout, packed.stderr
    again = subprocess.run([sys.executable, str(REPO / "tools/evidence/pack.py"), str(tmp_path / "again.tar.gz"),
                            *map(str, reversed(runs))], capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "again.tar.gz").read_bytes() == (tmp_path / "runs.tar.gz").read_bytes()
    a = cli_here("report", synthetic, "--out", tmp_path / "from_folder", "--reps", "500")
    b = cli_here("report", tmp_path / "runs.tar.gz", "--reps", "500")  # default --out: runs_report beside it
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    for name in ("toy_aggregates.csv", "toy_per_task.csv", "toy_ablation.csv"):
        assert (tmp_path / "from_folder" / name).read_text() == (tmp_path / "runs_report" / name).read_text()
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar file")
    bad = cli_here("report", tmp_path / "broken.tar.gz", "--out", tmp_path / "x")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "not a readable .tar.gz" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_several_results_are_reported_as_one(tmp_path, cli_here):
    """Runs made apart (two machines, two archives of evidence) in one report: each task's runs
    from wherever they are; the same run in two of them is refused, as is one path twice."""
    a, b = tmp_path / "a", tmp_path / "b"
    for seed in (0, 1):
        write_run(a, "toy", "full", "gym_t", seed, [950, 1000], [80.0 + seed, 90.0])
        write_run(b, "toy", "full", "gym_u", seed, [950, 1000], [10.0, 20.0 + seed])
    runs = sorted(p.parent for p in b.rglob("config.json"))
    subprocess.run([sys.executable, str(REPO / "tools/evidence/pack.py"), str(tmp_path / "b.tar.gz"), *map(str, runs)],
                   check=True, capture_output=True)
    r = cli_here("report", a, tmp_path / "b.tar.gz", "--reps", "200", "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert f"Results: `{a}`, `{tmp_path / 'b.tar.gz'}`." in text
    # each run's score: the mean of its two points in the last 100 env steps; then over its 2 seeds
    assert "| gym_t | full | 2 | 85.2 ± 0.4 |" in text and "| gym_u | full | 2 | 15.2 ± 0.4 |" in text, text
    other = write_run(b, "toy", "full", "gym_t", 0, [1000], [5.0])  # the same seed in another configuration:
    config = json.loads((other / "config.json").read_text())
    config["agent"]["lr"] = 1e-3
    (other / "config.json").write_text(json.dumps(config))
    r = cli_here("report", a, b, "--reps", "200", "--out", tmp_path / "rep4")  # shown apart, not refused
    assert r.returncode == 0 and "full#" in (tmp_path / "rep4" / "report.md").read_text(), r.stderr
    write_run(b, "toy", "full", "gym_t", 1, [1000], [5.0])  # gym_t seed 1 in both, the same configuration
    r = cli_here("report", a, b, "--reps", "200", "--out", tmp_path / "rep2")
    assert r.returncode == 2 and "run toy/full/gym_t/seed_1 is in both" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "rep2").exists()
    r = cli_here("report", a, a, "--out", tmp_path / "rep3")
    assert r.returncode == 2 and "named twice" in r.stderr and not (tmp_path / "rep3").exists()


def test_a_range_target_judges_the_published_runs_too_a_match_target_only_yours(tmp_path, cli_here):
    """Beside a range target the published runs' own verdict shows whether the range is sane;
    beside a match target they are context, not compared with the official runs."""
    dmc = {"family": "dmc", "steps": 50_000, "normalise": {"method": "divide", "by": 1000},
           "score": {"rule": "last", "width": 10_000}}
    for target, name in (({"range": [206, 448]}, "range"), ({"match": "official"}, "match")):
        root = tmp_path / name
        for seed in (0, 1):
            d = write_run(root, "learning", "full", "dmc_walker_walk", seed, [45_000, 50_000], [300.0, 310.0],
                          steps=50_000, family="dmc", normalise=dmc["normalise"], score=dmc["score"])
            config = json.loads((d / "config.json").read_text())
            config["task"]["target"] = target
            (d / "config.json").write_text(json.dumps(config))
        r = cli_here("report", root, "--compare", "dreamerv3", "--reps", "200", "--out", tmp_path / f"rep_{name}")
        assert r.returncode == 0, r.stderr
        rows = [line for line in (tmp_path / f"rep_{name}" / "report.md").read_text().splitlines()
                if line.startswith("| dmc_walker_walk |") and ("PASS" in line or "FAIL" in line or "JUDGED" in line)]
        methods = [line.split(" | ")[1] for line in rows]
        assert methods == (["full", "dreamerv3 (published)"] if name == "range" else ["full"]), rows


def test_pack_update_keeps_the_copy_of_a_run_that_came_further(tmp_path):
    """Runs still training are committed as they go (`pack.py --update`): a later pack adds runs
    and moves a run's copy forward, but a run that started over (a machine without its
    checkpoints) never replaces the copy that came further."""
    def run(root, seed, steps):
        d = write_run(root, "toy", "full", "gym_t", seed, [steps], [float(steps)], state="running")
        (d / "status.json").write_text(json.dumps({"state": "running", "env_steps": steps}))
        return d

    def steps_in(archive):
        with tarfile.open(archive) as tar:
            return {m.name.split("/")[-2]: json.loads(tar.extractfile(m).read())["env_steps"]
                    for m in tar.getmembers() if m.name.endswith("status.json")}

    def pack(*args):
        out = subprocess.run([sys.executable, str(REPO / "tools/evidence/pack.py"), *map(str, args)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out

    archive = tmp_path / "runs.tar.gz"
    pack(archive, run(tmp_path / "a", 0, 20_000))
    pack("--update", archive, run(tmp_path / "b", 1, 5_000))  # another run: added beside
    assert steps_in(archive) == {"seed_0": 20_000, "seed_1": 5_000}
    out = pack("--update", archive, run(tmp_path / "c", 0, 3_000), run(tmp_path / "c", 1, 9_000))
    assert steps_in(archive) == {"seed_0": 20_000, "seed_1": 9_000}  # seed 0 started over: kept
    assert "kept the copy" in out.stderr and "20,000 env steps" in out.stderr
    pack(archive, run(tmp_path / "d", 0, 3_000))  # without --update: exactly the runs given
    assert steps_in(archive) == {"seed_0": 3_000}
    assert not list(tmp_path.glob("*.tmp"))


def test_the_repository_commits_no_runs_where_the_quick_start_writes_its_own():
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "results"], capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.split() == ["results/README.md"]  # the evidence lives in evidence/
    evidence = subprocess.run(["git", "-C", str(REPO), "ls-files", "evidence"], capture_output=True, text=True).stdout
    assert ".tar.gz" in evidence and "/config.json" not in evidence  # runs only in compact form
