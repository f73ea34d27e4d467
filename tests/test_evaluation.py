"""Evaluation episodes (--eval-every/--eval-episodes/--eval-mode) on real CartPole runs: written
apart, outside the budget and training's draws, kept across a kill and resume, scored by the report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamer_bench.results import read_jsonl
from dreamer_bench.runner.run import latest_checkpoint

from conftest import CONTINUOUS, DISCRETE, make_agent

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
STRIP = ("time",)


def cli(*args, env=ENV):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def tiny(root: Path, steps=1200) -> Path:
    path = root / "tiny.yaml"
    path.write_text(f"name: tiny\ndefaults: {{steps: {steps}, train_ratio: 8, preset: debug, seeds: 1, "
                    f"set: {{warmup: 5}}}}\ntasks:\n  gym_CartPole-v1: {{}}\n")
    return path


def run_dir(results: Path) -> Path:
    return results / "tiny" / "full" / "gym_CartPole-v1" / "seed_0"


def strip(rows):
    return [{k: v for k, v in r.items() if k not in STRIP} for r in rows]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same run with and without evaluation."""
    root = tmp_path_factory.mktemp("eval")
    suite = tiny(root)
    common = ["run", "--suite", suite, "--threads", "1"]
    plain = cli(*common, "--results", root / "plain")
    evaluated = cli(*common, "--results", root / "evaluated", "--eval-every", "500", "--eval-episodes", "3")
    assert plain.returncode == 0 and evaluated.returncode == 0, plain.stderr + evaluated.stderr
    return run_dir(root / "plain"), run_dir(root / "evaluated"), root


def test_evaluation_rounds_run_every_n_env_steps_and_at_the_end(pair):
    _, d, _ = pair
    rows = read_jsonl(d / "eval.jsonl")
    assert [(r["round"], r["episode"]) for r in rows] == [(r, e) for r in range(3) for e in range(3)]
    xs = [r["env_steps"] for r in rows]
    assert xs[0] == xs[2] and 500 <= xs[0] < 510 and 1000 <= xs[3] < 1010 and xs[-1] == 1200
    assert all(r["mode"] == "sample" and r["length"] >= 1 and r["return"] == r["length"] for r in rows)  # CartPole: +1 a step
    record = json.loads((d / "eval_scores.json").read_text())[0]
    assert record["xs"] == xs and record["ys"] == [r["return"] for r in rows] and record["method"] == "full"


def test_evaluation_leaves_training_exactly_as_it_was(pair):
    """Its steps count nowhere and it draws from its own generator: the training episodes,
    counters and losses equal those of the same run without evaluation."""
    plain, evaluated, _ = pair
    assert strip(read_jsonl(plain / "episodes.jsonl")) == strip(read_jsonl(evaluated / "episodes.jsonl"))
    a, b = (json.loads((d / "status.json").read_text()) for d in (plain, evaluated))
    assert (a["env_steps"], a["policy_steps"], a["updates"]) == (b["env_steps"], b["policy_steps"], b["updates"])
    last = lambda d: read_jsonl(d / "metrics.jsonl")[-1]  # noqa: E731
    assert last(plain)["loss/total"] == last(evaluated)["loss/total"]
    assert not (plain / "eval.jsonl").exists()


def test_evaluation_settings_are_not_part_of_the_run_identity(pair):
    plain, evaluated, root = pair
    assert json.loads((plain / "config.json").read_text())["identity"] == \
        json.loads((evaluated / "config.json").read_text())["identity"]
    out = cli("run", "--suite", root / "tiny.yaml", "--results", root / "plain", "--eval-every", "100")
    assert out.returncode == 0, out.stderr  # the finished run, not a refused other configuration


@pytest.mark.parametrize("fault", ["after-checkpoint", "after-evaluation"])
def test_a_killed_run_resumes_its_evaluation_schedule(pair, tmp_path, fault):
    """Killed after a checkpoint (the rounds it knew stay), or right after a round that no
    checkpoint knew (that round is dropped and run again): either way each round once. Rounds at
    500, 1000 and 1200 env steps; checkpoints every ~0.1 s; the kill comes at the first such
    point from 600 env steps on (after a checkpoint that knows round 0), or from 900 (right after
    round 1, with round 0 in a checkpoint)."""
    _, straight, _ = pair
    suite = tiny(tmp_path)
    args = ["run", "--suite", suite, "--threads", "1", "--results", tmp_path / "r", "--eval-every", "500",
            "--eval-episodes", "3", "--checkpoint-minutes", "0.002"]
    start = {"after-checkpoint": 600, "after-evaluation": 900}[fault]
    killed = cli(*args, env={**ENV, "DREAMER_BENCH_FAULT": fault, "DREAMER_BENCH_FAULT_FROM": str(start),
                             "DREAMER_BENCH_FAULT_ONCE": str(tmp_path / "once")})
    assert killed.returncode != 0 and (tmp_path / "once").exists()
    d = run_dir(tmp_path / "r")
    before = read_jsonl(d / "eval.jsonl") if (d / "eval.jsonl").exists() else []
    ckpt = latest_checkpoint(d)  # what the resumed run starts from: the rounds it knows
    known = json.loads((ckpt / "loop.json").read_text())["eval_rounds"] if ckpt else 0
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    rows, reference = read_jsonl(d / "eval.jsonl"), read_jsonl(straight / "eval.jsonl")
    # the same rounds at the same points, once each
    assert [(r["round"], r["episode"], r["env_steps"]) for r in rows] == \
        [(r["round"], r["episode"], r["env_steps"]) for r in reference]
    # the rounds the checkpoint knew stay as they were written (times included); the others ran again
    known_rows = [r for r in before if r["round"] < known]
    assert known >= 1 and known_rows and all(r in rows for r in known_rows)
    assert strip(known_rows) == strip([r for r in reference if r["round"] < known])
    unknown = [r for r in before if r["round"] >= known]
    if fault == "after-evaluation":  # killed right after a round no checkpoint knew: it was dropped
        assert unknown and not any(r in rows for r in unknown)
    else:  # killed right after a checkpoint: it knew every round written
        assert not unknown
    assert json.loads((d / "status.json").read_text())["attempts"] == 2


def test_the_report_scores_evaluation_episodes_when_asked_and_says_so(pair, cli_here):
    _, d, root = pair
    out = root / "report_eval"
    r = cli_here("report", root / "evaluated", "--episodes", "eval", "--out", out, "--reps", "200")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    per_task = pd.read_csv(out / "tiny_per_task.csv")
    rows = read_jsonl(d / "eval.jsonl")
    # classic control: the episodes ending in the last 10% of the budget, (1080, 1200]
    expected = np.mean([e["return"] for e in rows if 1080 < e["env_steps"] <= 1200])
    assert per_task["score"].iloc[0] == pytest.approx(expected)
    assert "**evaluation episodes**" in (out / "report.md").read_text()
    # runs without evaluation episodes are counted apart, not reported as if they had some
    r = cli_here("report", root / "plain", "--episodes", "eval", "--out", root / "report_none")
    assert r.returncode == 2 and "without evaluation episodes" in r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--eval-every", "-5"], "--eval-every must be ≥ 0"),
    (["--eval-every", "100", "--eval-episodes", "0"], "--eval-episodes must be ≥ 1"),
    (["--eval-every", "100", "--eval-mode", "greedy"], "valid: sample, mode"),
])
def test_bad_evaluation_settings_are_one_line_exit_two(tmp_path, args, needle, cli_here):
    r = cli_here("run", "--suite", "smoke", "--results", tmp_path / "r", *args)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("act", [DISCRETE, CONTINUOUS])
def test_the_mode_policy_takes_the_most_likely_action(act):
    agent = make_agent(act=act)
    obs = {"vector": np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32), "is_first": np.ones(4, bool)}
    generator = torch.Generator().manual_seed(3)
    state, action = agent.policy(None, obs, generator=generator, mode=True)
    # the same posterior again (same latent draws), then the actor's parameters read by hand
    state2, _ = agent.policy(None, obs, generator=torch.Generator().manual_seed(3), mode=False)
    params = agent.actor(agent.rssm.features(state2["deter"], state2["stoch"]))
    if act.discrete:
        assert action.tolist() == params.argmax(-1).tolist()
    else:
        mean = params[..., : act.size]
        np.testing.assert_array_equal(action, mean.clamp(-1, 1).detach().numpy())
    # training's acting generator was not touched by either call
    fresh = make_agent(act=act)
    assert torch.equal(agent.act_generator.get_state(), fresh.act_generator.get_state())
