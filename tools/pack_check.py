"""Learning check of packed training (issue 24): the same seeds of one task trained packed and
unpacked, compared seed for seed.

    python tools/pack_check.py RESULTS [--steps 2700] [--seeds 3] [--task gym_CartPole-v1]

Trains ``learning``'s task with ``--pack SEEDS`` into RESULTS/packed and with ``--pack 1 --jobs 2
--threads 1`` into RESULTS/alone (resumable: rerun to continue), then prints and writes
RESULTS/pack_check.json: per seed, every update's losses over the first 200 updates (both sides
log a metrics row per update, ``--log-updates 1``: each loss term's difference relative to its
scale, the largest per update, and the updates where it exceeds 1e-2), how many episodes from the
start are the same, and the mean return of the last 10 episodes. Packing changes the
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
           "--steps", str(steps), "--results", str(results), "--set", "compile=false", "--log-updates", "1", *extra]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def rows(run: Path) -> dict[int, dict]:
    """The run's metrics rows by update count (the runs log a row per update: --log-updates 1)."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out.setdefault(row["updates"], row)
    return out


def parameters(packed: Path, alone: Path) -> dict[str, float]:
    """Per module (encoder, rssm, decoder, reward, cont, actor, critic, ...) the largest relative
    difference ‖θ_packed − θ_alone‖ / ‖θ_alone‖ over its tensors, at the runs' final checkpoints."""
    import torch

    def final(run: Path) -> dict:
        path = max((run / "checkpoint").glob("ckpt-*/agent.pt"))
        return torch.load(path, map_location="cpu", weights_only=False)["modules"]

    a, b = final(packed), final(alone)
    out: dict[str, float] = {}
    for name, x in a.items():
        y = b[name]
        if torch.is_tensor(x) and x.is_floating_point() and y.norm() > 0:
            module = name.split(".")[0]
            out[module] = max(out.get(module, 0.0), float((x - y).double().norm() / y.double().norm()))
    return out


def episodes(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "episodes.jsonl").read_text().splitlines() if line.strip()]


def compare(packed: Path, alone: Path, upto: int = 200, tol: float = 1e-2) -> dict:
    """Seed for seed: each update's loss terms packed against unpacked. A term's difference is
    taken relative to its scale (its root mean square over the compared updates: the policy loss
    averages to near zero, so a plain relative difference of it says nothing); per update the
    largest over the terms, and the first update where it exceeds ``tol``. Then the episodes."""
    a, b = rows(packed), rows(alone)
    both = sorted(u for u in set(a) & set(b) if 0 < u <= upto)
    keys = sorted(k for k in (a[both[0]] if both else {}) if k.startswith("loss/") and k in b[both[0]])
    scale = {k: max(float(np.sqrt(np.mean([b[u][k] ** 2 for u in both]))), 1e-12) for k in keys}
    worst = [max(abs(a[u][k] - b[u][k]) / scale[k] for k in keys) for u in both]
    over = [u for u, w in zip(both, worst) if w > tol]
    per_term = {k: float(max(abs(a[u][k] - b[u][k]) for u in both) / scale[k]) for k in keys}
    first_by_term = {k: next((u for u in both if abs(a[u][k] - b[u][k]) / scale[k] > tol), None) for k in keys}
    ea, eb = episodes(packed), episodes(alone)
    same = 0
    while same < min(len(ea), len(eb)) and (ea[same]["return"], ea[same]["env_steps"]) == (eb[same]["return"], eb[same]["env_steps"]):
        same += 1
    last = lambda es: float(np.mean([e["return"] for e in es[-10:]])) if es else float("nan")  # noqa: E731
    q = lambda p: float(np.quantile(worst, p)) if worst else None  # noqa: E731
    return {"updates_compared": len(both), "loss_tolerance": tol, "updates_over_tolerance": len(over),
            "first_update_over_tolerance": over[0] if over else None,
            "loss_diff_per_scale": {"median": q(0.5), "p90": q(0.9), "max": q(1.0)},
            "loss_diff_per_scale_max_by_term": per_term, "first_update_over_tolerance_by_term": first_by_term,
            "loss_diff_per_scale_first_10": [float(x) for x in worst[:10]],
            "episodes": [len(ea), len(eb)], "same_episodes_from_start": same,
            "last10_return": [last(ea), last(eb)],
            "final_parameters_rel_diff_by_module": parameters(packed, alone)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--steps", type=int, default=2700)  # CartPole: ~200 updates after the replay first fills a batch
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--task", default="gym_CartPole-v1")
    ap.add_argument("--control", action="store_true",
                    help="also train the seeds unpacked with 2 threads (RESULTS/alone2) and compare them with "
                         "the 1-thread runs: how far two unpacked runs drift when only the summation order differs")
    args = ap.parse_args()
    train(args.results / "packed", args.steps, args.seeds, args.task, ["--pack", str(args.seeds), "--threads", "2"])
    train(args.results / "alone", args.steps, args.seeds, args.task, ["--pack", "1", "--jobs", "2", "--threads", "1"])
    if args.control:
        train(args.results / "alone2", args.steps, args.seeds, args.task, ["--pack", "1", "--jobs", "1", "--threads", "2"])
    out = {}
    for seed in range(args.seeds):
        rel = Path("learning") / "full" / args.task / f"seed_{seed}"
        out[seed] = compare(args.results / "packed" / rel, args.results / "alone" / rel)
        if args.control:
            out[seed]["control_2_threads_vs_1"] = compare(args.results / "alone2" / rel, args.results / "alone" / rel)
        print(seed, json.dumps(out[seed]))
    (args.results / "pack_check.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
