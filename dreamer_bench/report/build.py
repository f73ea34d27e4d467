"""``dreamer-bench report``: score files in; tables (Markdown, CSV, LaTeX) and figures out.

For every suite of the results: per-run scores by the suite's protocol, normalised; aggregates
(IQM, mean, median, optimality gap) over tasks and seeds with stratified bootstrap 95% intervals;
the change of each aggregate for every technique switched off, with its interval, and per task;
probability of improvement over the full agent; performance profiles; sample-efficiency curves;
per-task learning curves; and, with ``--compare dreamerv3``, the published runs beside them.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures, stats
from .data import (CRAFTER_EVAL, OFFICIAL_REFERENCE, PUBLISHED_PROTOCOL, UNRECORDED, ReportError, RunRecord,
                   as_score_records, load_official, load_published, load_results, mixed_rules, opened_results,
                   published_alone, published_budgets, records_from_score_file, separate_configurations,
                   settings_differ)
from .. import scoring
from ..results import baseline_variant, write_score_file
from .scores import budget_of, curve_table, run_score, run_score_se, score_matrices, score_table

# reasons a run is left out that are not its state: --include-unfinished does not bring it
NOT_A_STATE = ("without evaluation episodes", CRAFTER_EVAL)
# run states a target waits for: training, stopped to be resumed (the runner's "pending"), or a
# reference run marked unfinished; a failed run is drawn but neither judged nor waited for
WAITING = ("running", "pending", "unfinished")

FULL = "full"


@dataclass
class ReportOptions:
    results: Path  # a results folder, or a .tar.gz of one
    out: Path
    more: list[Path] = field(default_factory=list)  # further results folders or archives, reported as one
    suites: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    compare: list[str] = field(default_factory=list)
    score_files: list[Path] = field(default_factory=list)
    include_unfinished: bool = False
    episodes: str = "train"  # train: the training episodes (scores.json); eval: eval_scores.json
    html: bool = False  # also report.html, self-contained (report/html.py)
    reps: int = 50_000
    seed: int = 0


def order_methods(methods) -> list[str]:
    """The full agent first, then its variants; each plug-in family (``full@p``, ``off-…@p``) after
    it in the same order; the published runs last."""
    methods = list(dict.fromkeys(methods))
    published = sorted(m for m in methods if m.endswith("(published)"))
    ours = [m for m in methods if m not in published]
    return sorted(ours, key=lambda m: (baseline_variant(m) != FULL, baseline_variant(m), m != baseline_variant(m), m)) + published


def fmt(v: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    text = f"{v:.{digits}f}"
    if lo is not None:
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def write_table(df: pd.DataFrame, out: Path, name: str) -> None:
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.tex").write_text(df.to_latex(index=False, escape=True, float_format="%.3f"))


def make_report(opts: ReportOptions) -> Path:
    started = time.time()
    if published_only(opts.compare, opts.suites, opts.results):
        runs, notes, left_out = [], [], {}
    else:
        runs, notes, left_out = [], [], {}
        where: dict[tuple, Path] = {}
        for results in [opts.results, *opts.more]:
            with opened_results(results) as folder:  # a folder, or a .tar.gz of one
                these, more_notes, more_left = load_results(folder, opts.include_unfinished, opts.episodes)
            for r in these:
                key = (r.suite, r.method, r.task, r.seed, r.identity)  # another configuration is shown apart
                if key in where:
                    raise ReportError(f"run {'/'.join(map(str, key[:3]))}/seed_{r.seed} is in both {where[key]} "
                                      f"and {results}: report them apart, or leave one out")
                where[key] = results
            runs += these
            notes += more_notes
            for state, n in more_left.items():
                left_out[state] = left_out.get(state, 0) + n
    available = runs
    named = ", ".join(map(str, [opts.results, *opts.more]))  # what the messages name
    if opts.suites:
        runs = [r for r in runs if r.suite in opts.suites]
    if opts.tasks:
        runs = [r for r in runs if r.task in opts.tasks]
    if opts.variants:
        runs = [r for r in runs if r.method in opts.variants]
    if runs:  # some match: a filter value that matches no run is a typo, not a narrower report
        filters = (("--suite", "suite", opts.suites), ("--tasks", "task", opts.tasks), ("--variants", "method", opts.variants))
        for flag, key, values in filters:
            # the runs the other filters keep: a value must match one of them
            others = [r for r in available if all(not v or getattr(r, k) in v for f, k, v in filters if f != flag)]
            missing = [v for v in values or [] if not any(getattr(r, key) == v for r in others)]
            if missing:
                valid = ", ".join(sorted({getattr(r, key) for r in others}))
                unfinished = any(state not in NOT_A_STATE for state in left_out)
                raise ReportError(f"{flag} {', '.join(missing)} matches no run in {named} that the other "
                                  f"filters keep; valid: {valid}" + (" (unfinished runs: --include-unfinished)" if unfinished else ""))
    alone = not runs and opts.compare and opts.suites and not (opts.tasks or opts.variants)
    if alone:  # no runs of the user's: the published runs of the suites on their own
        for name in opts.compare:
            runs += published_alone(name, opts.suites, opts.include_unfinished)
    if not runs:
        there = ""
        if available and (opts.suites or opts.tasks or opts.variants):
            names = lambda key: ", ".join(sorted({getattr(r, key) for r in available}))  # noqa: E731
            there = f"; there are suites {names('suite')}, variants {names('method')}, tasks {names('task')}"
        skipped = f"; {'; '.join(notes)}" if notes else ""  # a corrupt file may be why there is nothing
        raise ReportError(f"no finished runs in {named} match the filters"
                          + (f" ({', '.join(f'{n} {state}' for state, n in sorted(left_out.items()))} left out"
                             + ("" if set(left_out) <= set(NOT_A_STATE) else "; --include-unfinished")
                             + ")" if left_out else "")
                          + there + skipped
                          + ("" if opts.compare else "; to see the published runs alone: --compare dreamerv3 --suite atari100k"))
    runs = separate_configurations(runs)
    mixed = mixed_rules(runs)
    for line in mixed:
        warnings.warn(line)
    mine = list(runs)
    for name in dict.fromkeys(opts.compare) if not alone else []:  # a name given twice is drawn once
        if name != "official":
            runs += load_published(name, mine)
            for line in published_budgets(name, mine):
                warnings.warn(line)
                mixed.append(line)
            continue
        if any(r.method == "official" for r in mine):
            raise ReportError("--compare official: your runs have a method named official already; rename it or "
                              "leave out --compare official")
        official, differ = load_official(mine, opts.include_unfinished)
        if not official:  # asked for by name: drawing nothing would look like a comparison made
            still = not opts.include_unfinished and load_official(mine, True)[0]
            raise ReportError("--compare official: " + (
                f"your runs' settings differ from the official runs' on every task they share: {'; '.join(differ)}"
                if differ else "the official runs of these tasks are still training (--include-unfinished draws them)"
                if still else f"the official agent's reference runs are made at the settings of the suite(s) "
                              f"{', '.join(OFFICIAL_REFERENCE)} and cover none of these runs' tasks"))
        for d in differ:
            warnings.warn(f"--compare official: not compared on {d}: your runs' settings differ from the official runs'")
        runs += official
    came_from = {(r.suite, r.task, r.method, r.seed): "--compare official" for r in runs
                 if r.source.startswith("official:")}
    came_from.update({(r.suite, r.task, r.method, r.seed): "your own runs" for r in mine if r.source == "results"})
    own_methods = {(r.suite, r.task, r.method) for r in mine if r.source == "results"}
    for path in opts.score_files:
        by_suite: dict[str, dict] = {}
        for r in mine:
            by_suite.setdefault(r.suite, {})[r.task] = {**r.task_settings, "steps": r.budget}
        for suite, settings in by_suite.items():
            these = records_from_score_file(path, settings, suite, include_unfinished=opts.include_unfinished)
            for r in these:  # one run twice would count its seed twice
                if r.method == "official" and "official" in opts.compare:
                    raise ReportError(f"{path} has runs of method official, and --compare official brings the "
                                      f"shipped ones: leave one out")
                key = (r.suite, r.task, r.method, r.seed)
                if key in came_from:
                    raise ReportError(f"{r.method} run {r.task} seed {r.seed} comes from both {came_from[key]} and "
                                      f"{path}: leave one out")
                if (r.suite, r.task, r.method) in own_methods:  # its seeds would pool with yours under one label
                    raise ReportError(f"{path} has runs of method {r.method} on {r.task}, a method of your own runs: "
                                      f"give the file's runs another method name")
                came_from[key] = str(path)
            runs += these
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    write_score_file(out / "scores.json.gz", as_score_records(runs))
    source = (f"the published runs alone ({', '.join(opts.compare)}; no runs of yours in "
              + ", ".join(f"`{r}`" for r in [opts.results, *opts.more]) + ")" if alone
              else ", ".join(f"`{r}`" for r in [opts.results, *opts.more]))
    which = ("Scores come from the runs' **evaluation episodes** (`eval_scores.json`, `--episodes eval`; x = the "
             "training env steps at each evaluation)" if opts.episodes == "eval" else
             "Scores come from the runs' **training episodes** (`scores.json`; `--episodes eval` reads their "
             "evaluation episodes)")
    sections = [f"# dreamer-bench report\n\nResults: {source}. {which}. Generated "
                f"{time.strftime('%Y-%m-%d %H:%M')}; bootstrap: {opts.reps:,} stratified resamples, seed "
                f"{opts.seed}, 95% percentile intervals (Agarwal et al. 2021).\n"]
    if left_out:
        hint = "" if set(left_out) <= set(NOT_A_STATE) else " (unfinished ones: use `--include-unfinished` to include them)"
        sections.append(f"Runs left out{hint}: "
                        + ", ".join(f"{n} {s}" for s, n in sorted(left_out.items())) + ".\n")
    if notes:
        sections.append("Skipped files:\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    if mixed:
        sections.append("**Scored by different rules or budgets:**\n" + "\n".join(f"- {line}" for line in mixed) + "\n")
    for suite in sorted({r.suite for r in runs}):
        sections.append(suite_section(suite, [r for r in runs if r.suite == suite], out, opts))
    sections.append(f"\n_Report computed in {time.time() - started:.1f} s._\n")
    (out / "report.md").write_text("\n".join(sections))
    if opts.html:
        from .html import write_html

        write_html(out / "report.md")
    return out / "report.md"


def published_only(compare, suites, results: Path) -> bool:
    """A report of the published runs alone: asked for with --compare and --suite, and the
    results folder does not exist (an empty or missing folder is how a fresh clone looks)."""
    return bool(compare and suites and not Path(results).exists())


def _waiting(n: int) -> str:
    return f"; waits for {n} unfinished run{'' if n == 1 else 's'}" if n else ""


def target_rows(runs: list[RunRecord], tasks: list[str], methods: list[str], reps: int = 50_000,
                seed: int = 0) -> pd.DataFrame:
    """Each method's runs judged by its task's target. A ``{match: M}`` target judges every method
    of the user's runs against M's runs of the task (published and score-file runs are context
    and references there, not judged): the difference of mean scores (method − M) with its 95%
    bootstrap interval over seeds must contain 0; with fewer than 2 seeds on a side (or no runs of
    M) it is not judged (``passed`` None). Other targets (``range``, ``at_least``) judge every
    method, the published runs too (they show whether the target itself is sane). Runs still
    training (``--include-unfinished``) are not judged: the value is over the finished runs, and
    a target with an unfinished run on either side waits for it (``passed`` None), since a score
    over part of its window is not the run's score."""
    rows = []
    for task in tasks:
        own = [r for r in runs if r.task == task and r.source == "results"]
        target = own[0].task_settings.get("target") if own else None
        if not target:
            continue
        pool = own if "match" in target else [r for r in runs if r.task == task]
        for i, m in enumerate(methods):
            every = sorted((r for r in pool if r.method == m), key=lambda r: r.seed)
            if not every:
                continue
            members = [r for r in every if r.state == "done"]
            waiting = sum(r.state in WAITING for r in every)  # runs still training: drawn, not judged
            scores = [run_score(r) for r in members]
            if "match" in target:
                other = target["match"]
                if m == other:
                    continue
                reference = [r for r in runs if r.task == task and r.method == other]
                theirs = [run_score(r) for r in reference if r.state == "done"]
                waiting += sum(r.state in WAITING for r in reference)
                # the official runs were made at one budget, action repeat, train ratio…: a method at others is not theirs to judge
                official = next((r for r in reference if r.source.startswith("official:")), None)
                differ = sorted({d for r in every for d in settings_differ(r, official)}) if official else []
                value, lo, hi = (np.nan,) * 3 if differ else stats.mean_difference_interval(scores, theirs, reps=reps,
                                                                                              seed=seed + i)
                # seeds with a score: a run still short of its score's window has none yet
                n_mine, n_theirs = (sum(not np.isnan(v) for v in vs) for vs in (scores, theirs))
                judged = n_mine >= 2 and n_theirs >= 2 and not waiting and not differ
                scored = [[run_score_se(r) for r, v in zip(rs, vs) if not np.isnan(v)]
                          for rs, vs in ((members, scores), ([r for r in reference if r.state == "done"], theirs))]
                noise = stats.episode_noise_se(*scored) if judged else np.nan
                rows.append({"task": task, "method": m, "seeds": n_mine,
                             "target": f"{m} − {other} ({n_theirs} seed{'' if n_theirs == 1 else 's'}): 95% "
                                       "interval contains 0" + _waiting(waiting)
                                       + (f"; not comparable, settings differ ({', '.join(differ)})" if differ else ""),
                             "value": value, "lower": lo, "upper": hi, "per_seed": scores,
                             "passed": bool(lo <= 0 <= hi) if judged else None,
                             "fail_if_equal": stats.false_exclusion_rate(n_mine, n_theirs) if judged else np.nan,
                             "episode_se": noise, "match": other})
                continue
            budget = budget_of(every[0])
            result = scoring.evaluate_target(target, [(r.xs, r.ys) for r in members], scores, budget)
            # a mean over seeds needs every finished seed's score: one without an episode in its
            # window leaves the target unjudged, not judged on the others
            unscored = sum(np.isnan(v) for v in scores) if "range" in target else 0
            note = _waiting(waiting) + (f"; {unscored} seed{'' if unscored == 1 else 's'} without a score" if unscored else "")
            rows.append({"task": task, "method": m, "seeds": len(members) - unscored, "target": result["target"] + note,
                         "value": result["value"], "lower": np.nan, "upper": np.nan, "per_seed": result["per_seed"],
                         "passed": None if waiting or unscored else result["passed"], "fail_if_equal": np.nan,
                         "episode_se": np.nan, "match": None})
    return pd.DataFrame(rows, columns=["task", "method", "seeds", "target", "value", "lower", "upper", "per_seed",
                                       "passed", "fail_if_equal", "episode_se", "match"])


@dataclass
class _Suite:
    """What every section of a suite's report reads: its runs, tasks, methods and score table."""

    name: str
    runs: list[RunRecord]  # the user's runs, published runs and score-file runs of the suite
    own: list[RunRecord]  # the user's runs alone
    tasks: list[str]
    methods: list[str]
    table: pd.DataFrame  # one row per (task, method, seed): score and normalised score
    out: Path
    opts: ReportOptions

    @property
    def prefix(self) -> str:
        return f"{self.name}_"

    @property
    def colours(self) -> dict:
        """Each method's colour, the same in every figure of the suite."""
        return figures.method_colours(self.methods)

    def seeds(self, method: str) -> tuple[int, int]:
        """The fewest and most seeds with a score that the method has on a task of the suite."""
        counts = (self.table[self.table["method"] == method].groupby("task")["normalised"]
                  .apply(lambda v: int(v.notna().sum())))
        return (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)

    def seeds_text(self, methods=None) -> str:
        parts = []
        for m in methods or self.methods:
            lo, hi = self.seeds(m)
            rows = self.table[self.table["method"] == m]
            partial = int((~rows["finished"].astype(bool) & rows["normalised"].notna()).sum())
            parts.append(f"{m} {lo if lo == hi else f'{lo}–{hi}'} seed{'s' if hi != 1 else ''}"
                         + (f" ({partial} run{'' if partial == 1 else 's'} unfinished, scored on part of the window)" if partial else ""))
        return "; ".join(parts)

    def window_text(self) -> str:
        """Which episodes the scores count, by the suite's rules."""
        described = sorted({scoring.describe_window(r.task_settings.get("score") or scoring.default_score(
            r.task_settings.get("family", "")), budget_of(r), "frames" if r.task_settings.get("family") == "atari"
            else "env steps") for r in self.own})
        episodes = "evaluation" if self.opts.episodes == "eval" else "training"
        if len(described) > 2:
            return f"mean return of the {episodes} episodes in each task's window (see the suite file)"
        return f"mean return of the {episodes} episodes " + " or ".join(described)

    def caption(self, statistic: str, methods=None, intervals: bool = True) -> str:
        """A figure's or table's caption: the statistic, the window and the seeds."""
        band = (f"; 95% stratified bootstrap intervals ({self.opts.reps:,} resamples)" if intervals else "")
        return (f"\n\n*{statistic} Score: {self.window_text()}, normalised; {len(self.tasks)} task(s); seeds: "
                f"{self.seeds_text(methods)}{band}.*")

    def one_seed(self, methods) -> bool:
        """Whether any of the methods has a single seed on some task: its intervals are points."""
        return any(self.seeds(m)[0] <= 1 for m in methods)


def suite_section(suite: str, runs: list[RunRecord], out: Path, opts: ReportOptions) -> str:
    """A suite's part of the report: its introduction, then one section after another, each
    writing its tables and figures into ``out``."""
    # the report covers the tasks of the user's runs; with none (published runs alone), theirs
    own = [r for r in runs if r.source == "results"] or runs
    tasks = sorted({r.task for r in own})
    table = score_table(runs)
    table = table[table["task"].isin(tasks)]
    s = _Suite(suite, runs, own, tasks, order_methods(table["method"]), table, out, opts)
    matrices = score_matrices(table, s.methods, tasks)
    text = (_introduction(s) + _per_task(s) + _targets(s) + _aggregates(s, matrices) + _ablation(s, matrices)
            + _profiles(s, matrices) + _efficiency_and_curves(s) + _predictions(s))
    return "\n".join(text) + "\n"


def _introduction(s: _Suite) -> list[str]:
    suite, own, tasks, methods = s.name, s.own, s.tasks, s.methods
    norms = sorted({(r.task_settings.get("normalise") or {}).get("method", "none") for r in own})
    text = [f"## Suite `{suite}`\n",
            f"{len(tasks)} task(s), methods: {', '.join(f'`{m}`' for m in methods)}. Scores are read from "
            f"{'evaluation' if s.opts.episodes == 'eval' else 'training'} episodes by each task's rule and normalised by {', '.join(f'`{n}`' for n in norms)} "
            f"(see `dreamer_bench/scoring.py`)."]
    raw = sorted({r.task for r in own if ((r.task_settings.get("normalise") or {}).get("method", "none")) == "none"})
    if raw and len(tasks) > 1:
        message = (f"suite {suite}: the aggregates pool raw scores of {', '.join(raw)} (no normalisation "
                   f"references) with other tasks; give the tasks refs and a normalise rule")
        warnings.warn(message)
        text.append(f"\n**Warning:** the aggregates pool raw, unnormalised scores of {', '.join(f'`{t}`' for t in raw)} "
                    "with other tasks, so they weigh the tasks by their reward scales.\n")
    beyond = []
    for m in methods:
        members = [r for r in own if r.method == m]
        settings = sorted({f"{k}={v}" for r in members for k, v in r.beyond_preset.items()})
        presets = sorted({str(r.task_settings.get("preset")) for r in members})
        if settings:
            beyond.append(f"`{m}` ({', '.join(presets)}): {', '.join(f'`{x}`' for x in settings)}")
    if beyond:
        text.append("Agent settings that differ from the preset: " + "; ".join(beyond) + ".")
    text += _machines([r for r in own if r.source == "results"])
    published = [m for m in methods if m.endswith("(published)")]
    if published:
        sources = sorted({r.source.split(":", 1)[1] for r in s.runs if r.source.startswith("published:")})
        made = "; ".join(f"`{f}`: {PUBLISHED_PROTOCOL.get(f, 'see SOURCE.md')}" for f in sources)
        text.append("Published runs are scored with the same rule at the same budget. What made them: "
                    f"{made} (`dreamer_bench/report/published/SOURCE.md`).")
    if any(r.source.startswith("official:") for r in s.runs):
        text.append(f"`official`: the reference runs of the official DreamerV3 (danijar/dreamerv3 at e3f0224, JAX, "
                    f"fp32, one CPU core each) at this suite's settings, made by `tools/official/reference_runs.sh` "
                    f"and shipped with dreamer-bench (`--compare official`: `{OFFICIAL_REFERENCE[suite]}`, "
                    f"`dreamer_bench/report/published/SOURCE.md`).")
        text += _machines([r for r in s.runs if r.source.startswith("official:")], "The official runs trained on")
    return text


def _machines(mine: list[RunRecord], label: str = "Trained on") -> list[str]:
    """Which machines trained these runs (the user's, or the official reference runs under their
    own label; a resumed run may name several): speed and rounding depend on the CPU's
    instruction sets, so a report names them. Nothing where no run names one."""
    counts: dict[str, int] = {}
    for r in mine:
        for m in r.machines:
            counts[m] = counts.get(m, 0) + 1
    if not set(counts) - {UNRECORDED}:
        return []
    runs = lambda n: f"{n} run{'s' if n != 1 else ''}"  # noqa: E731
    parts = [f"{m} ({runs(n)})" for m, n in counts.items() if m != UNRECORDED]
    if UNRECORDED in counts:
        parts.append(f"not recorded ({runs(counts[UNRECORDED])} trained, at least in part, before runs recorded "
                     "their CPU)")
    several = sum(len(r.machines) > 1 for r in mine)
    return [f"{label}: " + "; ".join(parts) + "."
            + (f" {runs(several)} trained on more than one of these." if several else "")]


def _per_task(s: _Suite) -> list[str]:
    table, methods, out, prefix = s.table, s.methods, s.out, s.prefix
    text = []
    per_task = (table.groupby(["task", "method"])
                .agg(seeds=("normalised", lambda s: int(s.notna().sum())), score=("score", "mean"),
                     score_std=("score", "std"), normalised=("normalised", "mean"),
                     unfinished=("finished", lambda f: int((~f.astype(bool)).sum())))
                .reset_index())
    some_unfinished = bool(per_task["unfinished"].any())
    if not some_unfinished:
        per_task = per_task.drop(columns="unfinished")
    per_task["method"] = pd.Categorical(per_task["method"], methods, ordered=True)
    per_task = per_task.sort_values(["task", "method"])
    write_table(per_task, out, prefix + "per_task")
    shown = per_task.assign(score=["–" if np.isnan(m) else f"{m:.1f}" if np.isnan(s) else f"{m:.1f} ± {s:.1f}"
                                   for m, s in zip(per_task["score"], per_task["score_std"])],
                            normalised=[fmt(v) for v in per_task["normalised"]]).drop(columns="score_std")
    unfinished_note = ("" if not some_unfinished else
                       " *unfinished*: how many of the method's runs of the task have not finished "
                       "(`--include-unfinished`: training, stopped or failed); the score of one is the mean over "
                       "what it has reached of its window, none before the window. The tables and figures include "
                       "such runs; the targets judge finished runs only, and wait for those still training or "
                       "stopped.")
    text.append("\n### Scores per task\n\nMean ± standard deviation over seeds of the raw score (no ± where "
                "there is one seed); mean normalised score." + unfinished_note + "\n\n" + md_table(shown))
    single = sorted({str(m) for m, n in zip(per_task["method"], per_task["seeds"]) if n == 1})
    if single:
        text.append("\n**One seed:** " + ", ".join(f"`{m}`" for m in single) + " ha" + ("s" if len(single) == 1 else "ve")
                    + " one seed on some task; an interval over one seed is a point, so no difference involving "
                    "those runs is supported by this report, whatever the intervals below show.")
    return text


def _targets(s: _Suite) -> list[str]:
    runs, tasks, methods, out, prefix, opts = s.runs, s.tasks, s.methods, s.out, s.prefix, s.opts
    text = []
    targets = target_rows(runs, tasks, methods, reps=opts.reps, seed=opts.seed)
    if not targets.empty:
        write_table(targets, out, prefix + "targets")
        shown = targets.assign(value=[fmt(v, None if np.isnan(lo) else lo, hi, digits=1)
                                      for v, lo, hi in zip(targets["value"], targets["lower"], targets["upper"])],
                               per_seed=[", ".join(fmt(v, digits=1) for v in vs) for vs in targets["per_seed"]],
                               passed=["NOT JUDGED" if p is None else "PASS" if p else "FAIL"
                                       for p in targets["passed"]]).drop(columns=["lower", "upper", "fail_if_equal",
                                                                                 "episode_se", "match"])
        rates = targets["fail_if_equal"].to_numpy(np.float64)
        ratios = np.abs(targets["value"].to_numpy(np.float64)) / targets["episode_se"].to_numpy(np.float64)
        if not np.isnan(ratios).all():
            shown.insert(len(shown.columns) - 1, "difference / episode SE",
                         ["–" if np.isnan(r) else f"{r:.1f}" for r in ratios])
        if not np.isnan(rates).all():  # only match targets have one, and only when judged
            shown.insert(len(shown.columns) - 1, "FAIL if equal",
                         ["–" if np.isnan(r) else f"{100 * r:.0f}%" for r in rates])
        unjudged = targets[targets["passed"].isna() & targets["match"].notna()]
        # a matched method with no runs of a task at all: say where they come from
        absent: dict[str, list[str]] = {}
        for task, m in zip(unjudged["task"], unjudged["match"]):
            if not any(r.method == m and r.task == task for r in runs):
                absent.setdefault(m, []).append(task)
        note = (" A comparison needs at least 2 seeds with a score on each side." if len(unjudged) else "")
        if targets["target"].str.contains("waits for").any():
            note += " A target with a run still training on either side waits for it (not judged)."
        for m, where in sorted(absent.items()):
            note += (f" No runs of `{m}` were given for {', '.join(sorted(where))} ("
                     + ("the official agent's reference runs: `--compare official`; or " if m == "official" else "")
                     + "runs from a score file: `--scores FILE`).")
        if not np.isnan(rates).all():
            note += (" *FAIL if equal*: how often the interval leaves out 0 when the two methods are the same, at "
                     "these numbers of seeds (simulated: both sides' scores from one normal distribution, "
                     "`stats.false_exclusion_rate`); the percentile bootstrap over a few seeds is too narrow, so a "
                     "FAIL where this is well above 5% is weak evidence on its own and a PASS says only that "
                     "the difference is within the interval.")
        if not np.isnan(ratios).all():
            note += (" *difference / episode SE*: the size of the difference over its standard error from the "
                     "episodes' own noise alone (each run's score is a mean of its window's returns; "
                     "`stats.episode_noise_se`), what it would scatter by if the seeds did not differ at all. Below "
                     "about 2 the difference is within that noise, however narrow the interval over a few seeds "
                     "came out, so a FAIL there is no evidence of a difference; above it, the seeds' own spread "
                     "(the interval) decides.")
        text.append("\n### Targets\n\nThe suite's acceptance targets, judged on each method's runs; a "
                    "difference is shown as value [95% bootstrap interval over seeds]." + note + "\n\n"
                    + md_table(shown))
    return text


def _aggregates(s: _Suite, matrices: dict) -> list[str]:
    tasks, methods, out, prefix, opts = s.tasks, s.methods, s.out, s.prefix, s.opts
    text = []
    estimates = stats.interval_estimates(matrices, reps=opts.reps, seed=opts.seed)
    agg_rows = [{"method": m, "metric": a, "value": v, "lower": lo, "upper": hi}
                for m, est in estimates.items() for a, (v, lo, hi) in est.items()]
    aggregates = pd.DataFrame(agg_rows)
    write_table(aggregates, out, prefix + "aggregates")
    wide = pd.DataFrame([{"method": m, **{a: fmt(*estimates[m][a]) for a in stats.AGGREGATES}} for m in methods])
    fig = figures.interval_estimates(aggregates, out, prefix + "aggregates", colours=s.colours)
    coverage = {m: tuple(t for t, k in zip(tasks, ~np.isnan(matrices[m]).all(0)) if k) for m in methods}
    uneven = ("" if len(set(coverage.values())) <= 1 else " Methods were run on different tasks, so each "
              "aggregate is over its own: " + "; ".join(f"`{m}` {len(c)} of {len(tasks)}" for m, c in coverage.items())
              + " (the ablation below compares on shared tasks only).")
    text.append("\n### Aggregate scores\n\nPoint estimate [95% interval] over tasks and seeds "
                "(optimality gap: lower is better)." + uneven + "\n\n" + md_table(wide) + f"\n\n![aggregates]({fig})"
                + s.caption("IQM, mean, median and optimality gap of the normalised scores over tasks and seeds."))
    return text


def _ablation(s: _Suite, matrices: dict) -> list[str]:
    """Each variant against its full agent: ``off-x`` against ``full``, and ``off-x@p`` against
    ``full@p``, the agent with the same plug-ins loaded (one section per full agent)."""
    text = []
    families: dict[str, list[str]] = {}
    for m in s.methods:
        if m.startswith("off-"):
            families.setdefault(baseline_variant(m), []).append(m)
    for full, variants in families.items():
        text += _ablation_against(s, matrices, full, variants)
    return text


def _ablation_against(s: _Suite, matrices: dict, FULL: str, variants: list[str]) -> list[str]:  # noqa: N803
    tasks, out, opts = s.tasks, s.out, s.opts
    prefix = s.prefix + ("" if FULL == "full" else FULL.replace("@", "_at_") + "_")
    text = []
    if FULL in matrices and variants:
        delta_rows, prob_rows, task_rows, partial, compared = [], [], [], [], []
        for i, v in enumerate(variants):
            # A variant is compared with the full agent on the tasks both were run on, never with the
            # full agent's other tasks (an ablation of one task in a suite of several).
            shared = ~np.isnan(matrices[v]).all(0) & ~np.isnan(matrices[FULL]).all(0)
            if not shared.any():
                continue
            compared.append(v)
            if not shared.all():
                partial.append(f"`{v}` on {', '.join(t for t, k in zip(tasks, shared) if k)}")
            mv, mf = matrices[v][:, shared], matrices[FULL][:, shared]
            diffs = stats.difference_intervals(mv, mf, reps=opts.reps, seed=opts.seed + i + 1)
            for a, (d, lo, hi) in diffs.items():
                delta_rows.append({"method": v, "metric": a, "delta": d, "lower": lo, "upper": hi})
            p, lo, hi = stats.improvement_interval(mv, mf, reps=min(opts.reps, 2000), seed=opts.seed + 100 + i)
            prob_rows.append({"x": v, "y": FULL, "probability": p, "lower": lo, "upper": hi})
            shared_tasks = [t for t, k in zip(tasks, shared) if k]
            for t, a, b in zip(shared_tasks, np.nanmean(mv, 0), np.nanmean(mf, 0)):
                task_rows.append({"task": t, "method": v, "full": b, "off": a, "delta": a - b})
        variants = compared
    if FULL in matrices and variants:
        deltas = pd.DataFrame(delta_rows)
        probs = pd.DataFrame(prob_rows)
        per_task_delta = pd.DataFrame(task_rows)
        write_table(deltas, out, prefix + "ablation")
        write_table(probs, out, prefix + "probability_of_improvement")
        write_table(per_task_delta, out, prefix + "ablation_per_task")
        unsupported = [v for v in variants if s.one_seed([v, FULL])]
        reference = {a: float(f(matrices[FULL][:, ~np.isnan(matrices[FULL]).all(0)]))
                     for a, f in stats.AGGREGATES.items()}
        fig = figures.ablation_chart(deltas, out, prefix + "ablation", reference=reference, unsupported=unsupported)
        wide = pd.DataFrame([{"variant": v, **{a: fmt(*(lambda r: (r["delta"], r["lower"], r["upper"]))(
            deltas[(deltas["method"] == v) & (deltas["metric"] == a)].iloc[0])) for a in stats.AGGREGATES}}
            for v in variants])
        pivot = per_task_delta.pivot(index="task", columns="method", values="delta").reset_index()
        pivot = pivot[["task"] + variants]
        pivot_shown = pivot.assign(**{v: [fmt(x) for x in pivot[v]] for v in variants})
        probs_shown = probs.assign(probability=[fmt(p, lo, hi) for p, lo, hi in zip(probs["probability"], probs["lower"], probs["upper"])])
        shared_note = (" Compared on the tasks both were run on: " + "; ".join(partial) + "." if partial else "")
        support = ("an interval that excludes 0 is a difference the seeds support" if not unsupported else
                   "an interval that excludes 0 is a difference the seeds support, except for "
                   + ", ".join(f"`{v}`" for v in unsupported) + ": with one seed (of it or of the full agent) on some "
                   "task its intervals are points, so this report supports no difference for it (its bars are grey)")
        heading = "the full agent" if FULL == "full" else f"the full agent with its plug-ins (`{FULL}`)"
        text.append(f"\n### Ablation: each technique switched off, versus {heading}\n\n"
                    "Change of each aggregate (variant − full) [95% interval]; " + support + "." + shared_note
                    + "\n\n" + md_table(wide) + f"\n\n![ablation]({fig})"
                    + s.caption("Change of each aggregate, variant − full, on the tasks both ran; the axis spans at "
                                "least ±5% of the full agent's value, so a small change looks small.", [FULL] + variants)
                    + "\n\n"
                    "Per task: mean normalised score of the variant minus that of the full agent.\n\n"
                    + md_table(pivot_shown) + "\n\nProbability that a run of the variant beats a run of the "
                    "full agent on the same task, averaged over tasks [95% interval]:\n\n"
                    + md_table(probs_shown[["x", "y", "probability"]]))
        fig = figures.improvement(probs, out, prefix + "probability_of_improvement")
        if fig:
            text.append(f"\n![probability of improvement]({fig})")
    return text


def _predictions(s: _Suite, per_run: int = 1) -> list[str]:
    """The world-model predictions `dreamer-bench predict` wrote into run folders: the first
    ``per_run`` episodes of each run that has them, copied beside the report."""
    runs = [r for r in s.own if r.predictions]
    if not runs:
        return []
    text = ["\n### World-model predictions\n\nOpen loop, from `dreamer-bench predict` (files in each run's "
            "`predictions/`): the model sees the first steps of a fresh episode, then imagines the rest under "
            "the actions taken. Images: rows true, imagined, |difference| (steps marked * were seen); vectors: "
            "true (solid) against imagined (dashed), the context shaded."]
    for r in sorted(runs, key=lambda r: (r.task, r.method, r.seed)):
        names = sorted(r.predictions)
        episodes = sorted({n.split("_")[1] for n in names})[:per_run]
        for name in names:
            if name.split("_")[1] not in episodes:
                continue
            target = f"{s.prefix}predictions_{r.method}_{r.task}_seed{r.seed}_{name}".replace(":", "_")
            (s.out / target).write_bytes(r.predictions[name])
            text.append(f"\n{r.task}, `{r.method}`, seed {r.seed} ({name}):\n\n![{r.task} predictions]({target})")
    return text


def _profiles(s: _Suite, matrices: dict) -> list[str]:
    methods, out, prefix, opts = s.methods, s.out, s.prefix, s.opts
    finite = np.concatenate([m[~np.isnan(m)] for m in matrices.values()]) if matrices else np.array([])
    if not finite.size:  # unfinished runs (--include-unfinished) not yet in their score window
        return ["\n### Performance profiles\n\nNo run has a score yet: none has reached its score window."]
    taus = np.linspace(min(0.0, finite.min()), max(1.0, finite.max()), 60)
    prof_rows = []
    for m in methods:
        point, lo, hi = stats.performance_profile(matrices[m], taus, reps=min(opts.reps, 2000), seed=opts.seed)
        prof_rows += [{"method": m, "tau": t, "fraction": p, "lower": a, "upper": b} for t, p, a, b in zip(taus, point, lo, hi)]
    profiles = pd.DataFrame(prof_rows)
    profiles.to_csv(out / f"{prefix}performance_profiles.csv", index=False)
    fig = figures.performance_profiles(profiles, out, prefix + "performance_profiles", colours=s.colours)
    return [f"\n### Performance profiles\n\n![performance profiles]({fig})"
            + s.caption("Fraction of runs (task × seed) with a normalised score above τ.")]


def _efficiency_and_curves(s: _Suite) -> list[str]:
    runs, tasks, methods, out, prefix, opts = s.runs, s.tasks, s.methods, s.out, s.prefix, s.opts
    text = []
    curves = curve_table([r for r in runs if r.task in tasks])
    eff_rows, cut = [], []
    for m in methods:
        for frac, sub in curves[curves["method"] == m].groupby("fraction"):
            if not sub["reached"].all():  # a run still training is not there yet: the point would average fewer runs
                cut.append(f"{m} from {frac:g}")
                break
            mat = score_matrices(sub.assign(score=sub["normalised"]), [m], tasks)[m]
            if np.isnan(mat).all():
                continue
            est = stats.interval_estimates({m: mat}, {"IQM": stats.aggregate_iqm}, reps=min(opts.reps, 2000),
                                           seed=opts.seed)[m]["IQM"]
            eff_rows.append({"method": m, "fraction": frac, "iqm": est[0], "lower": est[1], "upper": est[2]})
    efficiency = pd.DataFrame(eff_rows, columns=["method", "fraction", "iqm", "lower", "upper"])
    efficiency.to_csv(out / f"{prefix}sample_efficiency.csv", index=False)
    fig = figures.sample_efficiency(efficiency, out, prefix + "sample_efficiency", colours=s.colours)
    if fig:
        text.append(f"\n### Sample efficiency\n\nIQM normalised score of the window ending at each tenth of the "
                    f"budget, with 95% intervals.\n\n![sample efficiency]({fig})"
                    + s.caption("IQM of the normalised scores, each read in the window of the same width ending at a "
                                "tenth of the budget (the last point is the score)."
                                + (" A curve stops where a run still training has not come yet, so that every point "
                                   "averages the same runs (left out: " + "; ".join(cut) + " of the budget)." if cut else "")))
    episodes = pd.DataFrame([{"task": r.task, "method": r.method, "seed": r.seed, "env_steps": x, "return": y,
                              "budget": r.budget or max(r.xs)} for r in runs if r.task in tasks
                             for x, y in zip(r.xs, r.ys) if r.budget is None or x <= r.budget])
    fig = figures.learning_curves(episodes, out, prefix + "learning_curves", colours=s.colours, seed=opts.seed)
    if fig:
        episodes_word = "evaluation" if opts.episodes == "eval" else "training"
        text.append(f"\n### Learning curves\n\nEpisode returns binned over env steps; mean over seeds with a "
                    f"95% band.\n\n![learning curves]({fig})"
                    + f"\n\n*Raw {episodes_word} episode returns in 20 equal bins of the budget: each seed's mean in a "
                      f"bin (a thin line per seed where a method has at most {figures.SEED_LINES} on a task), then "
                      f"the mean over seeds with a 95% bootstrap band over seeds (a single seed has none); "
                      f"seeds: {s.seeds_text()}. The numbers drawn: `{fig.rsplit('.', 1)[0]}.csv` and "
                      f"`{fig.rsplit('.', 1)[0]}_seeds.csv`.*")
    return text
