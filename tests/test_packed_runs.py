"""Packed runs (runner/pack.py): `run --pack K` trains the seeds of a configuration in one process
with batched updates; each run keeps its own folder, files and identity, and resumes packed or
unpacked from its own checkpoint, whichever way it was stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, timeout=900)


def suite(tmp_path: Path, steps: int = 400) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"name: tiny\ndefaults: {{steps: {steps}, train_ratio: 8, preset: debug, seeds: 2, "
                    f"set: {{warmup: 5}}}}\ntasks:\n  gym_CartPole-v1: {{}}\n")
    return path


def runs(results: Path) -> list[Path]:
    return [results / "tiny" / "full" / "gym_CartPole-v1" / f"seed_{s}" for s in (0, 1)]


def test_a_packed_group_trains_each_seed_into_its_own_run_in_one_process(tmp_path):
    s = suite(tmp_path)
    packed, alone = tmp_path / "packed", tmp_path / "alone"
    out = cli("run", "--suite", s, "--results", packed, "--pack", "2")
    assert out.returncode == 0, out.stderr
    assert "packing: 2 of 2 runs in 1 process(es)" in out.stdout
    out = cli("run", "--suite", s, "--results", alone, "--jobs", "2")
    assert out.returncode == 0, out.stderr
    pids = set()
    for p, a in zip(runs(packed), runs(alone)):
        sp, sa = (json.loads((d / "status.json").read_text()) for d in (p, a))
        assert sp["state"] == sa["state"] == "done"
        assert sp["updates"] == sa["updates"] > 0 and sp["env_steps"] == sa["env_steps"]  # the same schedule
        pids.add(sp["pid"])
        cp, ca = (json.loads((d / "config.json").read_text()) for d in (p, a))
        assert cp["identity"] == ca["identity"] and cp["agent"] == ca["agent"]  # packing is not identity
        assert sorted(f.name for f in p.iterdir()) == sorted(f.name for f in a.iterdir())
        assert json.loads((p / "scores.json").read_text())[0]["seed"] == cp["run"]["seed"]
    assert len(pids) == 1  # one process trained both


def test_killed_packed_runs_resume_unpacked_and_killed_unpacked_runs_resume_packed(tmp_path):
    s = suite(tmp_path, steps=600)
    for first, then in (("2", "1"), ("1", "2")):
        results = tmp_path / f"r{first}"
        marker = tmp_path / f"fault{first}"
        env = {**ENV, "DREAMER_BENCH_FAULT": "after-checkpoint", "DREAMER_BENCH_FAULT_ONCE": str(marker)}
        killed = cli("run", "--suite", s, "--results", results, "--pack", first, "--checkpoint-minutes", "0.01", env=env)
        assert killed.returncode != 0 and marker.exists()  # killed at the first checkpoint a member wrote
        assert any(json.loads((d / "status.json").read_text()).get("state") != "done" for d in runs(results))
        out = cli("run", "--suite", s, "--results", results, "--pack", then)
        assert out.returncode == 0, out.stderr
        for d in runs(results):
            status = json.loads((d / "status.json").read_text())
            assert status["state"] == "done" and status["env_steps"] >= 600
            xs = [json.loads(line)["env_steps"] for line in (d / "episodes.jsonl").read_text().splitlines()]
            assert xs == sorted(xs) and len(set(xs)) == len(xs)  # no episode twice after the resume


def test_packing_is_checked_and_shown_before_anything_starts(tmp_path):
    s = suite(tmp_path)
    results = tmp_path / "r"
    for bad, message in ((["--pack", "0"], "--pack takes"), (["--pack", "x"], "--pack takes"),
                         (["--pack", "2", "--backend", "dask", "--address", "tcp://127.0.0.1:1"], "no Dask scheduler")):
        out = cli("run", "--suite", s, "--results", results, *bad)
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    plan = cli("run", "--suite", s, "--results", results, "--pack", "2", "--dry-run")
    assert plan.returncode == 0 and "packing: 2 of 2 runs in 1 process(es) of up to 2 seeds" in plan.stdout
    alone = cli("run", "--suite", s, "--results", results, "--pack", "2", "--log", "wandb", "--dry-run")
    assert "not packed: runs logging to W&B" in alone.stdout and "0 of 2 runs" in alone.stdout
    auto = cli("run", "--suite", s, "--results", results, "--pack", "auto", "--dry-run",
               env={**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert auto.returncode == 0 and "--pack auto: no packed figures" in auto.stdout
    assert not results.exists()
