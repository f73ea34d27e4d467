"""Markdown rows of the learning tables in ../README.md: the mean training-episode return per bin
of env steps (an episode counts in the bin where it ends) and the mean of the last N episodes.

    python evidence/learning/analysis/curve_table.py --bin 5000 --budget 30000 RUN_DIR ...
"""

import argparse
from pathlib import Path

from dreamer_bench.results import read_jsonl


def row(run: Path, width: int, budget: int, last: int) -> str:
    eps = read_jsonl(run / "episodes.jsonl")
    cells = []
    for lo in range(0, budget, width):
        rets = [e["return"] for e in eps if lo < e["env_steps"] <= lo + width]
        cells.append(f"{sum(rets) / len(rets):.1f}" if rets else "–")
    tail = [e["return"] for e in eps][-last:]
    variant, task, seed = run.parent.parent.name, run.parent.name, run.name
    last_mean = f"{sum(tail) / len(tail):.1f}" if tail else "–"
    return f"| {variant}, {task}, {seed} | " + " | ".join(cells) + f" | {last_mean} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (…/<variant>/<task>/seed_<n>)")
    parser.add_argument("--bin", type=int, default=5000, help="env steps per bin")
    parser.add_argument("--budget", type=int, default=30000, help="env steps of a run")
    parser.add_argument("--last", type=int, default=10, help="episodes in the final mean")
    args = parser.parse_args()
    for run in args.runs:
        print(row(run, args.bin, args.budget, args.last))


if __name__ == "__main__":
    main()
