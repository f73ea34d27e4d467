"""Training metrics of runs early in training, in bins of env steps, side by side: what showed
the two-hot finding of version 0.3.0 (evidence/learning/README.md).

    python evidence/learning/analysis/early_metrics.py --bins 2000,4000,6000,8000 \
        --ours LABEL=RUN ... --official LABEL=LOGDIR ...

RUN: one of our run folders (config.json, metrics.jsonl); LOGDIR: an official run's folder
(metrics.jsonl, harness.jsonl; e.g. evidence/learning/official/<task>/seed_<n>). Prints a
Markdown table per quantity: the mean over the updates logged in each bin (upper edges from
--bins, the first bin from 0), a row per run. The quantities are those
tools/official/compare_metrics.py sets side by side (defined alike on both sides).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "official"))
import compare_metrics as cm  # noqa: E402

QUANTITIES = ("policy entropy", "advantage magnitude", "normalised return", "imagined value", "imagined reward",
              "loss/rew")


def table(runs: list[tuple[str, list[dict]]], edges: list[int], quantity: str) -> str:
    """A Markdown table: a row per run, a column per bin, each the mean over the updates logged
    in it (each row's interval weighted by its overlap with the bin, as compare_metrics weights
    quarters: the official agent logs every ~2 minutes, ours every 30 s, and stamping a row's mean
    at its end would read a quickly rising quantity low on the side with the longer interval)."""
    bounds = [0] + edges
    head = ["run"] + [f"({lo / 1000:g}K, {hi / 1000:g}K]" for lo, hi in zip(bounds[:-1], bounds[1:])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, rows in runs:
        means = cm.bin_means(*cm.spans(rows, quantity), bounds)
        lines.append("| " + " | ".join([label] + [f"{m:.4g}" if m is not None else "–" for m in means]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bins", required=True, help="upper edges of the env-step bins, e.g. 2000,4000,6000")
    p.add_argument("--ours", nargs="*", default=[], metavar="LABEL=RUN")
    p.add_argument("--official", nargs="*", default=[], metavar="LABEL=LOGDIR")
    args = p.parse_args(argv)
    try:
        edges = sorted(int(b) for b in args.bins.split(","))
    except ValueError:
        p.error(f"--bins: env steps separated by commas, got {args.bins!r}")
    runs = []
    for specs, read in ((args.ours, cm.ours), (args.official, cm.official)):
        for spec in specs:
            label, sep, path = spec.partition("=")
            if not sep or not pathlib.Path(path).is_dir():
                p.error(f"expected LABEL=FOLDER with an existing folder, got {spec!r}")
            runs.append((label, read(pathlib.Path(path))[1]))
    if not runs:
        p.error("no runs: give --ours and/or --official")
    for quantity in QUANTITIES:
        print(f"\n{quantity}\n\n{table(runs, edges, quantity)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
