"""Training runs end to end through the command line: layout, resume, ablate, failures, bad input."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from dreamer_bench.machine import cpu_description
from dreamer_bench.results import atomic_write_text, read_jsonl
from dreamer_bench.runner.lock import LockBusy, RunLock, _pid_alive

# the custom environments of tests/custom_env.py are importable the way a user's would be
TESTS = str(Path(__file__).resolve().parent)
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
       "PYTHONPATH": os.pathsep.join(p for p in (TESTS, os.environ.get("PYTHONPATH")) if p)}


def held(env_steps: int) -> dict:
    """The environment of a grid whose runs wait at ``env_steps`` for a stop request (hold_point)."""
    return {**ENV, "DREAMER_BENCH_HOLD": str(env_steps)}


HELD = held(300)  # the stop tests' runs wait at 300 env steps for the stop


def cli(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=ENV)


def write_suite(path: Path, steps=600, tasks="gym_CartPole-v1: {}") -> Path:
    path.write_text(f"name: tiny\ndefaults: {{steps: {steps}, train_ratio: 8, preset: debug, seeds: 1, "
                    f"set: {{warmup: 5}}}}\ntasks:\n  {tasks}\n")
    return path


def run_dir(results, task="gym_CartPole-v1", variant="full", seed=0, suite="tiny"):
    return Path(results) / suite / variant / task / f"seed_{seed}"


# ------------------------------------------------------------------------------------------------
# the smoke suite, then an ablation beside it

@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("smoke")
    out = cli("run", "--suite", "smoke", "--results", results, "--jobs", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    return results


def test_smoke_suite_end_to_end_writes_the_documented_layout(smoke_results):
    import dreamer_bench
    from dreamer_bench import suites
    from dreamer_bench.runner.schedule import planned_updates

    smoke = suites.load("smoke")
    for task in smoke.tasks.values():
        d = run_dir(smoke_results, task.task.replace(":", "__"), suite="smoke")
        status = json.loads((d / "status.json").read_text())
        assert status["state"] == "done" and status["env_steps"] >= task.steps
        config = json.loads((d / "config.json").read_text())
        assert config["run"] == {"suite": "smoke", "task": task.task, "variant": "full", "seed": 0}
        assert config["versions"]["torch"] and "git_commit" in config
        assert config["versions"]["dreamer_bench"] == dreamer_bench.__version__  # not an editable install's stale metadata
        assert config["machine"]["cpu"] == cpu_description()
        assert [(s["env_steps"], s["cpu"], s["mkl_cbwr"]) for s in read_jsonl(d / "starts.jsonl")] == [
            (0, cpu_description(), os.environ.get("MKL_CBWR") or None)]
        assert config["agent"]["units"] == 8 and config["task"]["steps"] == task.steps
        # the loop trained by the official schedule (tests/test_official_schedule.py)
        # every returned step counts (resets too); the steps that reached the budget are not stored
        assert status["policy_steps"] == status["env_steps"] // task.action_repeat - task.envs
        assert status["updates"] == planned_updates(status["policy_steps"], task.envs, task.train_ratio,
                                                    config["agent"]["batch_size"], config["agent"]["batch_length"])
        episodes = read_jsonl(d / "episodes.jsonl")
        assert episodes, task.task
        xs = [e["env_steps"] for e in episodes]
        assert xs == sorted(xs) and len(set(xs)) == len(xs) and xs[-1] <= status["env_steps"]
        assert all({"env_steps", "frames", "return", "length"} <= set(e) for e in episodes)
        if task.family == "crafter":
            assert all(len(e["achievements"]) == 22 for e in episodes)
        scores = json.loads((d / "scores.json").read_text())
        assert scores == [{"task": task.task, "method": "full", "seed": 0, "xs": xs, "ys": [e["return"] for e in episodes]}]
        metrics = read_jsonl(d / "metrics.jsonl")
        assert metrics and metrics[-1]["updates"] > 0 and "loss/total" in metrics[-1] and metrics[-1]["updates_per_s"] > 0
        assert (d / "checkpoint").is_dir() and not (d / "run.lock").exists()
    out = cli("status", smoke_results)
    assert out.returncode == 0 and "4 done" in out.stdout
    rows = json.loads(cli("status", smoke_results, "--json").stdout)  # the same, for scripts
    assert len(rows) == 4 and {r["state"] for r in rows} == {"done"}
    for r in rows:
        status = json.loads((Path(r["dir"]) / "status.json").read_text())
        assert (r["env_steps"], r["updates"], r["budget"]) == (status["env_steps"], status["updates"], status["budget"])


def test_a_runs_machine_record_names_the_mkl_branch_fixed_in_its_environment(monkeypatch):
    """MKL picks its code by CPU unless MKL_CBWR fixes it (README, "Reproducibility"), so each start
    of a run records which: the value a user set, or None."""
    from dreamer_bench.runner.run import RunSpec, training_machine
    from dreamer_bench.suites import load

    spec = RunSpec(suite="smoke", task=load("smoke").task("gym_CartPole-v1").to_dict(), off=(), seed=0,
                   results="/tmp/unused")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    assert training_machine(spec)["mkl_cbwr"] == "COMPATIBLE"
    monkeypatch.delenv("MKL_CBWR")
    assert training_machine(spec)["mkl_cbwr"] is None


def test_rerun_skips_finished_runs_and_ablate_trains_only_the_missing_variant(tmp_path):
    suite = tmp_path / "tiny.yaml"  # one short task: what is checked is which runs train, not how well
    suite.write_text("name: tiny\ndefaults: {steps: 300, train_ratio: 4, preset: debug, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n")
    results = tmp_path / "r"
    out = cli("run", "--suite", suite, "--results", results)
    assert out.returncode == 0, out.stderr
    full = run_dir(results, suite="tiny")
    before = json.loads((full / "status.json").read_text())
    out = cli("run", "--suite", suite, "--results", results)
    assert out.returncode == 0, out.stderr
    out = cli("ablate", "--off", "symlog", "--suite", suite, "--results", results)
    assert out.returncode == 0, out.stderr
    after = json.loads((full / "status.json").read_text())
    assert after == before  # the full agent's run was neither retrained nor touched
    off = run_dir(results, variant="off-symlog", suite="tiny")
    assert json.loads((off / "status.json").read_text())["state"] == "done"
    assert json.loads((off / "config.json").read_text())["agent"]["off"] == ["symlog"]
    assert json.loads((off / "scores.json").read_text())[0]["method"] == "off-symlog"


def test_dry_run_prints_the_grid_with_its_cost_and_starts_nothing(tmp_path):
    out = cli("ablate", "--each", "--suite", "smoke", "--tasks", "gym_CartPole-v1", "--seeds", "2",
              "--results", tmp_path / "r", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "30 runs" in out.stdout and "gradient updates" in out.stdout and "off-reward_grad" in out.stdout
    assert not (tmp_path / "r").exists()


def test_grid_runs_seed_major_so_a_partial_grid_already_compares_every_variant(tmp_path):
    from dreamer_bench.runner.build import GridOptions, build_grid

    variants = [(), ("symlog",), ("twohot",)]
    options = GridOptions(suite="smoke", tasks=["gym_CartPole-v1", "dmc_cartpole_balance"], seeds="2,0",
                          results=tmp_path / "r", threads=1)
    runs = build_grid(options, variants)
    order = [(r.seed, r.task["task"], r.off) for r in runs]
    expected = [(seed, task, off) for seed in (2, 0) for task in ("gym_CartPole-v1", "dmc_cartpole_balance")
                for off in variants]
    assert order == expected


# ------------------------------------------------------------------------------------------------
# resume after SIGKILL

def test_sigkill_then_resume_keeps_the_episode_log_up_to_the_checkpoint(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=1600)
    common = ["--suite", suite, "--threads", "1", "--checkpoint-minutes", "0.02"]
    straight = cli("run", *common, "--results", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    reference = read_jsonl(run_dir(tmp_path / "straight") / "episodes.jsonl")

    results = tmp_path / "killed"
    d = run_dir(results)
    # SIGKILL right after the first periodic checkpoint past 400 env steps, by the process itself:
    # a kill timed from outside races a fast machine's run to its end
    killed = subprocess.run([sys.executable, "-m", "dreamer_bench", "run", *map(str, common), "--results", str(results)],
                            capture_output=True, text=True, timeout=600,
                            env={**ENV, "DREAMER_BENCH_FAULT": "after-checkpoint", "DREAMER_BENCH_FAULT_FROM": "400"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    latest = sorted(p for p in (d / "checkpoint").glob("ckpt-*") if not p.name.endswith(".tmp"))[-1]  # resumed from
    loop = json.loads((latest / "loop.json").read_text())
    assert not loop["final"], "the run finished before it could be killed"
    assert json.loads((d / "status.json").read_text())["state"] == "running"  # as the kill left it

    resumed = cli("run", *common, "--results", results)
    assert resumed.returncode == 0, resumed.stderr
    episodes = read_jsonl(d / "episodes.jsonl")
    k = loop["episodes"]
    strip = lambda rows: [{key: v for key, v in r.items() if key != "time"} for r in rows]
    assert k > 0 and strip(episodes[:k]) == strip(reference[:k])
    xs = [e["env_steps"] for e in episodes]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # no duplicates
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2 and status["env_steps"] >= 1600
    # each start is on record with the counters it started from and the machine that trained it
    starts = read_jsonl(d / "starts.jsonl")
    assert [(s["env_steps"], s["updates"]) for s in starts] == [(0, 0), (loop["env_steps"], loop["updates"])]
    machine = json.loads((d / "config.json").read_text())["machine"]
    assert machine["cpu"] == cpu_description() and all(s["cpu"] == machine["cpu"] for s in starts)
    assert all(s["device"] == "cpu" and s["threads"] == 1 and s["torch"] for s in starts)
    # the schedule's state came back with the checkpoint: the same updates as without the kill
    straight_status = json.loads((run_dir(tmp_path / "straight") / "status.json").read_text())
    assert status["updates"] == straight_status["updates"] and status["policy_steps"] == straight_status["policy_steps"]


def test_a_run_killed_before_its_first_checkpoint_starts_over_without_duplicate_episodes(tmp_path):
    # A run stopped before its first checkpoint has logged episodes but has nothing to resume from:
    # it must start over with empty logs, not append the same episodes a second time. The process
    # kills itself (SIGKILL) right after its first write of the logs past 100 env steps: a kill
    # timed from outside raced a fast machine, whose run reached its final checkpoint first.
    suite = write_suite(tmp_path / "tiny.yaml", steps=1200)
    common = ["--suite", suite, "--threads", "1", "--checkpoint-minutes", "60", "--results", tmp_path / "r"]
    d = run_dir(tmp_path / "r")
    killed = subprocess.run([sys.executable, "-m", "dreamer_bench", "run", *map(str, common)], capture_output=True,
                            text=True, timeout=600,
                            env={**ENV, "DREAMER_BENCH_FAULT": "after-logs", "DREAMER_BENCH_FAULT_FROM": "100"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first = read_jsonl(d / "episodes.jsonl")
    assert len(first) >= 3 and not (d / "checkpoint").exists(), "the run reached a checkpoint before the kill"

    resumed = cli("run", *common)
    assert resumed.returncode == 0, resumed.stderr
    episodes = read_jsonl(d / "episodes.jsonl")
    xs = [e["env_steps"] for e in episodes]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # the killed attempt's episodes are not kept twice
    strip = lambda rows: [{key: v for key, v in r.items() if key != "time"} for r in rows]
    assert strip(episodes[: len(first)]) == strip(first)  # started over: the same seeds give the same episodes
    assert json.loads((d / "scores.json").read_text())[0]["xs"] == xs
    updates = [m["updates"] for m in read_jsonl(d / "metrics.jsonl")]
    assert updates == sorted(updates) and len(set(updates)) == len(updates)
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2 and status["episodes"] == len(episodes)


# ------------------------------------------------------------------------------------------------
# failures

def test_the_official_prefetch_trains_by_the_same_schedule(tmp_path):
    from dreamer_bench.runner.schedule import planned_updates

    suite = write_suite(tmp_path / "tiny.yaml", steps=400)
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--set", "replay_prefetch=true")
    assert out.returncode == 0, out.stderr
    d = run_dir(tmp_path / "r")
    status = json.loads((d / "status.json").read_text())
    config = json.loads((d / "config.json").read_text())
    assert config["agent"]["replay_prefetch"] is True and status["state"] == "done"
    # what differs from the preset is recorded for the report: the --set value and the suite's set:
    assert config["beyond_preset"] == {"replay_prefetch": True, "warmup": 5}
    # the run logs a row at its end too, however short it is (rows every 30 s besides)
    metrics = read_jsonl(d / "metrics.jsonl")
    assert metrics and metrics[-1]["updates"] == status["updates"] and "loss/total" in metrics[-1]
    assert status["updates"] == planned_updates(status["policy_steps"], 1, 8, 8, 10) > 0
    plan = cli("run", "--suite", suite, "--results", tmp_path / "plan", "--dry-run")  # the grid's cost, exactly
    assert plan.returncode == 0 and f"1 runs, {status['updates']:,} gradient updates" in plan.stdout, plan.stdout


def test_a_failing_run_records_its_traceback_and_the_others_go_on(tmp_path):
    suite = tmp_path / "mixed.yaml"
    suite.write_text("name: mixed\ndefaults: {steps: 300, train_ratio: 4, preset: debug}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n  custom_env:NanReward: {}\n")
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--retries", "1")
    assert out.returncode == 1
    assert "custom_env:NanReward" in out.stderr and "non-finite reward" in out.stderr
    ok = json.loads((tmp_path / "r/mixed/full/gym_CartPole-v1/seed_0/status.json").read_text())
    bad = json.loads((tmp_path / "r/mixed/full/custom_env__NanReward/seed_0/status.json").read_text())
    assert ok["state"] == "done"
    assert bad["state"] == "failed" and "Traceback" in bad["traceback"] and bad["attempts"] == 2


@pytest.mark.parametrize("task, env, needle", [
    ("dmc_nosuch_walk", "{}", "unknown DMC task 'nosuch_walk'; valid: acrobot_swingup"),
    ("dmc_cartpole_balance", "{obs: bogus}", "DMC observation must be 'vector' or 'image', got 'bogus'"),
    ("dmc_cartpole_balance", "{nosuch: 1}", "unknown environment setting(s) nosuch for dmc_cartpole_balance; valid:"),
    ("atari_nosuchgame", "{}", "unknown Atari game 'nosuchgame'; valid: adventure, air_raid, alien"),
    ("crafter", "{colour: red}", "unknown environment setting(s) colour for crafter"),
])
def test_an_unknown_game_task_or_setting_is_refused_before_anything_is_written(tmp_path, task, env, needle, cli_here):
    """Once only gymnasium tasks were built before the grid: these were queued (a pending
    status.json each) and failed in their workers."""
    suite = tmp_path / "bad.yaml"
    suite.write_text(f"name: bad\ndefaults: {{steps: 300, train_ratio: 4, preset: debug}}\n"
                     f"tasks:\n  gym_CartPole-v1: {{}}\n  {task}: {{env: {env}, refs: {{random: 0, human: 1}}}}\n")
    for extra in ([], ["--dry-run"]):
        code, out_text, err = cli_here("run", "--suite", suite, "--results", tmp_path / "r", *extra)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("task, needle", [
    ("custom_env:Broken", "failed to build: RuntimeError: this environment always fails"),
    ("custom_env:Missing", "has no attribute 'Missing'"),
    ("no_such_module_xyz:Env", "cannot import 'no_such_module_xyz'"),
    ("custom_env:CountingEnv", "unknown environment setting"),
    ("custom_env:WrongShape", "declares (2,)"),
    ("custom_env:FailingStep", "its first step failed: ValueError: no step today"),
])
def test_a_task_that_cannot_run_is_refused_before_anything_is_written(tmp_path, task, needle, cli_here):
    """Once, these failed with exit 1 after the run folder, config.json and status.json existed,
    and the leftover config.json then blocked the corrected rerun."""
    env = "{kwargs: {target: 3}, colour: red}" if task.endswith("CountingEnv") else "{}"
    suite = tmp_path / "bad.yaml"
    suite.write_text(f"name: bad\ndefaults: {{steps: 300, train_ratio: 4, preset: debug}}\n"
                     f"tasks:\n  gym_CartPole-v1: {{}}\n  '{task}': {{env: {env}}}\n")
    code, out_text, err = cli_here("run", "--suite", suite, "--results", tmp_path / "r")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_non_finite_losses_stop_the_run_with_a_clear_status(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=2000)
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--set", "scale_rec=3e38")  # finite, but ×loss is not
    assert out.returncode == 1
    status = json.loads((run_dir(tmp_path / "r") / "status.json").read_text())
    assert status["state"] == "failed" and "non-finite" in status["error"] and status["env_steps"] < 2000


def test_a_rerun_with_another_configuration_is_refused(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=300)
    assert cli("run", "--suite", suite, "--results", tmp_path / "r").returncode == 0
    status = (run_dir(tmp_path / "r") / "status.json").read_text()
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--set", "lr=1e-3")
    assert out.returncode == 2 and "agent.lr" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (run_dir(tmp_path / "r") / "status.json").read_text() == status


@pytest.mark.parametrize("args, needle", [
    (["run", "--suite", "atari1000k"], "valid: atari100k"),
    (["run", "--suite", "smoke", "--tasks", "atari_pongg"], "valid: gym_CartPole-v1"),
    (["ablate", "--off", "symlogg"], "valid: symlog"),
    (["ablate", "--off", "my_trick"], "(a plug-in of yours? name its file or module with --plugin)"),
    (["ablate"], "--each"),
    (["run", "--size", "size2m"], "valid: size1m"),
    (["run", "--device", "gpu"], "valid: cpu, cuda"),
    (["run", "--steps", "0"], "positive"),
    (["run", "--steps", "-5"], "positive"),
    (["run", "--set", "lr"], "key=value"),
    (["run", "--set", "lr=fast"], "cannot parse lr"),
    (["run", "--set", "speed=3"], "unknown config field 'speed'"),
    (["run", "--seeds", "two"], "--seeds"),
    (["run", "--backend", "slurm"], "valid: local, dask"),
    (["run", "--backend", "dask"], "--address"),
    (["run", "--backend", "dask", "--address", "localhost"], "--address must look like tcp://HOST:PORT"),
    (["run", "--backend", "dask", "--address", "tcp://127.0.0.1:9"], "no Dask scheduler answers at tcp://127.0.0.1:9"),
    # no silent nonsense: each of these once trained something else than asked, hung or was ignored
    (["run", "--train-ratio", "nan"], "--train-ratio must be a finite number > 0"),
    (["run", "--train-ratio", "inf"], "--train-ratio must be a finite number > 0"),
    (["run", "--set", "lr=-1"], "lr must be > 0"),
    (["run", "--set", "discount=2"], "discount must be in (0, 1]"),
    (["run", "--set", "batch_size=0"], "batch_size must be ≥ 1"),
    (["run", "--set", "horizon=0"], "horizon must be ≥ 1"),
    (["run", "--set", "device=tpu"], "device is set with --device"),
    (["run", "--set", "seed=3"], "seed is set with --seeds"),
    (["run", "--address", "tcp://127.0.0.1:1"], "--address is for --backend dask"),
    (["run", "--jobs", "0"], "--jobs must be ≥ 1, got 0"),
    (["run", "--retries", "-1"], "--retries must be ≥ 0, got -1"),
    (["run", "--checkpoint-minutes", "0"], "--checkpoint-minutes must be"),
    (["run", "--threads", "-1"], "--threads must be ≥ 0"),
    (["run", "--log-updates", "-2"], "--log-updates must be ≥ 0"),
    (["run", "--progress-minutes", "-1"], "--progress-minutes must be a finite number ≥ 0"),
    (["run", "--seeds", ""], "--seeds must be a count"),  # once an IndexError's traceback
    (["run", "--seeds", ","], "--seeds must be a count"),
    (["run", "--suite", "smoke", "--tasks", "gym_CartPole-v1,gym_CartPole-v1"], "names gym_CartPole-v1 more than once"),
])
def test_bad_input_is_one_line_exit_two_and_touches_nothing(tmp_path, args, needle, cli_here):
    code, out_text, err = cli_here(*args, "--results", tmp_path / "r")
    assert code == 2, (out_text, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, needle", [
    (["run", "--results", "/proc/dreamer-bench"], "results directory /proc/dreamer-bench is not writable"),
    (["bench", "--size", "debug", "--json", "/proc/dreamer-bench/b.json"], "is not writable"),
])
def test_unwritable_outputs_are_refused_before_any_work(args, needle, cli_here):
    code, out_text, err = cli_here(*args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert "machine:" not in out_text  # bench measured nothing first


def test_results_directory_inside_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    out = cli("run", "--results", tmp_path / "file" / "r")
    assert out.returncode == 2 and "not writable" in out.stderr and (tmp_path / "file").read_text() == "x"
    out = cli("run", "--results", tmp_path / "file")  # the file itself: said so
    assert out.returncode == 2 and f"results directory {tmp_path / 'file'} is a file, not a directory" in out.stderr
    assert (tmp_path / "file").read_text() == "x"


def test_unwritable_results_directory(tmp_path):
    """A folder that refuses files: by its permission bits, or, for root (whom they do not bind,
    as in CI), by the immutable attribute (``chattr +i``, ext4 and most Linux file systems)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    immutable = False
    try:
        if os.access(locked, os.W_OK):
            immutable = shutil.which("chattr") is not None and subprocess.run(
                ["chattr", "+i", str(locked)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("running as a user who can write anywhere, and chattr +i is not available here")
        out = cli("run", "--results", locked / "r")
        assert out.returncode == 2 and "not writable" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert list(locked.iterdir()) == []  # refused before anything was written
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)])  # a failure here must not hide the test's own
        locked.chmod(0o700)


def test_writable_asks_the_file_system_not_the_permission_bits(tmp_path):
    """Root passes every permission check, /proc's and /sys's too (os.access says yes there): the
    folder must really take a file. The probe leaves nothing behind."""
    from dreamer_bench.results import writable

    assert writable(tmp_path / "new" / "deeper") and list(tmp_path.iterdir()) == []
    assert not writable(Path("/proc/dreamer-bench/r")) and not writable(Path("/sys/dreamer-bench/r"))
    (tmp_path / "file").write_text("x")
    assert not writable(tmp_path / "file" / "r")  # inside a file


# ------------------------------------------------------------------------------------------------
# files and locks

def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    class Boom:
        def encode(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_text(target, Boom())
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_start_line_is_appended_whole_and_earlier_lines_are_never_rewritten(tmp_path):
    from dreamer_bench.results import add_start, read_starts

    add_start(tmp_path, {"env_steps": 0, "cpu": "a"})
    first = (tmp_path / "starts.jsonl").read_bytes()
    with open(tmp_path / "starts.jsonl", "ab") as f:  # a crash in the middle of the next line
        f.write(b'{"env_steps": 10, "cp')
    add_start(tmp_path, {"env_steps": 20, "cpu": "b"})
    assert (tmp_path / "starts.jsonl").read_bytes().startswith(first)
    assert read_starts(tmp_path) == [{"env_steps": 0, "cpu": "a"}, {"env_steps": 20, "cpu": "b"}]


def test_lock_excludes_a_second_owner_and_survives_a_crashed_one(tmp_path):
    lock = RunLock(tmp_path / "run.lock")
    lock.acquire()
    with pytest.raises(LockBusy):
        RunLock(tmp_path / "run.lock").acquire()
    lock.release()
    # a crashed owner: a lock file naming a process that no longer exists on this host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    (tmp_path / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": 0}))
    taken = RunLock(tmp_path / "run.lock")
    taken.acquire()
    assert taken.owned
    taken.release()
    # an owner on another host is trusted until its heartbeat is stale
    (tmp_path / "run.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": 0}))
    with pytest.raises(LockBusy):
        RunLock(tmp_path / "run.lock", stale_after=60).acquire()
    old = time.time() - 3600
    os.utime(tmp_path / "run.lock", (old, old))
    RunLock(tmp_path / "run.lock", stale_after=60).acquire()


def _contend(path, go, out):
    """One contender: wait for the start, try to take the lock, hold it a moment."""
    while not os.path.exists(go):
        time.sleep(0.001)
    lock = RunLock(path)
    try:
        lock.acquire()
    except LockBusy:
        return
    with open(out, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.3)
    lock.release()


def test_many_processes_never_both_take_over_a_stale_lock(tmp_path):
    """Once, the staleness check and the unlink were separate steps: two processes could both take
    over one stale lock (11 of 200 trials with two), and release() removed the other's lock."""
    import multiprocessing
    import socket

    ctx = multiprocessing.get_context("fork")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for trial in range(25):
        path, go, out = tmp_path / f"t{trial}" / "run.lock", tmp_path / f"go{trial}", tmp_path / f"won{trial}"
        path.parent.mkdir()
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": 0}))  # stale
        procs = [ctx.Process(target=_contend, args=(path, go, out)) for _ in range(8)]
        for proc in procs:
            proc.start()
        go.touch()
        for proc in procs:
            proc.join(30)
        winners = out.read_text().split() if out.exists() else []
        assert len(winners) == 1, (trial, winners)
        assert not path.exists()  # the winner released its own lock, and nobody else's


def test_a_held_lock_beats_from_a_thread_until_released(tmp_path):
    """The training loop touches its lock every 2 s of training; compiling, loading a replay,
    evaluating or checkpointing can block it far longer, so a thread beats too while it is held."""
    lock = RunLock(tmp_path / "run.lock", beat_every=0.1)
    lock.acquire()
    first = (tmp_path / "run.lock").stat().st_mtime_ns
    deadline = time.time() + 5
    while time.time() < deadline and (tmp_path / "run.lock").stat().st_mtime_ns == first:
        time.sleep(0.05)
    assert (tmp_path / "run.lock").stat().st_mtime_ns > first  # nobody called heartbeat()
    (beating, _) = lock._beating
    lock.release()
    assert not (tmp_path / "run.lock").exists() and not beating.is_alive()


def test_release_never_removes_another_owners_lock(tmp_path):
    first = RunLock(tmp_path / "run.lock")
    first.acquire()
    (tmp_path / "run.lock").unlink()  # as if a takeover had replaced it
    second = RunLock(tmp_path / "run.lock")
    second.acquire()
    first.release()
    assert (tmp_path / "run.lock").exists() and json.loads((tmp_path / "run.lock").read_text())["token"] == second.token
    second.release()
    assert not (tmp_path / "run.lock").exists()


def test_two_invocations_never_train_the_same_run(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=20000)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--threads", "1"]
    # the first is held at 100 env steps (hold_point): still training when the second comes
    first = subprocess.Popen([sys.executable, "-m", "dreamer_bench", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=held(100))
    d = run_dir(tmp_path / "r")
    deadline = time.time() + 120
    while time.time() < deadline and _env_steps(d) < 100:
        time.sleep(0.1)
    assert (d / "run.lock").exists() and first.poll() is None
    second = cli(*args)
    first.kill()
    first.wait()
    assert second.returncode == 1 and "being trained by pid" in second.stdout + second.stderr


def _workers(pid) -> list[int]:
    """The grid's loky worker processes (not its resource trackers)."""
    import psutil

    found = []
    for child in _descendants(pid):
        try:
            if "popen_loky_posix" in " ".join(psutil.Process(child).cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def _pair_suite(tmp_path, seeds=1, envs=1):
    suite = tmp_path / "pair.yaml"
    suite.write_text(f"name: pair\ndefaults: {{steps: 2500, train_ratio: 8, preset: debug, seeds: {seeds}, "
                     f"envs: {envs}, set: {{warmup: 5}}}}\ntasks:\n  gym_CartPole-v1: {{}}\n  gym_Acrobot-v1: {{}}\n")
    return suite, [tmp_path / "r/pair/full" / t / f"seed_{s}" for t in ("gym_CartPole-v1", "gym_Acrobot-v1")
                   for s in range(seeds)]


def _start_grid(args, stdout=subprocess.DEVNULL):
    # in a session of its own: Ctrl-C in a terminal sends SIGINT to the whole foreground process
    # group, the grid and its workers alike, which os.killpg does here; the runs are held at 300
    # env steps, so that however fast the machine, the stop comes before their budget
    return subprocess.Popen([sys.executable, "-m", "dreamer_bench", *args], stdout=stdout,
                            stderr=subprocess.PIPE, text=True, env=HELD, start_new_session=True)


def _env_steps(d) -> int:
    try:
        return int(json.loads((d / "status.json").read_text()).get("env_steps") or 0)
    except (OSError, ValueError):
        return 0


def _stop(proc, how):
    if how == "SIGTERM":  # `kill PID`: the grid's process alone
        proc.send_signal(signal.SIGTERM)
    elif how == "SIGTERM-group":  # a service manager or job scheduler: every process of the job
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)


def _descendants(pid) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _rerun_finishes(args, dirs):
    out = cli(*args)  # the rerun resumes the runs from their checkpoints
    assert out.returncode == 0, out.stdout + out.stderr
    for d in dirs:
        status = json.loads((d / "status.json").read_text())
        episodes = read_jsonl(d / "episodes.jsonl")
        xs = [e["env_steps"] for e in episodes]
        assert status["state"] == "done" and status["episodes"] == len(episodes)
        assert xs == sorted(set(xs)) and json.loads((d / "scores.json").read_text())[0]["xs"] == xs


@pytest.mark.parametrize("how,jobs,pack,envs", [("SIGTERM", 2, 1, 1), ("Ctrl-C", 2, 1, 2), ("Ctrl-C", 1, 1, 2),
                                                ("SIGTERM-group", 2, 2, 1)],
                         ids=["SIGTERM-workers", "Ctrl-C-workers-env-processes", "Ctrl-C-in-process-env-processes",
                              "SIGTERM-to-group-packed-workers"])
def test_a_stopped_grid_checkpoints_its_runs_and_leaves_no_process(tmp_path, how, jobs, pack, envs):
    """Once, a local grid's SIGTERM or Ctrl-C killed its runs where they stood: each lost what it
    had trained since its last checkpoint (up to --checkpoint-minutes of training). Now they
    checkpoint and stop, as a Dask grid's runs do. The periodic checkpoint here is an hour away,
    so a checkpoint at the steps seen before the signal can only be the stop's. Ctrl-C
    and a job scheduler's SIGTERM reach every process of the grid: the workers and the runs'
    environment processes (envs 2) must leave the stop to the runs (once, the environments quit
    and their runs failed). Packed: two tasks' two seeds, each task's seeds one group in a worker
    process."""
    from dreamer_bench.runner.run import STOPPED

    suite, dirs = _pair_suite(tmp_path, seeds=pack, envs=envs)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--jobs", str(jobs),
            "--pack", str(pack), "--checkpoint-minutes", "60"]
    started = dirs if jobs == 2 else dirs[:1]  # one job: the grid's first run trains, the other waits
    proc = _start_grid(args)
    deadline = time.time() + 180
    while time.time() < deadline and not all(_env_steps(d) >= 300 for d in started):
        time.sleep(0.2)
    seen = [_env_steps(d) for d in started]
    assert min(seen) >= 300, seen
    owners = [json.loads((d / "run.lock").read_text())["pid"] for d in started]
    children = _descendants(proc.pid)
    assert len(children) >= (jobs if jobs > 1 else 0) + (envs if envs > 1 else 0), children
    _stop(proc, how)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr[-800:]
    assert "stopping: the runs checkpoint and stop" in stderr and "Traceback" not in stderr, stderr[-800:]
    deadline = time.time() + 30  # loky's resource tracker leaves once the grid's pipe to it closes
    while time.time() < deadline and any(_pid_alive(pid) for pid in owners + children):
        time.sleep(0.2)
    assert not any(_pid_alive(pid) for pid in owners + children), "processes outlived the grid"
    for d, steps in zip(started, seen):
        status = json.loads((d / "status.json").read_text())
        assert status["state"] == "pending" and status["error"] == STOPPED, status
        (ckpt,) = (d / "checkpoint").glob("ckpt-0*")
        loop = json.loads((ckpt / "loop.json").read_text())
        # held at 300 env steps (hold_point) until the stop: the checkpoint is where the run stood
        assert loop["env_steps"] == steps == status["env_steps"] and not loop["final"]
        assert not (d / "run.lock").exists()
    if jobs == 1:  # the waiting run never started
        assert _env_steps(dirs[1]) == 0 and not (dirs[1] / "checkpoint").exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"dreamer-bench-stop-{proc.pid}-*"))
    _rerun_finishes(args, dirs)
    for d in started:
        assert json.loads((d / "status.json").read_text())["attempts"] == 2


def test_in_a_terminal_the_stop_notice_stays_on_screen_above_the_live_table(tmp_path):
    """In a terminal the grid redraws a table of its runs (rich's Live) and the stop notice must be
    printed above it: written to stderr in the middle of the redraws, the next redraw overwrote it.
    A real pseudo-terminal for the grid's output, SIGINT to its process group (what Ctrl-C sends),
    and the screen rendered as a terminal would show it (pyte, a VT100 emulator)."""
    import fcntl
    import pty
    import struct
    import termios

    import pyte

    from dreamer_bench.runner.run import STOPPED

    suite, dirs = _pair_suite(tmp_path)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2", "--checkpoint-minutes", "60"]
    columns, rows = 240, 60
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in HELD.items() if k not in ("COLUMNS", "LINES")}  # rich would take those over the pty's size
    proc = subprocess.Popen([sys.executable, "-m", "dreamer_bench", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm-256color"}, start_new_session=True)
    os.close(slave)
    received = bytearray()

    def read():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not all(_env_steps(d) >= 300 for d in dirs):
            time.sleep(0.2)
        assert all(_env_steps(d) >= 300 for d in dirs), [_env_steps(d) for d in dirs]
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=10)
        assert not reader.is_alive(), "a process of the grid still holds its terminal"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the grid left (nothing, if it passed)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        reader.join(timeout=10)  # the read ends once no process holds the terminal: then close it
        os.close(master)
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(bytes(received))
    lines = [line.rstrip() for line in screen.display if line.strip()]
    notice = [i for i, line in enumerate(lines) if line.startswith("stopping: the runs checkpoint and stop")]
    tables = [i for i, line in enumerate(lines) if "runs: " in line and "(of 2)" in line]
    assert proc.returncode == 130, "\n".join(lines)
    assert len(notice) == 1 and len(tables) == 1 and notice[0] < tables[0], "\n".join(lines)
    assert "rerun the command to resume" in lines[notice[0]]
    assert "0 running" in lines[tables[0]] and "2 pending" in lines[tables[0]], "\n".join(lines)  # the last draw
    assert lines[-1] == "interrupted"
    for d in dirs:
        assert json.loads((d / "status.json").read_text())["error"] == STOPPED


def test_a_grid_whose_output_reader_is_gone_still_checkpoints_its_runs(tmp_path):
    """`dreamer-bench run … | tee log`, then Ctrl-C: tee dies with the grid's process group, and the
    grid's next line on its output failed (EPIPE) in the middle of the grid's loop: joblib killed
    the workers and the runs lost what they had trained since their last checkpoint."""
    from dreamer_bench.runner.run import STOPPED

    suite, dirs = _pair_suite(tmp_path)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2", "--checkpoint-minutes", "60"]
    proc = _start_grid(args, stdout=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and not all(_env_steps(d) >= 300 for d in dirs):
        time.sleep(0.2)
    children = _descendants(proc.pid)
    proc.stdout.close()  # the reader of both streams is gone
    proc.stderr.close()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    deadline = time.time() + 30
    while time.time() < deadline and any(_pid_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not any(_pid_alive(pid) for pid in children), "processes outlived the grid"
    for d in dirs:
        status = json.loads((d / "status.json").read_text())
        assert status["state"] == "pending" and status["error"] == STOPPED, status
        assert list((d / "checkpoint").glob("ckpt-0*"))
    _rerun_finishes(args, dirs)


def test_a_second_signal_stops_the_grid_at_once_and_the_rerun_finishes(tmp_path):
    """The second request does not wait for the checkpoints: the runs are killed where they stand
    (status left as it was, no checkpoint: the periodic one is an hour away), and resume from
    scratch. A worker can see the first request in the instant between the two signals and
    checkpoint, so one run of the two killed is the proof; waiting for both would stop both."""
    from dreamer_bench.runner.run import STOPPED

    suite, dirs = _pair_suite(tmp_path)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2", "--checkpoint-minutes", "60"]
    proc = _start_grid(args)
    deadline = time.time() + 180
    while time.time() < deadline and not all(_env_steps(d) >= 300 for d in dirs):
        time.sleep(0.2)
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)  # two signals of different kinds: two of one kind can merge into one
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr[-800:]
    assert "stopping: the runs checkpoint and stop" in stderr and "Traceback" not in stderr, stderr[-800:]
    deadline = time.time() + 30
    while time.time() < deadline and any(_pid_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not any(_pid_alive(pid) for pid in children), "processes outlived the grid"
    stopped = [json.loads((d / "status.json").read_text()).get("error") == STOPPED for d in dirs]
    assert not all(stopped), "the second signal waited for the checkpoints"
    for d, was_stopped in zip(dirs, stopped):
        assert was_stopped or not list((d / "checkpoint").glob("ckpt-0*"))
    out = cli("status", tmp_path / "r")
    assert out.returncode == 0 and "0 done" in out.stdout, out.stdout
    _rerun_finishes(args, dirs)


def test_a_grid_stopped_while_its_workers_start_exits_cleanly(tmp_path):
    """Ctrl-C as the worker processes start (before any run has begun): once, a worker still
    starting died of it, loky broke the pool (killing every worker, training or not) and the grid
    ended in a traceback. The workers now start with the signal held back until they can treat it
    as the stop request: both runs are told to stop and say they did not start."""
    suite, dirs = _pair_suite(tmp_path)
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--jobs", "2", "--checkpoint-minutes", "60"]
    proc = _start_grid(args, stdout=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(_workers(proc.pid)) < 2:
        time.sleep(0.005)
    children = _descendants(proc.pid)
    assert len(_workers(proc.pid)) == 2 and not any((d / "run.lock").exists() for d in dirs)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr[-800:]
    assert "Traceback" not in stderr and "Error" not in stderr, stderr[-800:]
    assert stdout.count("not started (stop requested)") == 2, stdout
    deadline = time.time() + 30
    while time.time() < deadline and any(_pid_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not any(_pid_alive(pid) for pid in children), "processes outlived the grid"
    _rerun_finishes(args, dirs)


def test_three_invocations_on_one_results_folder_train_each_run_once(tmp_path):
    suite = tmp_path / "tiny.yaml"
    suite.write_text("name: tiny\ndefaults: {steps: 800, train_ratio: 8, preset: debug, seeds: 2, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n")
    args = ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--threads", "1"]
    procs = [subprocess.Popen([sys.executable, "-m", "dreamer_bench", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    # each invocation trains what no other holds; one that met a run busy in another says so and
    # exits 1 (its grid is not all done by itself)
    assert set(codes) <= {0, 1}, outs
    for (out, err), code in zip(outs, codes):
        assert "Traceback" not in err and (code == 0 or "being trained by pid" in out + err), (out, err)
    for seed in (0, 1):
        d = run_dir(tmp_path / "r", seed=seed)
        status = json.loads((d / "status.json").read_text())
        episodes = read_jsonl(d / "episodes.jsonl")
        xs = [e["env_steps"] for e in episodes]
        assert status["state"] == "done" and status["attempts"] == 1  # trained once, by one of them
        assert xs == sorted(set(xs)) and json.loads((d / "scores.json").read_text())[0]["xs"] == xs
        assert not (d / "run.lock").exists()
    assert cli(*args).returncode == 0  # and a fourth finds everything done


def test_finished_runs_drop_their_replay_unless_asked_to_keep_it(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=300)
    assert cli("run", "--suite", suite, "--results", tmp_path / "a").returncode == 0
    assert cli("run", "--suite", suite, "--results", tmp_path / "b", "--keep-replay").returncode == 0
    (a,) = (run_dir(tmp_path / "a") / "checkpoint").glob("ckpt-*")
    (b,) = (run_dir(tmp_path / "b") / "checkpoint").glob("ckpt-*")
    assert (a / "agent.pt").exists() and not (a / "replay").exists()
    assert not (a.parent / "replay").exists()  # nor its chunk store
    assert (b / "replay" / "meta.json").exists()
    from dreamer_bench.agent.config import make_config
    from dreamer_bench.runner.replay import Replay

    # the kept replay loads from its checkpoint and chunk store, every step of the run in it
    meta = json.loads((b / "replay" / "meta.json").read_text())
    chunks = sorted((b.parent / "replay").glob("*.npz"))
    assert [c.name for c in chunks] == sorted(c["file"] for c in meta["chunks"]) and chunks
    debug = make_config("debug")
    replay = Replay({"vector": (4,)}, 2, debug.deter, debug.latents, 1, meta["capacity"], meta["length"])
    replay.load(b / "replay", b.parent / "replay")
    assert int(replay.count[0]) == meta["count"][0] and len(replay) == meta["count"][0]
    assert replay.data["is_first"][0, 0] and replay.data["is_first"][0, : len(replay)].sum() >= 2


@pytest.mark.parametrize("defaults, needle", [
    ("steps: 1.5", "steps must be a whole number, got 1.5"),
    ("steps: abc", "steps must be a whole number"),
    ("train_ratio: .inf", "train_ratio must be a finite number > 0"),
    ("train_ratio: .nan", "train_ratio must be a finite number > 0"),
    ("train_ratio: fast", "train_ratio must be a finite number > 0"),
    ("set: {device: tpu}", "use --device"),
])
def test_a_suite_file_with_nonsense_numbers_is_refused_in_one_line(tmp_path, defaults, needle, cli_here):
    base = {"steps": "100", "train_ratio": "8", "preset": "debug"}
    key, value = defaults.split(": ", 1)
    base[key] = value
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\ndefaults: {" + ", ".join(f"{k}: {v}" for k, v in base.items())
                     + "}\ntasks:\n  gym_CartPole-v1: {}\n")
    code, out_text, err = cli_here("run", "--suite", suite, "--results", tmp_path / "r")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------
# faults at named points (dreamer_bench.runner.run.fault_point), with real processes

def killed_after_final_checkpoint(tmp_path):
    """A tiny run killed (SIGKILL, at the named fault point) between its final checkpoint and
    its final status. Returns (suite file, results folder, run folder)."""
    suite = write_suite(tmp_path / "tiny.yaml", steps=300)
    results, d = tmp_path / "r", run_dir(tmp_path / "r")
    killed = subprocess.run([sys.executable, "-m", "dreamer_bench", "run", "--suite", str(suite), "--results", str(results)],
                            capture_output=True, text=True, timeout=600,
                            env={**ENV, "DREAMER_BENCH_FAULT": "after-final-checkpoint"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return suite, results, d


def test_a_kill_after_the_final_checkpoint_or_a_lost_status_still_finishes_the_run(tmp_path):
    """Once, a kill between the final checkpoint (which drops the replay) and status.json saying
    done left a fully trained run failing on every rerun."""
    suite, results, d = killed_after_final_checkpoint(tmp_path)
    assert json.loads((d / "status.json").read_text())["state"] != "done"
    assert not (d / "checkpoint" / "replay").exists()  # the final checkpoint dropped it
    episodes = read_jsonl(d / "episodes.jsonl")
    assert episodes
    for attempt in ("rerun", "status lost"):
        if attempt == "status lost":
            (d / "status.json").unlink()
        out = cli("run", "--suite", suite, "--results", results)
        assert out.returncode == 0, (attempt, out.stderr)
        status = json.loads((d / "status.json").read_text())
        assert status["state"] == "done" and not status.get("error") and status["env_steps"] >= 300, attempt
        assert read_jsonl(d / "episodes.jsonl") == episodes
        scores = json.loads((d / "scores.json").read_text())[0]
        assert scores["xs"] == [e["env_steps"] for e in episodes] and scores["ys"] == [e["return"] for e in episodes]


def test_a_kill_during_a_checkpoint_write_resumes_without_duplicates(tmp_path):
    suite = write_suite(tmp_path / "tiny.yaml", steps=600)
    results, d = tmp_path / "r", run_dir(tmp_path / "r")
    common = ["--suite", str(suite), "--results", str(results), "--checkpoint-minutes", "0.01"]
    killed = subprocess.run([sys.executable, "-m", "dreamer_bench", "run", *common], capture_output=True, text=True,
                            timeout=600, env={**ENV, "DREAMER_BENCH_FAULT": "checkpoint-write"})
    assert killed.returncode != 0 and any((d / "checkpoint").glob("ckpt-*.tmp"))
    out = cli("run", *common)
    assert out.returncode == 0, out.stderr
    status = json.loads((d / "status.json").read_text())
    episodes = read_jsonl(d / "episodes.jsonl")
    xs = [e["env_steps"] for e in episodes]
    assert status["state"] == "done" and xs == sorted(set(xs)) and xs[-1] <= status["env_steps"]
    assert not list((d / "checkpoint").glob("ckpt-*.tmp"))


def test_a_corrupt_status_file_shows_as_corrupt_not_pending(tmp_path):
    d = run_dir(tmp_path / "r")
    d.mkdir(parents=True)
    (d / "status.json").write_text('{"state": "do')  # cut by a full disk, say
    out = cli("status", tmp_path / "r")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # the title wraps where the results path is long
    assert "corrupt" in text and "0 pending" in text, out.stdout


def test_workers_die_with_a_killed_grid_and_the_rerun_finishes(tmp_path):
    """Once, kill -9 of a local grid's parent left its workers training, then idling for minutes,
    and a rerun meanwhile found the runs busy. The runs are held at 200 env steps (hold_point), so
    that they are still running when the grid is killed."""
    suite = tmp_path / "tiny.yaml"
    suite.write_text("name: tiny\ndefaults: {steps: 400, train_ratio: 8, preset: debug, seeds: 2, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n")
    results = tmp_path / "r"
    grid = subprocess.Popen([sys.executable, "-m", "dreamer_bench", "run", "--suite", str(suite), "--results",
                             str(results), "--jobs", "2", "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=held(200))
    dirs = [run_dir(results, seed=s) for s in (0, 1)]
    deadline, pids = time.time() + 240, set()
    while time.time() < deadline and (len(pids) < 2 or min(_env_steps(d) for d in dirs) < 200):
        pids = {json.loads((d / "status.json").read_text()).get("pid") for d in dirs if (d / "status.json").exists()}
        pids = {p for p in pids if p and p != grid.pid}
        time.sleep(0.2)
    assert len(pids) == 2, "the workers did not start"
    os.kill(grid.pid, signal.SIGKILL)
    grid.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_pid_alive(p) for p in pids), "workers outlived their grid"
    out = cli("run", "--suite", suite, "--results", results, "--jobs", "2", "--threads", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    for d in dirs:
        assert json.loads((d / "status.json").read_text())["state"] == "done"
        xs = [e["env_steps"] for e in read_jsonl(d / "episodes.jsonl")]
        assert xs == sorted(set(xs))


def test_a_non_finite_reward_is_named_as_the_environment_s(tmp_path):
    suite = tmp_path / "nan.yaml"
    suite.write_text("name: nan\ndefaults: {steps: 200, train_ratio: 8, preset: debug}\ntasks:\n  custom_env:NanReward: {}\n")
    out = cli("run", "--suite", suite, "--results", tmp_path / "r")
    assert out.returncode != 0
    status = json.loads((tmp_path / "r/nan/full/custom_env__NanReward/seed_0/status.json").read_text())
    assert status["state"] == "failed" and "non-finite reward (nan) after env step 3" in status["error"], status["error"]
    assert "loss" not in status["error"]


def test_a_damaged_episode_line_is_reported_and_a_corrupt_config_is_not_overwritten(tmp_path):
    suite, results, d = killed_after_final_checkpoint(tmp_path)
    lines = (d / "episodes.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # one line cut in half
    (d / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    out = cli("run", "--suite", suite, "--results", results)
    assert out.returncode == 0 and "1 damaged line" in out.stderr, out.stderr
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "done" and "1 damaged line" in status["warning"]
    assert status["episodes"] == len(lines) - 1 == len(read_jsonl(d / "episodes.jsonl"))
    # a config.json that is not JSON any more: refused before anything, not silently rewritten
    (d / "config.json").write_text("{not json")
    (d / "status.json").unlink()
    out = cli("run", "--suite", suite, "--results", results)
    assert out.returncode == 2 and "not valid JSON" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (d / "config.json").read_text() == "{not json"


def test_a_malformed_suite_file_names_the_line_and_column(tmp_path, cli_here):
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\ndefaults: {steps: 100, train_ratio: 8\ntasks:\n  gym_CartPole-v1: {}\n")
    code, out_text, err = cli_here("run", "--suite", suite, "--results", tmp_path / "r")
    assert code == 2 and "not valid YAML at line 3, column" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_run_that_never_trained_does_not_block_a_corrected_rerun(tmp_path):
    def suite(nan_at):
        path = tmp_path / "nan.yaml"
        path.write_text("name: nan\ndefaults: {steps: 300, train_ratio: 8, preset: debug}\n"
                        f"tasks:\n  custom_env:NanReward: {{env: {{kwargs: {{nan_at: {nan_at}}}}}}}\n")
        return path

    d = tmp_path / "r/nan/full/custom_env__NanReward/seed_0"
    out = cli("run", "--suite", suite(3), "--results", tmp_path / "r")  # fails at its third step
    assert out.returncode == 1 and (d / "config.json").exists() and not read_jsonl(d / "episodes.jsonl")
    out = cli("run", "--suite", suite(0), "--results", tmp_path / "r")  # corrected: never NaN
    assert out.returncode == 0, out.stderr
    assert json.loads((d / "config.json").read_text())["task"]["env"]["kwargs"] == {"nan_at": 0}
    assert json.loads((d / "status.json").read_text())["state"] == "done"
    # once it has trained, a configuration change is refused as before
    out = cli("run", "--suite", suite(5), "--results", tmp_path / "r")
    assert out.returncode == 2 and "another configuration" in out.stderr


def test_log_updates_writes_a_metrics_row_per_update(tmp_path):
    """--log-updates 1: a row after each update (the packed learning check compares seeds update by
    update); with the tiny suite's ratio a policy step brings at most one update."""
    suite = write_suite(tmp_path / "tiny.yaml", steps=300)
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--log-updates", "1")
    assert out.returncode == 0, out.stderr
    d = run_dir(tmp_path / "r")
    status = json.loads((d / "status.json").read_text())
    rows = read_jsonl(d / "metrics.jsonl")
    metrics = [r for r in rows if r["updates"] > 0]
    assert status["updates"] > 5
    assert [r["updates"] for r in metrics] == list(range(1, status["updates"] + 1))
    assert all("loss/total" in r for r in metrics)
    # how often a run logs is not part of its identity: a rerun without the flag finds it done
    again = cli("run", "--suite", suite, "--results", tmp_path / "r")
    assert again.returncode == 0, again.stderr
    assert json.loads((d / "status.json").read_text())["updates"] == status["updates"]
    assert read_jsonl(d / "metrics.jsonl") == rows


def test_a_grid_logged_to_a_file_prints_progress_lines(tmp_path):
    """Output to a pipe (as under nohup into a log): no redrawn table, but a line on the running
    runs every --progress-minutes, and a line per finished run. The run is held at 1,000 env steps
    (hold_point) until two progress lines have named it running, then stopped, and a rerun
    finishes it."""
    suite = write_suite(tmp_path / "tiny.yaml", steps=3000)
    args = ["run", "--suite", suite, "--results", tmp_path / "r", "--progress-minutes", "0.02", "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "dreamer_bench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=held(1000),
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if sum(x.startswith("progress ") and "1 running" in x for x in lines) >= 2:
                break
        proc.send_signal(signal.SIGTERM)
        rest, stderr = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 130, stderr
    progress = [line for line in lines + rest.splitlines() if line.startswith("progress ")]
    running = [line for line in progress if "1 running" in line]
    assert len(running) >= 2 and all("(of 1)" in line for line in progress), lines
    # each running line names the run and its env steps against the budget (speed: below)
    assert all("gym_CartPole-v1 full seed_0 " in line and "/3,000 (" in line for line in running), running
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("[1] ") and line.endswith(": done") for line in out.stdout.splitlines()), out.stdout


def test_progress_lines_take_each_runs_pace_between_lines(tmp_path):
    """A run running at both lines: its env steps between them over the time between them; one
    that started in between keeps its own recent figure from status.json."""
    from dreamer_bench.runner.grid import ProgressLines

    import socket

    dirs = [run_dir(tmp_path, seed=s) for s in (0, 1)]
    for d in dirs:  # each held by a live process (this one), as a running run's lock is
        d.mkdir(parents=True)
        (d / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))

    def status(d, **fields):
        (d / "status.json").write_text(json.dumps({"budget": 10_000, **fields}))

    specs = [type("Spec", (), {"directory": d})() for d in dirs]
    lines = ProgressLines(specs, every=600)
    status(dirs[0], state="running", env_steps=1000, env_steps_per_s=99.0)
    status(dirs[1], state="pending", env_steps=0)
    first = lines.line(now=1000.0)
    assert "seed_0 1,000/10,000 (10%), 99.0 env steps/s" in first and "seed_1" not in first
    status(dirs[0], state="running", env_steps=4000, env_steps_per_s=99.0)  # 3,000 steps in 600 s
    status(dirs[1], state="running", env_steps=500, env_steps_per_s=10.0)  # started in between
    second = lines.line(now=1600.0)
    assert "seed_0 4,000/10,000 (40%), 5.0 env steps/s, about 20 min left" in second, second
    assert "seed_1 500/10,000 (5%), 10.0 env steps/s, about 16 min left" in second, second


def test_progress_line_by_hand():
    from dreamer_bench.runner.grid import progress_line

    rows = [{"task": "dmc_walker_walk", "variant": "full", "seed": "seed_0", "state": "running", "env_steps": 5000,
             "budget": 50000, "env_steps_per_s": 2.5},
            {"task": "dmc_walker_walk", "variant": "full", "seed": "seed_1", "state": "done", "env_steps": 50000,
             "budget": 50000, "env_steps_per_s": 3.0},
            {"task": "dmc_cartpole_swingup", "variant": "full", "seed": "seed_0", "state": "pending", "env_steps": 0,
             "budget": 50000, "env_steps_per_s": None}]
    line = progress_line(rows, now=0)
    # 45,000 steps left at 2.5/s: 18,000 s = 5.0 h
    assert line.endswith(": 1 done, 1 running, 0 failed, 1 pending (of 3); "
                         "dmc_walker_walk full seed_0 5,000/50,000 (10%), 2.5 env steps/s, about 5.0 h left"), line
