"""Figures drawn with seaborn, each saved as PNG and PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")


def save(fig, out: Path, name: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / f"{name}.pdf", bbox_inches="tight")
    plt.close(fig)
    return f"{name}.png"


def method_colours(methods) -> dict[str, tuple]:
    """One colour per method for every figure of a suite: the full agent first of the palette,
    the other methods after it in their order, published runs in greys."""
    methods = list(dict.fromkeys(methods))
    published = [m for m in methods if str(m).endswith("(published)")]
    others = [m for m in methods if m not in published]
    colours = dict(zip(others, sns.color_palette("tab10" if len(others) <= 10 else "husl", n_colors=len(others))))
    greys = [(0.15, 0.15, 0.15), (0.45, 0.45, 0.45), (0.65, 0.65, 0.65)]
    colours.update({m: greys[i % len(greys)] for i, m in enumerate(published)})
    return colours


def seed_band(values: np.ndarray, rng: np.random.Generator, reps: int = 1000) -> tuple[float, float, float]:
    """Mean over seeds and its 95% percentile-bootstrap interval (resampling seeds); a single
    seed's interval is the point itself."""
    values = np.asarray(values, float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    means = values[rng.integers(0, len(values), (reps, len(values)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return mean, float(lo), float(hi)


SEED_LINES = 8  # methods with at most this many seeds on a task also get a thin line per seed


def learning_curves(episodes: pd.DataFrame, out: Path, name: str = "learning_curves", bins: int = 20,
                    colours: dict | None = None, seed: int = 0) -> str | None:
    """Per task: episode return against env steps in ``bins`` equal bins of the budget (each
    seed's mean return in a bin), mean over seeds with a 95% bootstrap band over seeds, and a thin
    line per seed where a method has at most ``SEED_LINES`` seeds on the task. The drawn numbers
    are written beside the figure: ``<name>.csv`` (mean and band per method and bin) and
    ``<name>_seeds.csv`` (each seed's mean per bin)."""
    if episodes.empty:
        return None
    rng = np.random.default_rng(seed)
    rows, seed_rows = [], []
    for task, sub in episodes.groupby("task"):
        edges = np.linspace(0, sub["budget"].max(), bins + 1)
        sub = sub.assign(x=pd.cut(sub["env_steps"], edges, labels=edges[1:], include_lowest=True).astype(float))
        per_seed = sub.groupby(["method", "seed", "x"], observed=True)["return"].mean().reset_index()
        seed_rows.append(per_seed.assign(task=task))
        for (method, x), cell in per_seed.groupby(["method", "x"]):
            mean, lo, hi = seed_band(cell["return"].to_numpy(), rng)
            rows.append({"task": task, "method": method, "x": x, "mean": mean, "lower": lo, "upper": hi})
    data = pd.DataFrame(rows)
    seeds = pd.concat(seed_rows)[["task", "method", "seed", "x", "return"]].sort_values(["task", "method", "seed", "x"])
    out.mkdir(parents=True, exist_ok=True)
    # in the files, each bin is named by its right edge in env steps
    data.sort_values(["task", "method", "x"]).rename(columns={"x": "env_steps"}).to_csv(out / f"{name}.csv",
                                                                                        index=False)
    seeds.rename(columns={"x": "env_steps"}).to_csv(out / f"{name}_seeds.csv", index=False)
    tasks = sorted(data["task"].unique())
    methods = sorted(data["method"].unique(), key=lambda m: (m != "full", m.endswith("(published)"), m))
    colours = colours or method_colours(methods)
    cols = min(4, len(tasks))
    nrows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.6 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for method in methods:
            line = data[(data["task"] == task) & (data["method"] == method)].sort_values("x")
            if line.empty:
                continue
            ax.plot(line["x"], line["mean"], marker="o", markersize=3, color=colours[method], label=method)
            ax.fill_between(line["x"], line["lower"], line["upper"], color=colours[method], alpha=0.2, linewidth=0)
            own = seeds[(seeds["task"] == task) & (seeds["method"] == method)]
            if own["seed"].nunique() <= SEED_LINES:
                for _, one in own.groupby("seed"):
                    ax.plot(one["x"], one["return"], color=colours[method], linewidth=0.6, alpha=0.45)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", markersize=3) for m in methods]
    fig.legend(handles, methods, loc="upper center", ncol=min(len(methods), 4), bbox_to_anchor=(0.5, 1.0),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.6 * nrows)))
    return save(fig, out, name)


def interval_estimates(aggregates: pd.DataFrame, out: Path, name: str = "aggregates", colours: dict | None = None) -> str:
    """Point estimates and 95% intervals of each aggregate metric for each method."""
    metrics = list(dict.fromkeys(aggregates["metric"]))
    methods = list(dict.fromkeys(aggregates["method"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(methods) + 1.2), sharey=True)
    axes = np.atleast_1d(axes)
    palette = colours or method_colours(methods)
    for ax, metric in zip(axes, metrics):
        sub = aggregates[aggregates["metric"] == metric].set_index("method").loc[methods]
        y = np.arange(len(methods))
        for i, m in enumerate(methods):
            ax.barh(y[i], sub.loc[m, "upper"] - sub.loc[m, "lower"], left=sub.loc[m, "lower"], height=0.6,
                    color=palette[m], alpha=0.75)
            ax.vlines(sub.loc[m, "value"], y[i] - 0.3, y[i] + 0.3, color="black", linewidth=1.5)
        ax.set_yticks(y, methods)
        ax.set_title(metric)
        ax.set_xlabel("normalised score")
    fig.tight_layout()
    return save(fig, out, name)


def delta_colour(lower: float, upper: float, higher_is_better: bool = True) -> str:
    """Red where the interval of a change shows the variant worse than the full agent, green where
    it shows it better, grey where it includes 0 (the optimality gap is better when lower)."""
    if lower > 0:
        return "tab:green" if higher_is_better else "tab:red"
    if upper < 0:
        return "tab:red" if higher_is_better else "tab:green"
    return "tab:gray"


def ablation_span(sub: pd.DataFrame, reference: float | None) -> float:
    """Half the width of an ablation panel's axis: the largest change or interval end, but at
    least 5% of the full agent's value of the metric (and 0.01), so that a change of −0.0006 is
    drawn as the sliver it is rather than filling the panel."""
    ends = np.abs(sub[["delta", "lower", "upper"]].to_numpy(float))
    largest = float(np.nanmax(ends)) if np.isfinite(ends).any() else 0.0
    floor = max(0.05 * abs(reference), 0.01) if reference is not None and np.isfinite(reference) else 0.01
    return 1.1 * max(largest, floor)


def ablation_chart(deltas: pd.DataFrame, out: Path, name: str = "ablation", reference: dict | None = None,
                   unsupported: list | None = None) -> str | None:
    """Change of each aggregate versus the full agent, with 95% intervals, per technique off;
    ``reference``: the full agent's value of each metric (for the axis, see ablation_span);
    ``unsupported``: variants whose intervals are points (one seed), drawn grey."""
    if deltas.empty:
        return None
    metrics = list(dict.fromkeys(deltas["metric"]))
    variants = list(dict.fromkeys(deltas["method"]))
    unsupported = set(unsupported or ())
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(variants) + 1.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        sub = deltas[deltas["metric"] == metric].set_index("method").loc[variants]
        y = np.arange(len(variants))
        err = np.vstack([sub["delta"] - sub["lower"], sub["upper"] - sub["delta"]])
        colors = ["tab:gray" if v in unsupported else delta_colour(lo, u, higher_is_better=metric != "Optimality Gap")
                  for v, lo, u in zip(variants, sub["lower"], sub["upper"])]
        ax.barh(y, sub["delta"], xerr=err, color=colors, alpha=0.8, capsize=3)
        span = ablation_span(sub, (reference or {}).get(metric))
        ax.set_xlim(-span, span)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, variants)
        ax.set_title(f"Δ {metric} vs full")
    fig.tight_layout()
    return save(fig, out, name)


def performance_profiles(profiles: pd.DataFrame, out: Path, name: str = "performance_profiles",
                         colours: dict | None = None) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    colours = colours or method_colours(profiles["method"])
    for method, sub in profiles.groupby("method", sort=False):
        line = ax.plot(sub["tau"], sub["fraction"], label=method, color=colours[method])[0]
        ax.fill_between(sub["tau"], sub["lower"], sub["upper"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("normalised score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.legend(fontsize=7)
    return save(fig, out, name)


def improvement(probabilities: pd.DataFrame, out: Path, name: str = "probability_of_improvement") -> str | None:
    if probabilities.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 0.45 * len(probabilities) + 1.2))
    y = np.arange(len(probabilities))
    p = probabilities
    ax.barh(y, p["upper"] - p["lower"], left=p["lower"], height=0.6, alpha=0.7)
    ax.vlines(p["probability"], y - 0.3, y + 0.3, color="black")
    ax.axvline(0.5, color="gray", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, [f"P({a} > {b})" for a, b in zip(p["x"], p["y"])])
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of improvement")
    return save(fig, out, name)


def sample_efficiency(curves: pd.DataFrame, out: Path, name: str = "sample_efficiency",
                      colours: dict | None = None) -> str | None:
    if curves.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4))
    colours = colours or method_colours(curves["method"])
    for method, sub in curves.groupby("method", sort=False):
        line = ax.plot(sub["fraction"], sub["iqm"], marker="o", markersize=3, label=method, color=colours[method])[0]
        ax.fill_between(sub["fraction"], sub["lower"], sub["upper"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("fraction of the budget (env steps)")
    ax.set_ylabel("IQM normalised score")
    ax.legend(fontsize=7)
    return save(fig, out, name)
