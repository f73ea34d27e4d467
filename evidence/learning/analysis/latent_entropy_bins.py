"""The world model's latent entropies and KL loss per bin of env steps, run by run, from each
implementation's own metrics: our runs (``metrics.jsonl`` keyed by ``env_steps``; ours log the
entropies per latent, multiplied here by the latents to read as the official sums), official runs
(``metrics.jsonl`` keyed by ``step``, ``train/`` names), and runs of ours started from an official
initial draw (tools/official/official_init.py), which read like ours.

    python evidence/learning/analysis/latent_entropy_bins.py --ours RUN ... --official LOGDIR ... \
        [--from-official RUN ...] [--edges 0,6250,12500,18750,25000]

A bin's value is the plain mean of the rows stamped in it (each row is the mean over the updates
since the row before; ours log every 30 s, the official every ~2 min, so the rows weigh alike
within a bin only roughly; tools/official/compare_metrics.py weighs them exactly, by quarter).
Prints a markdown table per quantity: one line per run, then each group's range.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

LATENTS = 32  # size1m: 32 latents of 32 classes
# ours key: (official key, factor that makes ours read as the official)
QUANTITIES = {"wm/prior_entropy": ("train/dyn_ent", LATENTS), "wm/post_entropy": ("train/rep_ent", LATENTS),
              "loss/dyn": ("train/loss/dyn", 1), "grad_norm": ("train/opt/grad_norm", 1)}


def rows(path: pathlib.Path, official: bool) -> list[dict]:
    out = []
    with open(path / "metrics.jsonl") as f:
        for line in f:
            row = json.loads(line)
            step = row.get("step" if official else "env_steps")
            if step is None:
                continue
            if official:
                out.append({"step": step, **{q: row[k] for q, (k, _) in QUANTITIES.items() if k in row}})
            else:
                out.append({"step": step, **{q: row[q] * f for q, (_, f) in QUANTITIES.items() if q in row}})
    return out


def binned(table: list[dict], quantity: str, edges: list[float]) -> list[float]:
    values = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = [r[quantity] for r in table if lo < r["step"] <= hi and quantity in r]
        values.append(float(np.mean(inside)) if inside else float("nan"))
    return values


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", type=pathlib.Path, nargs="*", default=[])
    p.add_argument("--official", type=pathlib.Path, nargs="*", default=[])
    p.add_argument("--from-official", type=pathlib.Path, nargs="*", default=[])
    p.add_argument("--edges", default="0,6250,12500,18750,25000")
    args = p.parse_args(argv)
    edges = [float(x) for x in args.edges.split(",")]
    groups = [("ours", args.ours, False), ("official", args.official, True),
              ("ours from an official draw", args.from_official, False)]
    tables = {(name, path): rows(path, official) for name, paths, official in groups for path in paths}
    heads = [f"({lo / 1000:g}K, {hi / 1000:g}K]" for lo, hi in zip(edges[:-1], edges[1:])]
    for q in QUANTITIES:
        print(f"\n**{q}**\n\n| run | " + " | ".join(heads) + " |\n|---|" + "---|" * len(heads))
        for name, paths, _ in groups:
            values = []
            for path in paths:
                v = binned(tables[(name, path)], q, edges)
                values.append(v)
                label = f"{name}, {path.parent.name}/{path.name}"
                print(f"| {label} | " + " | ".join("–" if np.isnan(x) else f"{x:.3g}" for x in v) + " |")
            if len(values) > 1:
                a = np.array(values)
                cells = []
                for col in a.T:
                    col = col[~np.isnan(col)]
                    cells.append(f"{col.min():.3g}–{col.max():.3g}" if len(col) else "–")
                print(f"| {name}: range | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
