"""Learning check of packed training (issue 24): the same seeds of one task trained packed and
unpacked, compared seed for seed.

    python tools/pack_check.py RESULTS [--steps 2700] [--seeds 3] [--task gym_CartPole-v1]

Trains ``learning``'s task with ``--pack SEEDS`` into RESULTS/packed and with ``--pack 1 --jobs 2
--threads 1`` into RESULTS/alone (resumable: rerun to continue), then prints and writes
RESULTS/pack_check.json: per seed, the losses at matching update counts over the first 200
updates (relative difference of the metrics rows' loss/total, interpolated onto the packed run's
update counts) and the episode returns (mean of the last 10 episodes). Packing changes the
summation order of the batched products, so the two runs of a seed agree to rounding at first and
then drift apart as any two machines' runs do; the check shows how far, and the learning outcome.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def train(results: Path, steps: int, seeds: int, task: str, extra: list[str]) -> None:
    # eager on both sides: the packed update runs eagerly (compile is not part of a run's identity)
    cmd = [sys.executable, "-m", "dreamer_bench", "run", "--suite", "learning", "--tasks", task, "--seeds", str(seeds),
           "--steps", str(steps), "--results", str(results), "--set", "compile=false", *extra]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def episodes(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines() if line.strip()]


def compare(packed: Path, alone: Path, upto: int = 200) -> dict:
    a, b = rows(packed), rows(alone)
    xa = np.array([r["updates"] for r in a], float)
    ya = np.array([r.get("loss/total", np.nan) for r in a], float)
    xb = np.array([r["updates"] for r in b], float)
    yb = np.array([r.get("loss/total", np.nan) for r in b], float)
    keep = (xa > 0) & (xa <= upto) & (xa >= xb.min()) & (xa <= xb.max())
    other = np.interp(xa[keep], xb, yb)
    rel = np.abs(ya[keep] - other) / np.maximum(np.abs(other), 1e-6)
    ea, eb = episodes(packed), episodes(alone)
    last = lambda es: float(np.mean([e["return"] for e in es[-10:]])) if es else float("nan")  # noqa: E731
    return {"loss_rows_compared": int(keep.sum()), "loss_rel_diff_max": float(rel.max()) if rel.size else None,
            "loss_rel_diff_median": float(np.median(rel)) if rel.size else None,
            "episodes": [len(ea), len(eb)], "last10_return": [last(ea), last(eb)],
            "first_episode_returns": [[e["return"] for e in ea[:5]], [e["return"] for e in eb[:5]]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--steps", type=int, default=2700)  # CartPole: ~200 updates after the replay first fills a batch
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--task", default="gym_CartPole-v1")
    args = ap.parse_args()
    train(args.results / "packed", args.steps, args.seeds, args.task, ["--pack", str(args.seeds), "--threads", "2"])
    train(args.results / "alone", args.steps, args.seeds, args.task, ["--pack", "1", "--jobs", "2", "--threads", "1"])
    out = {}
    for seed in range(args.seeds):
        rel = Path("learning") / "full" / args.task / f"seed_{seed}"
        out[seed] = compare(args.results / "packed" / rel, args.results / "alone" / rel)
        print(seed, json.dumps(out[seed]))
    (args.results / "pack_check.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
