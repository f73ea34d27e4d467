"""Where the CartPole-v1 runs' warm-up gradient norms part, and whether the initial parameters do.

Two views, each printed as Markdown:

    # the runs, update for update: each official run's first logged rows (a row is the mean over
    # the updates since the row before: replay/samples / 16 of them) beside the mean of each of
    # our runs over the same updates (our rows weighted by the updates they average)
    python evidence/learning/analysis/warmup_grad_norm.py runs \
        --ours RUN [RUN ...] --official LOGDIR [LOGDIR ...] [--rows 4]

    # the initial parameters: update 1 of tools/official/stream_updates.py probes on one stream,
    # the official agent from several agent seeds (--init-seed) against ours from its own
    # initialiser (--own-init), all on the same first batch
    python evidence/learning/analysis/warmup_grad_norm.py init --dir PROBE

    # the first updates from each initial draw on one stream, by windows of updates: every
    # official*_seed0.csv (the official agent, its agent seeds) and ours_owninit_seed*.csv
    # (ours from its own initialiser) in the probe folders of one stream; official_from_*.csv
    # (the official update from our draws, official --params) are left out
    python evidence/learning/analysis/warmup_grad_norm.py draws --dir PROBE [PROBE ...]

RUN: our run folders (metrics.jsonl with ``updates`` and ``grad_norm``); LOGDIR: official runs
(metrics.jsonl with ``train/opt/grad_norm`` and ``replay/samples``), e.g. the copies in
evidence/learning/official. Plain Python with numpy and scipy.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib

import numpy as np

BATCH = 16  # sequences per update: the official replay/samples counts sequences
QUANTITIES = {"grad_norm": ("grad_norm", "train/opt/grad_norm"), "loss/dyn": ("loss/dyn", "train/loss/dyn")}


def our_intervals(run: pathlib.Path, key: str) -> list[tuple[int, int, float]]:
    """(first update, last update, mean) of each logged row of ours."""
    out, prev = [], 0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if key not in row:
            continue
        if row["updates"] > prev:
            out.append((prev + 1, row["updates"], row[key]))
        prev = row["updates"]
    return out


def official_intervals(logdir: pathlib.Path, key: str, rows: int) -> list[tuple[int, int, float]]:
    """The same for the first ``rows`` training rows of an official run."""
    out, done = [], 0
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if key not in row:
            continue
        n = int(round(row["replay/samples"] / BATCH))
        out.append((done + 1, done + n, row[key]))
        done += n
        if len(out) == rows:
            break
    return out


def mean_over(intervals, first: int, last: int) -> float:
    """The mean over updates first..last of rows that each hold the mean of their updates."""
    total = weight = 0.0
    for lo, hi, value in intervals:
        overlap = max(0, min(hi, last) - max(lo, first) + 1)
        total += overlap * value
        weight += overlap
    return total / weight if weight else float("nan")


def runs_table(ours: list[pathlib.Path], official: list[pathlib.Path], rows: int) -> str:
    out = []
    for name, (our_key, official_key) in QUANTITIES.items():
        lines = [f"{name}", "", "| official run | updates | official | ours (" + ", ".join(r.name for r in ours)
                 + ") | official below all of ours |", "|---|---|---|---|---|"]
        mine = [our_intervals(r, our_key) for r in ours]
        for logdir in official:
            for lo, hi, value in official_intervals(logdir, official_key, rows):
                theirs = [mean_over(m, lo, hi) for m in mine]
                below = "yes" if value < min(theirs) else ""
                lines.append(f"| {logdir.name} | {lo}–{hi} | {value:.4g} | "
                             + ", ".join(f"{v:.4g}" for v in theirs) + f" | {below} |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def init_table(probe: pathlib.Path) -> str:
    """Update 1 (the initial parameters' losses on the probe's first batch) per side: mean, its
    standard error over the seeds, and the range."""
    columns = ["loss/dyn", "grad_norm", "loss/rec_vector", "loss/con", "loss/value"]
    sides = {"official (agent seeds)": sorted(p for p in probe.glob("official*_seed0.csv")
                                              if not p.name.startswith("official_from_")),
             "ours (own initialiser, seeds)": sorted(probe.glob("ours_owninit_seed*.csv"))}
    lines = ["| side | seeds | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for side, paths in sides.items():
        if not paths:
            continue
        first = [next(csv.DictReader(open(p))) for p in paths]
        cells = []
        for c in columns:
            v = np.array([float(r[c]) for r in first])
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            cells.append(f"{v.mean():.4g} ± {se:.2g} ({v.min():.3g}–{v.max():.3g})")
        lines.append(f"| {side} | {len(paths)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


WINDOWS = ((1, 50), (51, 100), (101, 120))


def draws_table(probes: list[pathlib.Path]) -> str:
    """Per initial draw, the mean gradient norm and dynamics loss over each window of updates;
    then each side's mean over its draws (± standard error) and a rank-sum p-value."""
    from scipy.stats import mannwhitneyu

    sides = {"official": [], "ours": []}
    for probe in probes:
        sides["official"] += [(probe.name, p) for p in sorted(probe.glob("official*_seed0.csv"))
                              if not p.name.startswith("official_from_")]  # (our draws, the official update)
        sides["ours"] += [(probe.name, p) for p in sorted(probe.glob("ours_owninit_seed*.csv"))]
    head = [f"{q} {a}–{b}" for q in ("grad_norm", "loss/dyn") for a, b in WINDOWS]
    lines = ["| side | draw | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    values = {side: [] for side in sides}
    for side, files in sides.items():
        for probe, path in files:
            rows = list(csv.DictReader(open(path)))
            cells = []
            for q in ("grad_norm", "loss/dyn"):
                v = np.array([float(r[q]) for r in rows])
                cells += [v[a - 1:b].mean() if len(v) >= b else float("nan") for a, b in WINDOWS]
            values[side].append(cells)
            lines.append(f"| {side} | {probe}/{path.stem} | " + " | ".join(f"{c:.4g}" for c in cells) + " |")
    for side, rows in values.items():
        v = np.array(rows)
        lines.append(f"| **{side}, mean of {len(v)}** | | " + " | ".join(
            f"{np.nanmean(c):.4g} ± {np.nanstd(c, ddof=1) / np.sqrt(np.isfinite(c).sum()):.2g}" for c in v.T) + " |")
    a, b = np.array(values["official"]), np.array(values["ours"])
    pvals = [mannwhitneyu(x[np.isfinite(x)], y[np.isfinite(y)]).pvalue for x, y in zip(a.T, b.T)]
    lines.append("| rank-sum p | | " + " | ".join(f"{p:.2g}" for p in pvals) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="view", required=True)
    runs = sub.add_parser("runs", help="the runs' first logged rows, update for update")
    runs.add_argument("--ours", type=pathlib.Path, nargs="+", required=True)
    runs.add_argument("--official", type=pathlib.Path, nargs="+", required=True)
    runs.add_argument("--rows", type=int, default=4, help="official rows per run")
    init = sub.add_parser("init", help="update 1 over initial parameter draws")
    init.add_argument("--dir", type=pathlib.Path, required=True)
    draws = sub.add_parser("draws", help="the first updates from each initial draw, by windows")
    draws.add_argument("--dir", type=pathlib.Path, nargs="+", required=True)
    args = parser.parse_args()
    if args.view == "runs":
        print(runs_table(args.ours, args.official, args.rows))
    elif args.view == "init":
        print(init_table(args.dir))
    else:
        print(draws_table(args.dir))


if __name__ == "__main__":
    main()
