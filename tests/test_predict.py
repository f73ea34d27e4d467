"""dreamer-bench predict on finished runs of every smoke family, the open loop's one property that
matters (after the context the model never sees an observation), and the report embedding it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import BOTH, CONTINUOUS, DISCRETE, make_agent
from dreamer_bench.runner.predict import open_loop

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
TASKS = {  # the smoke suite's families, each shortened to a few seconds of training
    "gym_CartPole-v1": "{steps: 300}",
    "dmc_cartpole_balance": "{steps: 300, action_repeat: 2, env: {obs: vector}}",
    "atari_pong": "{steps: 400, action_repeat: 4, env: {noops: 30, frame_cap: 2000}, refs: {random: -20.7, human: 14.6}}",
    "crafter": "{steps: 150, env: {length: 300}}",
}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=600)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    suite = root / "fam.yaml"
    suite.write_text("name: fam\ndefaults: {train_ratio: 4, preset: debug, seeds: 1, envs: 1, set: {warmup: 5}}\n"
                     "tasks:\n" + "".join(f"  {t}: {spec}\n" for t, spec in TASKS.items()))
    out = cli("run", "--suite", suite, "--results", root / "r", "--jobs", "2", "--threads", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    return root / "r"


def run_dir(results: Path, task: str) -> Path:
    return results / "fam" / "full" / task / "seed_0"


@pytest.mark.parametrize("task", list(TASKS))
def test_predict_writes_figures_for_every_smoke_family(finished, task):
    d = run_dir(finished, task)
    out = cli("predict", d, "--episodes", "2", "--window", "12", "--context", "4")
    assert out.returncode == 0, out.stderr
    record = json.loads((d / "predictions" / "predictions.json").read_text())
    assert record["updates"] == json.loads((d / "status.json").read_text())["updates"] > 0
    assert [e["episode"] for e in record["episodes"]] == [0, 1]
    for episode in record["episodes"]:
        assert episode["context"] == 4 and 4 < episode["steps"] <= 12
        for name in episode["files"]:
            assert (d / "predictions" / name).stat().st_size > 1000
        image = task in ("atari_pong", "crafter")
        assert any(f.endswith(".gif") for f in episode["files"]) == image
        errors = episode["squared_error_per_step"]
        assert len(errors["reward"]) == episode["steps"] and all(np.isfinite(v) for v in errors["reward"])
    if task == "atari_pong":
        from PIL import Image

        gif = Image.open(d / "predictions" / "episode_0_image.gif")
        assert gif.n_frames == record["episodes"][0]["steps"] and gif.size == (3 * 64, 64)


def test_predict_plays_episodes_the_run_never_trained_or_evaluated_on():
    """Once, predict --seed 0 on a seed_0 run replayed the first training episode's environment seed
    (the replay, if kept, had trained on it). Training, evaluation and predict seeds are drawn from
    three streams: none shared over 20 run seeds, 20 restarts, 16 environments, 200 evaluation
    rounds and 20 predict seeds of 20 episodes each."""
    from dreamer_bench.runner.evaluate import round_seed
    from dreamer_bench.runner.predict import episode_seed
    from dreamer_bench.runner.run import env_seed

    train = {env_seed(s, r, i) for s in range(20) for r in range(20) for i in range(16)}
    evaluation = {round_seed(s, k) for s in range(20) for k in range(200)}
    predicted = {episode_seed(s, e) for s in range(20) for e in range(20)}
    assert len(predicted) == 400 and not predicted & train and not predicted & evaluation


def test_the_report_embeds_the_predictions_it_finds(finished, cli_here):
    cli("predict", run_dir(finished, "gym_CartPole-v1"), "--episodes", "1", "--window", "12")
    r = cli_here("report", finished, "--out", finished / "report", "--reps", "200")
    assert r.returncode == 0, r.stderr
    text = (finished / "report" / "report.md").read_text()
    assert "### World-model predictions" in text
    embedded = [line.split("(")[1].rstrip(")") for line in text.splitlines() if "predictions](" in line]
    assert embedded and all((finished / "report" / name).is_file() for name in embedded)


def test_a_run_without_a_checkpoint_is_one_line(tmp_path, cli_here):
    d = tmp_path / "r" / "s" / "full" / "gym_CartPole-v1" / "seed_0"
    d.mkdir(parents=True)
    r = cli_here("predict", d)
    assert r.returncode == 2 and "no config.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli_here("predict", d, "--context", "60")
    assert r.returncode == 2 and "--context" in r.stderr


@pytest.mark.parametrize("obs, act", [(BOTH, DISCRETE), (BOTH, CONTINUOUS)])
def test_after_the_context_the_model_sees_no_observation(obs, act):
    """Open loop: changing an observation after the context changes no prediction; changing one
    inside it does (so the test could fail)."""
    # many latents: an observation reaches the model only through its sampled discrete latents, so
    # with many of them a changed observation moves some sample (deterministic for the seed)
    agent = make_agent(obs=obs, act=act, latents=32, classes=16)
    rng = np.random.default_rng(0)
    steps = 12
    episode = {"image": rng.integers(0, 256, (steps, 64, 64, 3), dtype=np.uint8),
               "vector": rng.normal(size=(steps, 3)).astype(np.float32),
               "action": (np.eye(act.size)[rng.integers(0, act.size, steps)] if act.discrete
                          else rng.uniform(-1, 1, (steps, act.size))).astype(np.float32),
               "reward": rng.normal(size=steps), "is_first": np.eye(steps)[0].astype(bool),
               "is_terminal": np.zeros(steps, bool)}
    base = open_loop(agent, episode, context=4, window=steps, seed=1)
    later = {**episode, "vector": episode["vector"].copy(), "image": episode["image"].copy()}
    later["vector"][4:] += 5.0  # every step from the first one after the context
    later["image"][4:] = 255 - later["image"][4:]
    after = open_loop(agent, later, context=4, window=steps, seed=1)
    for k in ("image", "vector"):
        np.testing.assert_array_equal(base["pred"][k], after["pred"][k])
    np.testing.assert_array_equal(base["reward"][1], after["reward"][1])
    seen = {**episode, "vector": episode["vector"] + 50.0, "image": 255 - episode["image"]}
    inside = open_loop(agent, seen, context=4, window=steps, seed=1)
    assert not np.array_equal(base["pred"]["vector"], inside["pred"]["vector"])
    assert torch.equal(agent.act_generator.get_state(),
                       make_agent(obs=obs, act=act, latents=32, classes=16).act_generator.get_state())
    assert not np.array_equal(base["pred"]["image"], inside["pred"]["image"])
