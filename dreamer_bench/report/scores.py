"""Per-run scores by each task's protocol, normalised, as tables and score matrices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import scoring
from .data import RunRecord


def _rule(r: RunRecord) -> dict:
    return r.task_settings.get("score") or scoring.default_score(r.task_settings.get("family", "gym"))


def _norm(r: RunRecord) -> dict:
    return r.task_settings.get("normalise") or scoring.default_normalise(r.task_settings.get("family", "gym"))


def budget_of(r: RunRecord) -> float:
    return float(r.budget or r.task_settings.get("steps") or (max(r.xs) if r.xs else 0))


def run_score(r: RunRecord, at: float | None = None) -> float:
    """The run's raw score by its task's rule, at its budget or, for curves, at env step ``at``:
    the same window shifted so that it ends at ``at``."""
    rule = dict(_rule(r))
    budget = budget_of(r)
    if at is not None and rule["rule"] == "window":
        width = float(rule["end"]) - float(rule["start"])
        rule = {"rule": "last", "width": width, "closed": rule.get("closed", "right")}
    x = budget if at is None else at
    return scoring.run_score(r.xs, r.ys, rule, x, r.achievements)


def run_score_se(r: RunRecord) -> float:
    """The standard error of the run's score from the episodes in its window (scoring.run_score_se)."""
    return scoring.run_score_se(r.xs, r.ys, dict(_rule(r)), budget_of(r))


def normalised(r: RunRecord, value: float) -> float:
    if math.isnan(value):
        return value
    return scoring.normalise(value, _norm(r), r.task_settings.get("refs", {}))


def score_table(runs: list[RunRecord]) -> pd.DataFrame:
    """One row per run: suite, task, method, seed, raw score, normalised score, episodes, and
    whether it has finished (an unfinished run's score is over what it has reached of its window)."""
    rows = []
    for r in runs:
        raw = run_score(r)
        rows.append({"suite": r.suite, "task": r.task, "method": r.method, "seed": r.seed, "score": raw,
                     "normalised": normalised(r, raw), "episodes": len(r.xs), "budget": budget_of(r),
                     "source": r.source, "finished": r.state == "done"})
    return pd.DataFrame(rows, columns=["suite", "task", "method", "seed", "score", "normalised", "episodes",
                                       "budget", "source", "finished"])


def score_matrices(table: pd.DataFrame, methods: list[str], tasks: list[str]) -> dict[str, np.ndarray]:
    """method → (runs × tasks) normalised scores; a seed without a score is NaN (left out)."""
    out = {}
    for m in methods:
        sub = table[(table["method"] == m) & table["task"].isin(tasks)]
        per_task = [sub[sub["task"] == t]["normalised"].to_numpy(np.float64) for t in tasks]
        runs = max([len(v) for v in per_task] + [1])
        matrix = np.full((runs, len(tasks)), np.nan)
        for j, v in enumerate(per_task):
            matrix[: len(v), j] = v
        out[m] = matrix
    return out


def curve_table(runs: list[RunRecord], points: int = 10) -> pd.DataFrame:
    """Normalised score of every run at ``points`` evenly spaced env steps up to its budget
    (the task's window ending there), for sample-efficiency curves. ``reached`` is False where a
    run still training has not come that far (its last episode ended before): no score there,
    rather than one over part of the window."""
    rows = []
    for r in runs:
        budget = budget_of(r)
        for k in range(1, points + 1):
            x = budget * k / points
            reached = r.state == "done" or bool(r.xs) and x <= max(r.xs)
            raw = run_score(r, at=x) if reached else math.nan
            rows.append({"task": r.task, "method": r.method, "seed": r.seed, "fraction": k / points,
                         "env_steps": x, "normalised": normalised(r, raw), "reached": reached})
    return pd.DataFrame(rows, columns=["task", "method", "seed", "fraction", "env_steps", "normalised", "reached"])
