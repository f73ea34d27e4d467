"""Training metrics of both implementations side by side, from each one's own logs.

    python tools/official/compare_metrics.py --ours RUN [RUN ...] --official LOGDIR [LOGDIR ...] --out DIR

RUN: our run folders (``metrics.jsonl``, keyed by ``env_steps``); LOGDIR: official runs of
tools/official/train.py or their copies in evidence/learning/official (the official
logger's ``metrics.jsonl``, keyed by ``step``, which it counts in env steps). Writes
``DIR/metrics.png`` (one panel per quantity, one line per seed, a colour per implementation) and
``DIR/metrics.csv`` (per implementation, seed and quantity: the mean over each quarter of the
budget the runs were set to, else of the furthest run's env steps; a run still training, one
without ``done`` or a status.json saying done, counts only in the quarters it has passed) and
``DIR/summary.csv`` (per quantity and quarter: each implementation's mean over its seeds, the
relative difference, and each side's range over seeds).

Each logged row is the mean over the updates since the row before, stamped with the env steps at
its end; the two sides log at different intervals (ours every 30 s, the official every ~2 min), so
a row stands for the interval it averages, (previous row, this row], and a quarter's mean weights
each row by the part of its interval inside the quarter. The first row's interval has the env
steps per update of the second times its own updates (ours: the difference of ``updates``; the
official: ``replay/samples``, the samples drawn since the row before): our first row often
averages a single update, logged soon after training began. The
lines are drawn at the intervals' midpoints. (Averaging the rows stamped in a quarter instead
shifts the side with the longer interval later: in a falling quantity such as the early policy
entropy it reads high.) The quantities are those defined alike on both sides, as tests/test_official_equivalence.py
checks them for one update: the loss terms, the policy entropy, the imagined value, the imagined
reward (the mean over the H + 1 imagined states; our runs log it since 0.3.0) and trajectory
weight (ours averages the H weights the losses use, the official all H + 1, so ours reads a
little higher), the normalised imagined return (R − P5)/S and the advantage's magnitude and spread
(R − v)/S (the return scale's part; our runs log them since 2026-12-05), the prior and posterior entropies (summed over latents on both sides here) and the
gradient norm. (Ours ``imag/return`` is the raw imagined return, unlike anything the official
agent logs: not drawn; its normalised form is.)
Plain Python with numpy, scipy, pandas and matplotlib (our environment).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

# quantity: (our key, our factor, official key); our factor "latents" multiplies by the run's latents
QUANTITIES = {
    "loss/dyn": ("loss/dyn", 1, "train/loss/dyn"),
    "loss/rep": ("loss/rep", 1, "train/loss/rep"),
    "loss/rew": ("loss/rew", 1, "train/loss/rew"),
    "loss/con": ("loss/con", 1, "train/loss/con"),
    "loss/decoder": (None, 1, None),  # summed over the observation keys on both sides (decoder_loss)
    "loss/value": ("loss/value", 1, "train/loss/value"),
    "loss/repval": ("loss/repval", 1, "train/loss/repval"),
    "loss/policy": ("loss/policy", 1, "train/loss/policy"),
    "policy entropy": ("imag/entropy", 1, "train/ent/action"),
    "imagined weight": ("imag/weight", 1, "train/weight"),  # ours: the H weights; the official: H + 1 (a little lower)
    "imagined value": ("imag/value", 1, "train/val"),
    "imagined reward": ("imag/reward", 1, "train/rew"),  # our runs log it since 0.3.0 (2026-12-05)
    "normalised return": ("imag/return_normed", 1, "train/ret"),  # (R − P5)/S: the return scale's view
    "advantage magnitude": ("imag/advantage_mag", 1, "train/adv_mag"),  # mean |R − v|/S
    "advantage std": ("imag/advantage_std", 1, "train/adv_std"),
    "prior entropy": ("wm/prior_entropy", "latents", "train/dyn_ent"),
    "posterior entropy": ("wm/post_entropy", "latents", "train/rep_ent"),
    "grad norm": ("grad_norm", 1, "train/opt/grad_norm"),
}


# the official loss terms that are not a decoder's: every other ``train/loss/<key>`` is the loss of
# observation key <key> (CartPole: vector; DMC proprio: one per key, e.g. walker's height)
OFFICIAL_TERMS = {"dyn", "rep", "rew", "con", "value", "repval", "policy"}


def decoder_loss(row: dict, official: bool) -> float | None:
    """The decoder's loss summed over observation keys: ours ``loss/rec_<key>``, the official
    ``train/loss/<key>``; None where the row has none."""
    if official:
        parts = [v for k, v in row.items() if k.startswith("train/loss/") and k.split("/", 2)[2] not in OFFICIAL_TERMS]
    else:
        parts = [v for k, v in row.items() if k.startswith("loss/rec_")]
    return float(sum(parts)) if parts else None


def read_jsonl(path: pathlib.Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def ours(run: pathlib.Path) -> tuple[str, list[dict]]:
    config = json.loads((run / "config.json").read_text())
    latents = int(config["agent"].get("latents", 32))
    rows = []
    for m in read_jsonl(run / "metrics.jsonl"):
        row = {"x": m["env_steps"]}
        for name, (key, factor, _) in QUANTITIES.items():
            if key is not None and key in m:
                row[name] = m[key] * (latents if factor == "latents" else factor)
        if (decoder := decoder_loss(m, official=False)) is not None:
            row["loss/decoder"] = decoder
        row["n"] = m.get("updates")  # cumulative here: made per row below
        rows.append(row)
    rows.sort(key=lambda r: r["x"])
    counts = [r["n"] for r in rows]
    for i, r in enumerate(rows):  # the updates each row averages
        r["n"] = None if counts[i] is None or (i and counts[i - 1] is None) else counts[i] - (counts[i - 1] if i else 0)
    return f"ours seed {config['run']['seed']}", rows


def official(logdir: pathlib.Path) -> tuple[str, list[dict]]:
    starts = read_jsonl(logdir / "harness.jsonl")
    seed = starts[-1]["seed"] if starts else "?"
    rows = []
    for m in read_jsonl(logdir / "metrics.jsonl"):
        row = {"x": m["step"]}
        row.update({name: m[key] for name, (_, _, key) in QUANTITIES.items() if key is not None and key in m})
        if (decoder := decoder_loss(m, official=True)) is not None:
            row["loss/decoder"] = decoder
        if len(row) > 1:
            row["n"] = m.get("replay/samples")  # drawn since the row before: proportional to its updates
            rows.append(row)
    # a resumed run repeats the steps after its checkpoint: keep the last attempt's rows
    kept: list[dict] = []
    for row in rows:
        while kept and kept[-1]["x"] >= row["x"]:
            kept.pop()
        kept.append(row)
    return f"official seed {seed}", kept


def intervals(ends: list[float], counts: list[float | None] | None = None) -> list[float]:
    """The starts of the intervals that rows logged at env steps ``ends`` (ascending) average:
    each row's is the row before's end. The first row's: its updates (``counts``, each row's
    updates or anything proportional to them) at the second row's env steps per update, and where
    the counts are unknown, as long as the second (one row: length 1). Never below 0."""
    if len(ends) < 2:
        return [max(0.0, ends[0] - 1.0)] if ends else []
    width = ends[1] - ends[0]
    if counts is not None and counts[0] and counts[1]:
        width = counts[0] * (ends[1] - ends[0]) / counts[1]
    return [max(0.0, ends[0] - width)] + list(ends[:-1])


def finished(run: pathlib.Path) -> bool:
    """Whether a run has finished: ours says so in status.json, the official harness writes
    ``done``. (A finished run's last rows may fall a logging interval short of the budget: the
    official CartPole runs' last training rows are 70–920 env steps before 30,000.)"""
    if (run / "done").exists():
        return True
    try:
        return json.loads((run / "status.json").read_text()).get("state") == "done"
    except (OSError, ValueError):
        return False


def configured_budget(run: pathlib.Path) -> float | None:
    """The env steps a run was set to train: ours in config.json's task, the official harness in
    harness.jsonl (None where neither says)."""
    try:
        if (run / "harness.jsonl").exists():
            return float(read_jsonl(run / "harness.jsonl")[-1]["steps"])
        return float(json.loads((run / "config.json").read_text())["task"]["steps"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def spans(rows: list[dict], name: str) -> tuple[list[float], list[float], list[float]]:
    """The intervals (starts, ends) of a run's rows that hold quantity ``name``, and its values:
    each row averages the updates since the row before (``intervals``)."""
    starts = dict(zip(map(id, rows), intervals([r["x"] for r in rows], [r.get("n") for r in rows])))
    kept = [r for r in rows if name in r]
    return [starts[id(r)] for r in kept], [r["x"] for r in kept], [r[name] for r in kept]


def bin_means(starts, ends, ys, edges: list[float]) -> list[float | None]:
    """The mean of a quantity over each bin (edges[i], edges[i + 1]], each interval weighted by
    its overlap with the bin (None for a bin no interval reaches)."""
    means = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        total = weight = 0.0
        for a, b, y in zip(starts, ends, ys):
            w = max(0.0, min(b, hi) - max(a, lo))
            total += w * y
            weight += w
        means.append(total / weight if weight > 0 else None)
    return means


def quarter_means(starts, ends, ys, budget: float, reached: float | None = None) -> list[float | None]:
    """The mean of a quantity over each quarter of [0, budget] (``bin_means``). With ``reached``,
    the env steps a run still training has come to, a quarter it has not passed (to within 2% of
    the budget) is None too: the early part of a quarter is no measure of the whole, so such a run
    counts in the quarters it has passed alone."""
    means = bin_means(starts, ends, ys, [budget * q / 4 for q in range(5)])
    if reached is not None:
        means = [None if reached < budget * (q + 1) / 4 - 0.02 * budget else m for q, m in enumerate(means)]
    return means


def side_by_side(frame):
    """Per quantity and quarter: each side's mean over seeds, (ours − official) / |official|, each
    side's lowest and highest seed, and the p-value of Welch's t-test of the two sides' seed means
    (NaN with fewer than 2 seeds on a side): a small p says the seeds alone hardly explain the
    difference (one test per row: among ~50 rows a few below 0.05 are expected by chance)."""
    import pandas as pd
    from scipy import stats

    out = []
    for (name, q), sub in frame.groupby(["quantity", "quarter"], sort=False):
        row = {"quantity": name, "quarter": int(q)}
        for impl in ("ours", "official"):
            vals = sub.loc[sub["implementation"] == impl, "mean"]
            row.update({f"{impl}_mean": vals.mean(), f"{impl}_min": vals.min(), f"{impl}_max": vals.max(),
                        f"{impl}_seeds": int(vals.size)})
        row["relative_difference"] = (row["ours_mean"] - row["official_mean"]) / abs(row["official_mean"])
        a, b = (sub.loc[sub["implementation"] == impl, "mean"].to_numpy() for impl in ("ours", "official"))
        row["welch_p"] = float(stats.ttest_ind(a, b, equal_var=False).pvalue) if min(a.size, b.size) >= 2 else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", nargs="+", type=pathlib.Path, required=True)
    p.add_argument("--official", nargs="+", type=pathlib.Path, required=True)
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args(argv)
    for d in [*args.ours, *args.official]:
        if not (d / "metrics.jsonl").exists():
            print(f"error: {d} has no metrics.jsonl", file=sys.stderr)
            return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    series, reached, budgets = [], [], []  # reached: a run's env steps, None once it has finished
    for impl, read, dirs in (("ours", ours, args.ours), ("official", official, args.official)):
        for d in dirs:
            label, rows = read(d)
            if not rows:  # a run just begun: no training row yet
                print(f"{d}: no training metrics yet, left out", file=sys.stderr)
                continue
            series.append((impl, label, rows))
            reached.append(None if finished(d) else max(r["x"] for r in rows))
            budgets.append(configured_budget(d))
    if not series:
        print("error: none of the runs has training metrics yet", file=sys.stderr)
        return 2
    known = [b for b in budgets if b]
    # the quarters of the budget the runs were set to (else of the furthest run's env steps)
    budget = max(known) if known else max(r["x"] for _, _, rows in series for r in rows)
    colours = {"ours": "tab:blue", "official": "tab:orange"}
    cols = 4
    rows_n = -(-len(QUANTITIES) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 2.8 * rows_n), squeeze=False)
    summary = []
    for ax, name in zip(axes.flat, QUANTITIES):
        named = set()  # the legend names each implementation once, at its first line
        for (impl, label, rows), come_to in zip(series, reached):
            starts, ends, ys = spans(rows, name)
            if not ys:
                continue
            ax.plot([(a + b) / 2 for a, b in zip(starts, ends)], ys, color=colours[impl], alpha=0.7, lw=1,
                    label=None if impl in named else impl)
            named.add(impl)
            for q, mean in enumerate(quarter_means(starts, ends, ys, budget, come_to), start=1):
                if mean is not None:
                    summary.append({"implementation": impl, "run": label, "quantity": name, "quarter": q,
                                    "mean": mean})
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(QUANTITIES):]:
        ax.axis("off")
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle("Training metrics, ours and official, one line per seed", fontsize=11)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "metrics.png", dpi=110)
    frame = pd.DataFrame(summary)
    frame.to_csv(args.out / "metrics.csv", index=False)
    side_by_side(frame).to_csv(args.out / "summary.csv", index=False)
    print(args.out / "metrics.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
