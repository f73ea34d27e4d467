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


def learning_curves(episodes: pd.DataFrame, out: Path, name: str = "learning_curves", bins: int = 20) -> str | None:
    """Per task: episode return against env steps, binned, mean over seeds with a 95% band."""
    if episodes.empty:
        return None
    df = episodes.copy()
    rows = []
    for task, sub in df.groupby("task"):
        top = sub["budget"].max()
        edges = np.linspace(0, top, bins + 1)
        sub = sub.assign(x=pd.cut(sub["env_steps"], edges, labels=edges[1:], include_lowest=True).astype(float))
        per_seed = sub.groupby(["method", "seed", "x"], observed=True)["return"].mean().reset_index()
        per_seed["task"] = task
        rows.append(per_seed)
    data = pd.concat(rows)
    tasks = sorted(data["task"].unique())
    cols = min(4, len(tasks))
    hue_order = sorted(data["method"].unique(), key=lambda m: (m != "full", m.endswith("(published)"), m))
    grid = sns.relplot(data=data, x="x", y="return", hue="method", hue_order=hue_order, col="task", col_wrap=cols,
                       kind="line", errorbar=("ci", 95), marker="o", markersize=3,
                       facet_kws={"sharex": False, "sharey": False}, height=2.6, aspect=1.3)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("env steps", "episode return")
    return save(grid.figure, out, name)


def interval_estimates(aggregates: pd.DataFrame, out: Path, name: str = "aggregates") -> str:
    """Point estimates and 95% intervals of each aggregate metric for each method."""
    metrics = list(dict.fromkeys(aggregates["metric"]))
    methods = list(dict.fromkeys(aggregates["method"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(methods) + 1.2), sharey=True)
    axes = np.atleast_1d(axes)
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
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


def ablation_chart(deltas: pd.DataFrame, out: Path, name: str = "ablation") -> str | None:
    """Change of each aggregate versus the full agent, with 95% intervals, per technique off."""
    if deltas.empty:
        return None
    metrics = list(dict.fromkeys(deltas["metric"]))
    variants = list(dict.fromkeys(deltas["method"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.45 * len(variants) + 1.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics):
        sub = deltas[deltas["metric"] == metric].set_index("method").loc[variants]
        y = np.arange(len(variants))
        err = np.vstack([sub["delta"] - sub["lower"], sub["upper"] - sub["delta"]])
        colors = [delta_colour(lo, u, higher_is_better=metric != "Optimality Gap")
                  for lo, u in zip(sub["lower"], sub["upper"])]
        ax.barh(y, sub["delta"], xerr=err, color=colors, alpha=0.8, capsize=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(y, variants)
        ax.set_title(f"Δ {metric} vs full")
    fig.tight_layout()
    return save(fig, out, name)


def performance_profiles(profiles: pd.DataFrame, out: Path, name: str = "performance_profiles") -> str:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for method, sub in profiles.groupby("method", sort=False):
        line = ax.plot(sub["tau"], sub["fraction"], label=method)[0]
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


def sample_efficiency(curves: pd.DataFrame, out: Path, name: str = "sample_efficiency") -> str | None:
    if curves.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for method, sub in curves.groupby("method", sort=False):
        line = ax.plot(sub["fraction"], sub["iqm"], marker="o", markersize=3, label=method)[0]
        ax.fill_between(sub["fraction"], sub["lower"], sub["upper"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("fraction of the budget (env steps)")
    ax.set_ylabel("IQM normalised score")
    ax.legend(fontsize=7)
    return save(fig, out, name)
