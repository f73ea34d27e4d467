"""Runs in: a results directory, official score files, the shipped published runs.

The score file (``{task, method, seed, xs, ys}``, a JSON list, optionally gzipped) is the contract
between the runner and the report: the report reads runs made by anyone. A run of a results
directory adds its configuration (budget, score rule, normalisation references) and state.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..results import (CONFIG_MARK, EVALUATION_KEYS, find_runs, identity_hash, read_config, read_episodes, read_json, read_score_file,
                       read_starts, read_status)

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
PUBLISHED = {  # --compare name → files, by suite family
    "dreamerv3": {"atari": "atari100k-dreamerv3.json.gz", "dmc_vector": "dmc_proprio-dreamerv3.json.gz",
                  "dmc_image": "dmc_vision-dreamerv3.json.gz"},
}


# --compare official: the reference runs of the official agent (danijar/dreamerv3 at e3f0224) made
# by tools/official/reference_runs.sh at a suite's own settings, per suite (published/SOURCE.md)
OFFICIAL_REFERENCE = {"learning": "learning-official.json.gz"}
COMPARE_NAMES = (*PUBLISHED, "official")


class ReportError(ValueError):
    """Nothing to report (missing or empty input)."""


@dataclass
class RunRecord:
    suite: str
    task: str
    method: str  # the variant, or the published method's label
    seed: int
    xs: list[float]
    ys: list[float]
    # "done"; with --include-unfinished also the runner's other states ("running", "pending": queued
    # or stopped, "failed") or "unfinished" (a score-file record still training): drawn, not judged
    state: str = "done"
    budget: float | None = None
    task_settings: dict = field(default_factory=dict)  # steps, score, normalise, refs, family, env…
    achievements: list[dict] | None = None
    identity: str | None = None
    source: str = "results"  # results | published:<file name> | file
    # the agent settings that differ from the preset, as the runner recorded them (config.json)
    beyond_preset: dict = field(default_factory=dict)
    # `dreamer-bench predict`'s figures in the run's predictions/ folder: file name → PNG bytes
    predictions: dict = field(default_factory=dict)
    # the machines that trained the run (starts.jsonl; CPU in words, and the GPU where one was used)
    machines: list = field(default_factory=list)


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def is_archive(path: Path) -> bool:
    return str(path).endswith(ARCHIVE_SUFFIXES)


@contextlib.contextmanager
def opened_results(path: Path):
    """A results folder to read: ``path`` itself, or a ``.tar.gz`` of one (the compact form of the
    committed evidence, tools/evidence/pack.py) unpacked into a temporary folder for the duration."""
    path = Path(path)
    if not is_archive(path):
        yield path
        return
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dreamer-bench-report-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.isfile() and not m.name.startswith(("/", ".."))
                           and ".." not in Path(m.name).parts]
                tar.extractall(tmp, members=members, filter="data")
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ReportError(f"{path} is not a readable .tar.gz of a results folder ({type(e).__name__}: {e})")
        yield Path(tmp)


EPISODE_FILES = {"train": "scores.json", "eval": "eval_scores.json"}  # --episodes → the file a run wrote


CRAFTER_EVAL = "Crafter, whose score needs the achievements that evaluation episodes do not record"


def load_results(results: Path, include_unfinished: bool = False, episodes: str = "train"
                 ) -> tuple[list[RunRecord], list[str], dict]:
    """Every run under a results directory, with its training episodes (``episodes="train"``,
    scores.json) or its evaluation episodes ("eval", eval_scores.json). Returns the runs,
    warnings (corrupt or truncated files, skipped with their names) and counts of runs left out
    (unfinished, by state; "no evaluation" for runs without evaluation episodes)."""
    name = EPISODE_FILES[episodes]
    results = Path(results)
    if not results.is_dir():
        raise ReportError(f"results directory {results} does not exist")
    runs, notes, left_out = [], [], {}
    for d in find_runs(results):
        config = read_config(d)
        status = read_status(d)
        scores = read_json(d / name)
        state = status.get("state", "pending")
        if config is None:
            if state == "pending":  # queued by a grid, not started: nothing to read yet
                left_out[state] = left_out.get(state, 0) + 1
            else:
                notes.append(f"skipped {d}: config.json is missing or corrupt")
            continue
        if state != "done" and not include_unfinished:
            left_out[state] = left_out.get(state, 0) + 1
            continue
        if not (isinstance(scores, list) and scores and {"xs", "ys"} <= set(scores[0])):
            if (d / name).exists():
                notes.append(f"skipped {d / name}: truncated or corrupt")
                continue
            if episodes == "eval":  # a run made without --eval-every
                left_out["without evaluation episodes"] = left_out.get("without evaluation episodes", 0) + 1
                continue
            if state == "done":
                notes.append(f"skipped {d}: scores.json is missing")
                continue
            # still training and no episode logged yet (--include-unfinished): counted, drawn as nothing,
            # and a target of its task waits for it
            scores = [{"task": config.get("run", {}).get("task", d.parts[-2]),
                       "method": config.get("run", {}).get("variant", d.parts[-3]), "seed": int(d.name[5:]),
                       "xs": [], "ys": []}]
        record = scores[0]
        if len(record["xs"]) != len(record["ys"]):
            notes.append(f"skipped {d / name}: xs and ys differ in length")
            continue
        task = config.get("task", {})
        achievements = None
        if task.get("family") == "crafter":
            if episodes == "eval":  # the score is a rate over achievements, which eval.jsonl does not record
                left_out[CRAFTER_EVAL] = left_out.get(CRAFTER_EVAL, 0) + 1
                continue
            achievements = [e.get("achievements", {}) for e in read_episodes(d)]
        run = config.get("run", {})
        identity = identity_hash(task, config.get("agent", {}), config.get("versions", {}).get("dreamer_bench"))
        runs.append(RunRecord(
            suite=run.get("suite", d.parts[-4]), task=record["task"], method=record["method"], seed=int(record["seed"]),
            xs=[float(x) for x in record["xs"]], ys=[float(y) for y in record["ys"]], state=state,
            budget=float(task.get("steps", 0)) or None, task_settings=task, achievements=achievements,
            identity=identity, beyond_preset=config.get("beyond_preset", {}),
            predictions={f.name: f.read_bytes() for f in sorted((d / "predictions").glob("episode_*.png"))},
            machines=trained_on(d, config)))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return runs, notes, left_out


UNRECORDED = "not recorded"  # a part of a run's training whose machine no file names


def machine_words(record: dict) -> str | None:
    """A machine record (config.json's or a starts.jsonl line) in words: the CPU, and the GPU
    where the run trained on one; None where it names no CPU."""
    cpu = record.get("cpu")
    gpu = record.get("gpu") if str(record.get("device", "cpu")).startswith("cuda") else None
    return f"{cpu} with {gpu}" if cpu and gpu else cpu


def trained_on(d: Path, config: dict) -> list[str]:
    """The machines that trained a run, in order, each once. Its starts.jsonl names one per start;
    where that file begins with a resume (or is missing), the run began before it was kept, and
    config.json's record, made at the first start, names the first machine, or ``UNRECORDED``
    where it names no CPU (runs made before runs recorded it)."""
    starts = [row for row in read_starts(d) if isinstance(row, dict)]
    words = [machine_words(row) or UNRECORDED for row in starts]
    if not starts or starts[0].get("env_steps") or starts[0].get("updates"):
        words.insert(0, machine_words(config.get("machine") or {}) or UNRECORDED)
    return list(dict.fromkeys(words))


JUDGING_KEYS = tuple(k for k in EVALUATION_KEYS if k != "seeds")  # the task settings a report judges by


def mixed_rules(runs: list[RunRecord]) -> list[str]:
    """Tasks whose runs of yours record different judging rules (a suite file changed between the
    runs' last invocations: the runner brings a run's rules up to date only when it is invoked
    again). Each run is scored by its own, so the report says where that pools unlike scores."""
    rules: dict[tuple, dict[str, list]] = {}
    for r in runs:
        if r.source == "results":
            blob = json.dumps({k: r.task_settings.get(k) for k in JUDGING_KEYS}, sort_keys=True, default=str)
            rules.setdefault((r.suite, r.task), {}).setdefault(blob, []).append(r)
    out = []
    for (suite, task), by_rule in sorted(rules.items()):
        if len(by_rule) > 1:
            keys = [k for k in JUDGING_KEYS if len({json.dumps(rs[0].task_settings.get(k), sort_keys=True, default=str)
                                                     for rs in by_rule.values()}) > 1]
            groups = "; ".join(", ".join(f"{r.method} seed {r.seed}" for r in rs) for rs in by_rule.values())
            out.append(f"{suite}/{task}: its runs record different {', '.join(keys)} ({groups}), and each is scored "
                       f"by its own; `dreamer-bench run` with the suite again brings them all to the suite file's")
    return out


def separate_configurations(runs: list[RunRecord]) -> list[RunRecord]:
    """Never pool runs of different configurations under one label: where one (suite, variant,
    task) holds several configuration identities, each gets its own label ``variant#hash``."""
    ids: dict[tuple, set] = {}
    for r in runs:
        ids.setdefault((r.suite, r.method, r.task), set()).add(r.identity)
    for r in runs:
        if len(ids[(r.suite, r.method, r.task)]) > 1:
            r.method = f"{r.method}{CONFIG_MARK}{(r.identity or 'unknown')[:6]}"
    return runs


# What made each published file (dreamer_bench/report/published/SOURCE.md; the official
# configurations at the commits that added them): stated in the report beside the curves
PUBLISHED_PROTOCOL = {
    "atari100k-dreamerv3.json.gz": "2024 runs: episodes capped at 100,000 frames, the full 18-action set, "
                                   "no no-ops, the official frame-pooling bug of the time",
    "dmc_proprio-dreamerv3.json.gz": "2023 runs of the 2023 agent: its \"small\" model (deter 512, "
                                     "units 512, 2-layer MLPs), the continuous actor trained by "
                                     "backpropagation, 4 environments, action repeat 2, train ratio 512",
    "dmc_vision-dreamerv3.json.gz": "2024 runs: 8 parallel environments at action repeat 2",
}


def published_file(name: str, family: str, obs: str) -> Path | None:
    files = PUBLISHED.get(name)
    if files is None:
        raise ReportError(f"unknown published baseline {name!r}; valid: {', '.join(PUBLISHED)}")
    key = "atari" if family == "atari" else f"dmc_{obs}" if family == "dmc" else None
    return PUBLISHED_DIR / files[key] if key in files else None


def load_published(name: str, like: list[RunRecord]) -> list[RunRecord]:
    """The published runs of the tasks in ``like``, with those tasks' settings (score rule,
    references and the user's budget), labelled ``<name> (published)``."""
    settings: dict[tuple, RunRecord] = {}
    for r in like:
        settings.setdefault((r.suite, r.task), r)
    cache: dict[Path, list[dict]] = {}
    out = []
    for (suite, task), r in settings.items():
        family = r.task_settings.get("family", "")
        obs = "image" if r.task_settings.get("env", {}).get("obs") == "image" else "vector"
        path = published_file(name, family, obs)
        if path is None:
            continue
        if path not in cache:
            cache[path] = read_score_file(path)
        aliases = {task, task.replace("ball_in_cup_catch", "cup_catch"), task.replace("cup_catch", "ball_in_cup_catch")}
        width = float((r.task_settings.get("score") or {}).get("width", 0) or 0)
        for rec in cache[path]:
            if rec["task"] in aliases:
                xs = [float(x) for x in rec["xs"]]
                budget = r.budget
                # the DMC proprio file's 10K bins stop at 490K of 500K: a run with no point in the
                # last window whose last point is within one window of the budget is scored on the
                # window ending at that point (its last bin)
                if (budget and xs and width and budget - width <= xs[-1] < budget
                        and not any(budget - width < x <= budget for x in xs)):
                    budget = xs[-1]
                out.append(RunRecord(suite=suite, task=task, method=f"{name} (published)", seed=int(rec["seed"]),
                                     xs=xs, ys=[float(y) for y in rec["ys"]],
                                     budget=budget, task_settings=r.task_settings,
                                     source=f"published:{path.name}"))
    return out


def published_budgets(name: str, like: list[RunRecord]) -> list[str]:
    """Tasks where your runs trained to different budgets: load_published scores the published
    runs at the budget of the first run of the task, so the report says which that is."""
    first: dict[tuple, RunRecord] = {}
    budgets: dict[tuple, dict] = {}
    for r in like:
        first.setdefault((r.suite, r.task), r)
        budgets.setdefault((r.suite, r.task), {}).setdefault(r.budget, set()).add(r.method)
    steps = lambda b: "an unrecorded budget" if b is None else f"{b:,.0f}"  # noqa: E731
    out = []
    for key, by_budget in sorted(budgets.items(), key=lambda kv: tuple(map(str, kv[0]))):
        if len(by_budget) > 1:
            r = first[key]
            others = "; ".join(f"{', '.join(sorted(ms))} at {steps(b)}" for b, ms in by_budget.items() if b != r.budget)
            out.append(f"{name} (published) runs of {key[1]} are scored at {steps(r.budget)} env steps, the budget "
                       f"of {r.method}'s runs; your other runs of it trained to other budgets ({others})")
    return out


def published_alone(name: str, suites: list[str], include_unfinished: bool = False) -> list[RunRecord]:
    """The published runs of every task of ``suites`` that the published files cover, scored by
    the suite's own settings (score rule, references, budget): the reference a user sees before
    training anything."""
    from ..suites import SuiteError, load

    like = []
    for suite_name in suites:
        try:
            suite = load(suite_name)
        except SuiteError as e:
            raise ReportError(str(e)) from None
        for spec in suite.select([]):
            like.append(RunRecord(suite=suite.name, task=spec.task, method="", seed=0, xs=[], ys=[],
                                  budget=float(spec.steps), task_settings=spec.to_dict()))
    if name == "official":
        runs, _ = load_official(like, include_unfinished)  # the suite's own settings: the official runs'
        if not runs:
            raise ReportError(f"the official reference runs cover no task of {', '.join(suites)}; they are "
                              f"made at the settings of the suite(s) {', '.join(OFFICIAL_REFERENCE)}")
        return runs
    runs = load_published(name, like)
    if not runs:
        raise ReportError(f"the published {name} runs cover no task of {', '.join(suites)}; they cover "
                          f"Atari 100k and DMC proprio/vision tasks (suites atari100k, dmc_proprio, dmc_vision)")
    return runs


# the settings a user's run must share with the official runs to be judged against them
OFFICIAL_SETTINGS = ("steps", "action_repeat", "train_ratio", "preset", "envs")


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _differences(mine: dict, theirs: dict) -> list[str]:
    """Where settings differ from those the official reference runs were made at
    (``OFFICIAL_SETTINGS`` that ``theirs`` records), as ``"key: yours ≠ official"``."""
    return [f"{k}: {mine.get(k)} ≠ {theirs[k]}" for k in OFFICIAL_SETTINGS
            if k in theirs and not _same(mine.get(k), theirs[k])]


def settings_differ(run: RunRecord, official: RunRecord) -> list[str]:
    """Where a run's settings (its budget as ``steps``) differ from an official reference run's."""
    return _differences({**run.task_settings, "steps": run.budget}, {**official.task_settings, "steps": official.budget})


def load_official(like: list[RunRecord], include_unfinished: bool = False) -> tuple[list[RunRecord], list[str]]:
    """The official agent's reference runs of the tasks in ``like`` whose suite has them
    (``OFFICIAL_REFERENCE``), method ``official``, scored with those tasks' settings; those still
    training only with ``include_unfinished``. A task is compared only where some run of ``like``
    has the official runs' settings (``OFFICIAL_SETTINGS``: budget, action repeat, train ratio,
    preset, environments); the others are returned as ``"task (key: yours ≠ official)"``."""
    out, differ = [], []
    for suite in sorted({r.suite for r in like} & set(OFFICIAL_REFERENCE)):
        path = PUBLISHED_DIR / OFFICIAL_REFERENCE[suite]
        try:
            records = read_score_file(path)
        except (OSError, ValueError) as e:
            raise ReportError(f"--compare official: cannot read {path} ({e}); reinstall dreamer-bench") from None
        mine: dict[str, list[dict]] = {}
        for r in like:
            if r.suite == suite:
                mine.setdefault(r.task, []).append({**r.task_settings, "steps": r.budget})
        for task, variants in sorted(mine.items()):
            theirs = [rec for rec in records if rec["task"] == task]
            if not theirs:
                continue
            ref = theirs[0].get("settings") or {}
            settings = next((v for v in variants if not _differences(v, ref)), None)
            if settings is None:
                differ.append(f"{task} (" + ", ".join(_differences(variants[0], ref)) + ")")
                continue
            for rec in theirs:
                if rec.get("finished") is False and not include_unfinished:
                    continue
                out.append(RunRecord(suite=suite, task=task, method="official", seed=int(rec["seed"]),
                                     xs=[float(x) for x in rec["xs"]], ys=[float(y) for y in rec["ys"]],
                                     state=_state(rec), budget=float(settings["steps"]), task_settings=settings,
                                     source=f"official:{path.name}",
                                     machines=[str(m) for m in rec.get("machines") or []] or [UNRECORDED]))
    return out, differ


def _state(rec: dict) -> str:
    """A score-file record's run state: ``"unfinished"`` where the record says it is still training
    (``"finished": false``), else ``"done"`` (a file without the mark holds finished runs)."""
    return "unfinished" if rec.get("finished") is False else "done"


def records_from_score_file(path: Path, suite_settings: dict[str, dict], suite: str, budget: float | None = None,
                            include_unfinished: bool = False) -> list[RunRecord]:
    """Runs of any official score file, scored with the settings of a suite's tasks. A record
    marked ``"finished": false`` (a reference run still training, tools/official/collect.py) is
    left out unless ``include_unfinished``, as the user's unfinished runs are."""
    out = []
    for rec in read_score_file(path):
        task = suite_settings.get(rec["task"])
        if task is None or (rec.get("finished") is False and not include_unfinished):
            continue
        out.append(RunRecord(suite=suite, task=rec["task"], method=str(rec["method"]), seed=int(rec["seed"]),
                             xs=[float(x) for x in rec["xs"]], ys=[float(y) for y in rec["ys"]], state=_state(rec),
                             budget=budget or float(task["steps"]), task_settings=task, source="file"))
    return out


def as_score_records(runs: Iterable[RunRecord]) -> list[dict[str, Any]]:
    return [{"task": r.task, "method": r.method, "seed": r.seed, "xs": r.xs, "ys": r.ys} for r in runs]
