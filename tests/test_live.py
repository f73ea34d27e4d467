"""--log tensorboard and --log wandb on real runs: the event files read back with TensorBoard's own
reader, the offline W&B run files read record by record, both against the run's JSONL files."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamer_bench.results import read_jsonl
from dreamer_bench.runner.run import latest_checkpoint

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

from dreamer_bench.runner.live import wandb_history, wandb_records  # noqa: E402  (W&B's own record type)

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
ENV.pop("WANDB_MODE", None)  # the default (offline) is what is tested


def cli(*args, env=ENV, timeout=600):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def tiny_suite(path: Path, steps: int) -> Path:
    path.write_text(f"name: tiny\ndefaults: {{steps: {steps}, train_ratio: 8, preset: debug, seeds: 1, "
                    f"set: {{warmup: 5}}}}\ntasks:\n  gym_CartPole-v1: {{}}\n")
    return path


def tensorboard_scalars(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One tiny run with both loggers, killed (SIGKILL) once both have been sent rows its newest
    checkpoint does not know, then resumed to the end.

    No step of it races the clock (hold_point): the run is first trained without loggers to 500
    env steps and stopped there (SIGTERM: a checkpoint at 500, the periodic ones an hour away);
    resumed with both loggers, it is held at 1,500 env steps, by when TensorBoard was sent the
    episodes of (500, 1,500] and W&B's file of this process holds rows beyond 500 (W&B's service,
    in its own session, writes what it was sent a little later); then the kill, and a resume to
    the end."""
    root = tmp_path_factory.mktemp("live")
    suite = tiny_suite(root / "tiny.yaml", steps=3000)
    plain = ["run", "--suite", suite, "--results", root / "r", "--threads", "1", "--checkpoint-minutes", "60",
             "--log-updates", "10", "--eval-every", "1000", "--eval-episodes", "2"]
    args = plain + ["--log", "tensorboard", "--log", "wandb"]
    run = root / "r" / "tiny" / "full" / "gym_CartPole-v1" / "seed_0"
    log = (root / "killed.log").open("w")

    def start(arguments, hold):
        return subprocess.Popen([sys.executable, "-m", "dreamer_bench", *map(str, arguments)],
                                env={**ENV, "DREAMER_BENCH_HOLD": str(hold)}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def newest_checkpoint_left_behind():
        """The newest checkpoint's loop state, if both loggers already hold rows beyond it."""
        checkpoint = latest_checkpoint(run)
        if checkpoint is None or not (run / "live.json").exists():
            return None
        loop = json.loads((checkpoint / "loop.json").read_text())
        sent = json.loads((run / "live.json").read_text())["tensorboard"]["episodes"]
        in_wandb = [h["env_steps"] for h in wandb_history(wandb_records(run)) if "return" in h]
        if loop["final"] or sent <= loop["episodes"] or not any(x > loop["env_steps"] for x in in_wandb):
            return None
        return loop

    def status():
        return json.loads((run / "status.json").read_text()) if (run / "status.json").exists() else {}

    deadline, loop = time.time() + 300, None
    proc = start(plain, hold=500)
    try:
        while status().get("env_steps", 0) < 500:
            assert proc.poll() is None, "the run ended before it was held: " + (root / "killed.log").read_text()[-2000:]
            assert time.time() < deadline, "not at 500 env steps within 300 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)  # a checkpoint at 500 env steps, and the run pending
        assert proc.wait(timeout=120) == 130 and status()["state"] == "pending"
        proc = start(args, hold=1500)
        while loop is None or status()["env_steps"] < 1500:
            assert proc.poll() is None, "the run ended before it could be killed: " + (root / "killed.log").read_text()[-2000:]
            assert time.time() < deadline, "not held at 1,500 env steps with rows beyond its checkpoint in both loggers within 300 s"
            time.sleep(0.2)
            loop = newest_checkpoint_left_behind()
        assert loop["env_steps"] == 500 and status()["env_steps"] == 1500
    finally:
        # whatever happened, nothing is left running: SIGKILL, as a node failure would (W&B's
        # service, in its own session, ends when it finds the run gone)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    return run, loop


def test_tensorboard_holds_every_metric_and_episode_of_the_jsonl_files_once(logged):
    logged, _ = logged
    acc = tensorboard_scalars(logged)
    metrics, episodes = read_jsonl(logged / "metrics.jsonl"), read_jsonl(logged / "episodes.jsonl")
    assert len(metrics) >= 20 and len(episodes) >= 20  # a metrics row every 10 updates and at the end
    tags = set(acc.Tags()["scalars"])
    expected = {k for row in metrics for k in row if k not in ("env_steps", "time")}
    assert {"loss/dyn", "loss/rep", "loss/policy", "updates_per_s", "updates"} <= expected
    assert expected | {"return", "length"} <= tags
    # the resumed run's event file purged what the killed one logged after its checkpoint: each
    # step once, with the values the JSONL files hold (TensorBoard keeps float32)
    for key in ("loss/dyn", "updates", "updates_per_s"):
        events = acc.Scalars(key)
        assert [e.step for e in events] == [r["env_steps"] for r in metrics if key in r]
        assert [e.value for e in events] == pytest.approx([r[key] for r in metrics if key in r], rel=1e-6)
    returns = acc.Scalars("return")
    assert [e.step for e in returns] == [e["env_steps"] for e in episodes]
    assert [e.value for e in returns] == pytest.approx([e["return"] for e in episodes])
    assert [e.value for e in acc.Scalars("length")] == [e["length"] for e in episodes]


def test_evaluation_episodes_reach_both_loggers_once(logged):
    logged, _ = logged
    rows = read_jsonl(logged / "eval.jsonl")
    assert len(rows) == 6  # rounds at 1000, 2000 and the end (3000), two episodes each
    events = tensorboard_scalars(logged).Scalars("eval/return")
    assert [(e.step, e.value) for e in events] == [(r["env_steps"], pytest.approx(r["return"])) for r in rows]
    logged_evals = [(h["env_steps"], h["eval/return"]) for h in wandb_history(wandb_records(logged)) if "eval/return" in h]
    assert {(r["env_steps"], r["return"]) for r in rows} <= set(logged_evals)


def test_tensorboard_hyperparameters_are_the_resolved_settings(logged):
    logged, _ = logged
    acc = tensorboard_scalars(logged)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    config = json.loads((logged / "config.json").read_text())
    assert hparams["agent.deter"].number_value == config["agent"]["deter"]
    assert hparams["task.train_ratio"].number_value == config["task"]["train_ratio"]
    assert hparams["run.variant"].string_value == "full" and hparams["run.suite"].string_value == "tiny"
    assert hparams["task.preset"].string_value == "debug"


def test_wandb_runs_offline_resumes_its_run_and_logs_the_jsonl_rows(logged):
    logged, loop = logged
    records = wandb_records(logged)
    folders = sorted({folder for folder, _ in records})
    assert len(folders) == 2  # the killed process's offline run and the resumed one
    runs = [r.run for _, r in records if r.WhichOneof("record_type") == "run"]
    state = json.loads((logged / "live.json").read_text())
    assert {r.run_id for r in runs} == {state["wandb"]["id"]}  # one W&B run, continued
    assert all(f.endswith(state["wandb"]["id"]) for f in folders)
    assert runs[0].display_name == "tiny/full/gym_CartPole-v1/seed_0"
    assert set(runs[0].tags) == {"tiny", "full", "gym_CartPole-v1", "seed_0"}
    config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert config["agent"]["deter"] == json.loads((logged / "config.json").read_text())["agent"]["deter"]
    episodes, metrics = read_jsonl(logged / "episodes.jsonl"), read_jsonl(logged / "metrics.jsonl")
    killed, resumed = ({(h["env_steps"], h["return"]) for h in wandb_history([(f, r) for f, r in records if f == folder])
                        if "return" in h} for folder in folders)
    truth = {(e["env_steps"], e["return"]) for e in episodes}
    # the resumed process sends what the killed one had not, and nothing else; the killed one's
    # rows beyond its checkpoint are the only ones W&B holds that the JSONL files do not
    assert resumed <= truth and killed | resumed >= truth
    assert all(x > loop["env_steps"] for x, _ in killed - truth)
    assert all(x <= loop["env_steps"] for x, _ in killed & truth - resumed)
    dyn = {(h["env_steps"], round(h["loss/dyn"], 9)) for h in wandb_history(records) if "loss/dyn" in h}
    assert {(r["env_steps"], round(r["loss/dyn"], 9)) for r in metrics} <= dyn


def test_no_logger_process_outlives_the_run(logged):
    logged, _ = logged
    from dreamer_bench.runner.lock import _pid_alive

    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    results = logged.parents[3]  # named on the command line of the run and of anything it started
    assert str(results) not in ps and "wandb-core" not in ps, ps
    assert not _pid_alive(json.loads((logged / "status.json").read_text())["pid"])  # the run's own process


def test_loggers_are_not_part_of_the_run_identity(logged):
    logged, _ = logged
    config = json.loads((logged / "config.json").read_text())
    assert "live" not in json.dumps(config) and "tensorboard" not in json.dumps(config)
    # the finished run, asked again without loggers, is the same run: nothing to do
    out = cli("run", "--suite", logged.parents[4] / "tiny.yaml", "--results", logged.parents[3])
    assert out.returncode == 0 and "done" in out.stdout, out.stdout + out.stderr


def test_an_unknown_or_missing_logger_is_one_line_naming_the_choice(tmp_path, cli_here):
    code, out, err = cli_here("run", "--suite", "smoke", "--results", tmp_path / "r", "--log", "mlflow")
    assert code == 2 and "tensorboard, wandb" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
    # without the library (its import blocked the way an uninstalled package fails), the extra is named
    code = ("import sys; sys.modules['wandb'] = None; sys.argv = ['dreamer-bench', 'run', '--suite', 'smoke', "
            f"'--results', {str(tmp_path / 'r')!r}, '--log', 'wandb']; from dreamer_bench.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 2 and "pip install 'dreamer-bench[wandb]'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "r").exists()
