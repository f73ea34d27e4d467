"""Markdown rows for the README's progress table: each of our runs' mean training-episode return
per tenth of its task's budget (an episode counts in the tenth where it ends), beside the range
over the official seeds that have episodes there, read from a report's scores.json.gz (the
report of tools/evidence/learning_progress.sh holds both sides).

    python evidence/learning/analysis/bins_vs_official.py evidence/learning/report_official/scores.json.gz

The tenths are 3K env steps for CartPole-v1 and 5K for the DMC tasks (the learning suite's
budgets). The last tenth a run still training has reached may hold only part of its episodes.
"""

import argparse
import gzip
import json
from pathlib import Path

from dreamer_bench.suites import load


def tenths(xs: list[float], ys: list[float], budget: float) -> list[float | None]:
    width = budget / 10
    out = []
    for k in range(10):
        inside = [y for x, y in zip(xs, ys) if k * width < x <= (k + 1) * width]
        out.append(sum(inside) / len(inside) if inside else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", type=Path, help="a report's scores.json.gz")
    parser.add_argument("--ours", default="full", help="the method name of our runs")
    args = parser.parse_args()
    records = json.loads(gzip.decompress(args.scores.read_bytes()))
    budgets = {spec.task: float(spec.steps) for spec in load("learning").select([])}
    print("| run | " + " | ".join(f"{k}/10" for k in range(1, 11)) + " |")
    print("|---|" + "---|" * 10)
    for task, budget in sorted(budgets.items()):
        ours = sorted((r for r in records if r["task"] == task and r["method"] == args.ours), key=lambda r: r["seed"])
        theirs = [tenths(r["xs"], r["ys"], budget) for r in records if r["task"] == task and r["method"] == "official"]
        name = task.removeprefix("gym_").removeprefix("dmc_")
        for r in ours:
            cells = ["–" if v is None else f"{v:.0f}" for v in tenths(r["xs"], r["ys"], budget)]
            print(f"| {name}, ours seed {r['seed']} | " + " | ".join(cells) + " |")
        cells = []
        for k in range(10):
            there = [t[k] for t in theirs if t[k] is not None]
            cells.append("–" if not there else f"{min(there):.0f}–{max(there):.0f}" if len(there) > 1 else f"{there[0]:.0f}")
        print(f"| {name}, official ({len(theirs)} seeds) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
