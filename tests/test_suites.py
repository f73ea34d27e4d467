"""Suite files and scoring rules."""

import csv
import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dreamer_bench import scoring, suites

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="needs ../shared/reference")


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *args], capture_output=True, text=True, cwd=cwd)


def test_every_shipped_suite_loads_with_the_expected_tasks():
    expected = {"atari100k": 26, "dmc_proprio": 18, "dmc_vision": 20, "crafter": 1, "classic": 4, "smoke": 4}
    found = suites.available()
    assert set(expected) <= set(found)
    for name, count in expected.items():
        suite = suites.load(name)
        assert len(suite.tasks) == count, name
    classic = suites.load("classic")
    assert set(classic.tasks) == {"gym_CartPole-v1", "gym_Acrobot-v1", "gym_Pendulum-v1", "gym_MountainCarContinuous-v0"}
    smoke = suites.load("smoke")
    assert len({t.family for t in smoke.tasks.values()}) >= 3
    assert all(t.preset == "debug" and t.steps <= 5000 for t in smoke.tasks.values())


@needs_reference
def test_atari_references_and_names_match_the_published_files():
    suite = suites.load("atari100k")
    rows = {r["game"]: r for r in csv.DictReader(open(REFERENCE / "atari100k_scores.csv"))}
    published = {r["task"] for r in json.load(gzip.open(REFERENCE / "dreamerv3_scores" / "atari100k-dreamerv3.json.gz"))}
    assert set(suite.tasks) == published
    for task in suite.tasks.values():
        assert task.steps == 400_000 and task.action_repeat == 4 and task.env["noops"] == 30
        assert task.env["frame_cap"] == 108_000 and task.score == {"rule": "window", "start": 390000, "end": 400000, "closed": "both"}
    alien = suite.task("atari_alien")
    assert (alien.refs["random"], alien.refs["human"]) == (float(rows["Alien"]["random"]), float(rows["Alien"]["human"]))
    assert suite.task("atari_pong").normalised(14.6) == pytest.approx(1.0)


@needs_reference
def test_dmc_task_lists_match_the_published_files():
    for name, file in (("dmc_proprio", "dmc_proprio-dreamerv3"), ("dmc_vision", "dmc_vision-dreamerv3")):
        published = {r["task"] for r in json.load(gzip.open(REFERENCE / "dreamerv3_scores" / f"{file}.json.gz"))}
        assert set(suites.load(name).tasks) == published
    assert suites.load("dmc_proprio").task("dmc_walker_walk").normalised(500) == 0.5


def test_a_user_suite_file_with_overrides_and_a_custom_env(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\n"
        "defaults: {steps: 1000, train_ratio: 8, preset: debug, env: {kwargs: {target: 4}}, set: {units: 16}}\n"
        "tasks:\n"
        "  custom_env:CountingEnv: {}\n"
        "  gym_CartPole-v1: {steps: 500, set: {lr: 1e-3}, refs: {random: 20, max: 500}, normalise: {method: range}}\n")
    suite = suites.load(str(path))
    custom, cart = suite.task("custom_env:CountingEnv"), suite.task("gym_CartPole-v1")
    assert custom.family == "gym" and custom.env == {"kwargs": {"target": 4}}
    assert cart.steps == 500 and cart.set == {"units": "16", "lr": "1e-3"} and custom.steps == 1000
    assert cart.normalised(260.0) == pytest.approx(0.5)
    out = cli("tasks", str(path))
    assert out.returncode == 0 and "custom_env:CountingEnv" in out.stdout


def test_a_suite_dropped_into_suites_of_the_working_directory_is_listed(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "dropped.yaml").write_text(
        "defaults: {steps: 100, train_ratio: 1, preset: debug}\ntasks: {gym_CartPole-v1: {}}\n")
    out = cli("suites", cwd=tmp_path)
    assert out.returncode == 0 and "dropped" in out.stdout and "smoke" in out.stdout


def test_a_folder_named_like_a_suite_does_not_shadow_it(tmp_path):
    # e.g. running from the folder that holds the results folder "learning/"
    (tmp_path / "smoke").mkdir()
    out = cli("tasks", "smoke", cwd=tmp_path)
    assert out.returncode == 0 and "gym_CartPole-v1" in out.stdout


@pytest.mark.parametrize("text, needle", [
    ("defaults: {steps: 10, train_ratio: 1, preset: size3m}\ntasks: {gym_CartPole-v1: {}}", "unknown preset 'size3m'"),
    ("defaults: {steps: 10, train_ratio: 1, preset: debug, stepz: 3}\ntasks: {gym_CartPole-v1: {}}", "unknown key(s) stepz"),
    ("defaults: {steps: 10, train_ratio: 1, preset: debug}\ntasks: {pong: {}}", "belongs to no family"),
    ("defaults: {steps: 0, train_ratio: 1, preset: debug}\ntasks: {gym_CartPole-v1: {}}", "steps must be ≥ 1"),
    ("defaults: {steps: 10, train_ratio: 1, preset: debug, normalise: {method: human}}\ntasks: {atari_pong: {}}", "needs refs random, human"),
    ("tasks: [", "is not valid YAML at line"),
    ("defaults: {steps: 10, train_ratio: 1, preset: debug, set: {unitz: 3}}\ntasks: {gym_CartPole-v1: {}}", "unknown config field 'unitz'"),
])
def test_bad_suite_files_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(suites.SuiteError) as e:
        suites.load(str(path))
    assert needle in str(e.value) and "\n" not in str(e.value)
    out = cli("tasks", str(path))
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr


def test_unknown_suite_and_task_name_the_valid_ones():
    out = cli("tasks", "atari1000k")
    assert out.returncode == 2 and "atari100k" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    with pytest.raises(suites.SuiteError, match="valid: gym_CartPole-v1"):
        suites.load("smoke").task("gym_Cartpole-v1")


def test_score_windows():
    xs = [380_000, 390_000, 395_000, 400_000, 400_004]
    ys = [1.0, 2.0, 3.0, 4.0, 100.0]
    atari = {"rule": "window", "start": 390000, "end": 400000, "closed": "both"}
    assert scoring.run_score(xs, ys, atari, 400_000) == pytest.approx(3.0)
    dmc = {"rule": "last", "width": 10000}  # (B − 10K, B]: 390K is out
    assert scoring.run_score(xs, ys, dmc, 400_000) == pytest.approx(3.5)
    assert math.isnan(scoring.run_score([10, 20], [1, 2], dmc, 400_000))
    assert scoring.run_score([50, 95, 100], [1, 2, 3], {"rule": "last", "fraction": 0.1}, 100) == pytest.approx(2.5)


def test_crafter_score_by_hand():
    names = ["a", "b"]
    episodes = [{"a": 1, "b": 0}, {"a": 2, "b": 0}, {"a": 0, "b": 1}, {"a": 0, "b": 0}]
    s_a, s_b = 50.0, 25.0  # percent of episodes with the achievement
    expected = math.exp((math.log(1 + s_a) + math.log(1 + s_b)) / 2) - 1
    assert scoring.crafter_score(episodes, names) == pytest.approx(expected)
    full = [{n: 1 for n in names}] * 3
    assert scoring.crafter_score(full, names) == pytest.approx(100.0)


def test_learning_suite_encodes_the_learning_check():
    learning = suites.load("learning")
    cart = learning.task("gym_CartPole-v1")
    # every task is judged against the official agent's runs at the same settings
    assert cart.steps == 30_000 and cart.seeds == 3 and cart.target == {"match": "official"}
    for task in ("dmc_cartpole_swingup", "dmc_walker_walk"):
        spec = learning.task(task)
        assert (spec.steps, spec.action_repeat, spec.train_ratio, spec.preset) == (50_000, 2, 512, "size1m")
        assert spec.target == {"match": "official"} and spec.score == {"rule": "last", "width": 10000}
