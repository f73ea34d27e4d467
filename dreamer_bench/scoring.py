"""How a run's score is read from its training episodes, and how scores are normalised.

Score rules (a suite's ``score``), on the episodes of one run (x = env steps at an episode's end):
    {rule: window, start: S, end: E, closed: both|right}
        mean return of the episodes ending in [S, E] (both) or (S, E] (right).
        Atari 100k: [390K, 400K] frames (spec §5).
    {rule: last, width: W}  or  {rule: last, fraction: F}
        the window (B − W, B] at the run's budget B (W = F·B); DMC: W = 10K.
    {rule: crafter}
        Crafter score: success rate s_i (percent of episodes within the budget that unlocked
        achievement i), score = exp(mean_i ln(1 + s_i)) − 1 (Hafner 2021).
A run with no episode in its window has no score (NaN) and is left out for that task.

Normalisation (a suite's ``normalise``), with the task's ``refs``:
    {method: human}       (s − random) / (human − random)      Atari
    {method: range}       (s − random) / (max − random)        classic control
    {method: divide, by}  s / by                               DMC: by 1000
    {method: percent}     s / 100                              Crafter score
    {method: none}        s                                    custom tasks without references
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

RULES = ("window", "last", "crafter")
METHODS = ("human", "range", "divide", "percent", "none")
METHOD_REFS = {"human": ("random", "human"), "range": ("random", "max")}


def default_score(family: str) -> dict:
    if family == "crafter":
        return {"rule": "crafter"}
    if family == "atari":
        return {"rule": "last", "width": 10_000, "closed": "both"}
    if family == "dmc":
        return {"rule": "last", "width": 10_000}
    return {"rule": "last", "fraction": 0.1}


def default_normalise(family: str) -> dict:
    return {"atari": {"method": "human"}, "dmc": {"method": "divide", "by": 1000},
            "crafter": {"method": "percent"}}.get(family, {"method": "none"})


def check(score: Mapping, normalise_spec: Mapping, refs: Mapping) -> None:
    """Raise ValueError naming what is wrong with a score rule or normalisation."""
    rule = score.get("rule")
    if rule not in RULES:
        raise ValueError(f"unknown score rule {rule!r}; valid: {', '.join(RULES)}")
    if rule == "window" and not ("start" in score and "end" in score):
        raise ValueError("score rule 'window' needs start and end")
    if rule == "last" and ("width" in score) == ("fraction" in score):
        raise ValueError("score rule 'last' needs exactly one of width, fraction")
    if score.get("closed", "right") not in ("both", "right"):
        raise ValueError("score 'closed' must be 'both' or 'right'")
    method = normalise_spec.get("method")
    if method not in METHODS:
        raise ValueError(f"unknown normalisation {method!r}; valid: {', '.join(METHODS)}")
    missing = [r for r in METHOD_REFS.get(method, ()) if r not in refs]
    if missing:
        raise ValueError(f"normalisation {method!r} needs refs {', '.join(missing)}")
    if method == "divide" and not normalise_spec.get("by"):
        raise ValueError("normalisation 'divide' needs 'by'")


def window(score: Mapping, budget: float) -> tuple[float, float, bool]:
    """(start, end, start_included) of the episodes that count."""
    if score["rule"] == "window":
        return float(score["start"]), float(score["end"]), score.get("closed", "right") == "both"
    if score["rule"] == "last":
        width = float(score["width"]) if "width" in score else float(score["fraction"]) * budget
        return budget - width, float(budget), score.get("closed", "right") == "both"
    return 0.0, float(budget), True


def describe_window(score: Mapping, budget: float, unit: str = "env steps") -> str:
    """The episodes a score counts, in words: "ending in (490,000, 500,000] env steps"."""
    if score.get("rule") == "crafter":
        return f"all episodes within {budget:,.0f} {unit} (Crafter score of achievement success rates)"
    start, end, closed_left = window(score, budget)
    return f"ending in {'[' if closed_left else '('}{start:,.0f}, {end:,.0f}] {unit}"


def in_window(xs: np.ndarray, start: float, end: float, closed_left: bool) -> np.ndarray:
    xs = np.asarray(xs, dtype=np.float64)
    left = xs >= start if closed_left else xs > start
    return left & (xs <= end)


def crafter_score(achievements: Sequence[Mapping[str, int]], names: Iterable[str]) -> float:
    """exp(mean_i ln(1 + s_i)) − 1 with s_i the percent of episodes that unlocked achievement i."""
    names = list(names)
    if not achievements:
        return math.nan
    counts = np.array([[1.0 if ep.get(n, 0) > 0 else 0.0 for n in names] for ep in achievements])
    rates = 100.0 * counts.mean(0)
    return float(np.exp(np.mean(np.log1p(rates))) - 1.0)


def run_score(xs: Sequence[float], returns: Sequence[float], score: Mapping, budget: float,
              achievements: Sequence[Mapping[str, int]] | None = None) -> float:
    """A run's score from its training episodes; NaN when no episode counts."""
    xs, returns = np.asarray(xs, np.float64), np.asarray(returns, np.float64)
    start, end, closed_left = window(score, budget)
    mask = in_window(xs, start, end, closed_left)
    if score["rule"] == "crafter":
        from .envs.crafter_env import ACHIEVEMENTS

        chosen = [a for a, m in zip(achievements or [], mask) if m]
        return crafter_score(chosen, ACHIEVEMENTS)
    if not mask.any():
        return math.nan
    return float(returns[mask].mean())


def run_score_se(xs: Sequence[float], returns: Sequence[float], score: Mapping, budget: float) -> float:
    """The standard error of a run's score from its own episodes: the spread (n − 1) of the
    returns in its window over the square root of their number, as for independent draws. NaN
    with fewer than 2 episodes there, and for the Crafter rule, whose score is not a mean."""
    if score["rule"] == "crafter":
        return math.nan
    xs, returns = np.asarray(xs, np.float64), np.asarray(returns, np.float64)
    inside = returns[in_window(xs, *window(score, budget))]
    if len(inside) < 2:
        return math.nan
    return float(inside.std(ddof=1) / math.sqrt(len(inside)))


def normalise(value: float, spec: Mapping, refs: Mapping) -> float:
    method = spec.get("method", "none")
    if method == "human":
        return (value - refs["random"]) / (refs["human"] - refs["random"])
    if method == "range":
        return (value - refs["random"]) / (refs["max"] - refs["random"])
    if method == "divide":
        return value / float(spec["by"])
    if method == "percent":
        return value / 100.0
    return value


# ------------------------------------------------------------------------------------------------
# acceptance targets (a suite's optional ``target``): does a method reach what it should?
#   {episodes: N, at_least: V}   every seed's mean return of its last N episodes within the
#                                budget is at least V
#   {range: [lo, hi]}            the mean over seeds of the run scores lies in [lo, hi]
# ------------------------------------------------------------------------------------------------


def check_target(target: Mapping) -> None:
    if "range" in target:
        lo_hi = target["range"]
        if not (isinstance(lo_hi, (list, tuple)) and len(lo_hi) == 2 and float(lo_hi[0]) <= float(lo_hi[1])):
            raise ValueError("target 'range' must be [low, high]")
    elif "episodes" in target and "at_least" in target:
        if int(target["episodes"]) < 1:
            raise ValueError("target 'episodes' must be ≥ 1")
    elif "match" in target:
        if not isinstance(target["match"], str) or not target["match"]:
            raise ValueError("target 'match' names the method to match, e.g. {match: official}")
    else:
        raise ValueError("a target is {episodes: N, at_least: V}, {range: [low, high]} or {match: METHOD}")


def evaluate_target(target: Mapping, runs: Sequence[tuple[Sequence[float], Sequence[float]]],
                    scores: Sequence[float], budget: float) -> dict:
    """Judge one method on one task: ``runs`` holds each seed's (xs, ys), ``scores`` each seed's
    run score. Returns the measured value(s), the target as text, and pass/fail."""
    if "range" in target:
        lo, hi = (float(v) for v in target["range"])
        valid = [s for s in scores if not math.isnan(s)]
        value = float(np.mean(valid)) if valid else math.nan
        return {"value": value, "per_seed": list(scores), "target": f"mean over seeds in [{lo:g}, {hi:g}]",
                "passed": bool(valid) and lo <= value <= hi}
    n, floor = int(target["episodes"]), float(target["at_least"])
    per_seed = []
    for xs, ys in runs:
        kept = [y for x, y in zip(xs, ys) if x <= budget][-n:]
        per_seed.append(float(np.mean(kept)) if len(kept) == n else math.nan)
    passed = bool(per_seed) and all(not math.isnan(v) and v >= floor for v in per_seed)
    return {"value": float(np.nanmin(per_seed)) if any(not math.isnan(v) for v in per_seed) else math.nan,
            "per_seed": per_seed, "target": f"every seed's last {n} episodes ≥ {floor:g}", "passed": passed}
