"""Suite files → resolved tasks with budgets, protocols and normalisation references.

A suite is a YAML file: ``defaults`` for every task, and ``tasks`` with per-task overrides and
references. Suites ship in ``suites/`` (installed as ``dreamer_bench.suite_files``); a user adds
one by dropping a file there or by passing a path (``--suite my/suite.yaml``).

Task settings (``defaults`` or per task):
    steps          env steps per run (Atari: frames), the budget
    action_repeat  env steps per policy step
    train_ratio    replayed steps per policy step
    preset         agent size preset (size1m … size400m, debug)
    envs           parallel environments per run
    seeds          default number of seeds
    env            environment settings, passed to the adapter (merged over the defaults)
    set            agent configuration overrides, field=value (merged over the defaults)
    score          how a run's score is read from its episodes (see ``scoring``)
    normalise      how scores are normalised (see ``scoring``)
    refs           normalisation references of the task (random/human, random/max, …)
    target         optional acceptance target the report judges (see ``scoring.check_target``)
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import scoring
from .agent.config import PRESETS, ConfigError, parse_value
from .envs import EnvError, family

TASK_KEYS = ("steps", "action_repeat", "train_ratio", "preset", "envs", "seeds", "env", "set", "score",
             "normalise", "refs", "target")
MERGED_KEYS = ("env", "set", "refs")  # dicts merged key by key over the defaults
SUITE_KEYS = ("name", "description", "source", "defaults", "tasks")


class SuiteError(ValueError):
    """A suite that cannot be found or read."""


@dataclass(frozen=True)
class TaskSpec:
    suite: str
    task: str
    family: str
    steps: int
    action_repeat: int
    train_ratio: float
    preset: str
    envs: int
    seeds: int
    env: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    score: dict = field(default_factory=dict)
    normalise: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def normalised(self, score: float) -> float:
        return scoring.normalise(score, self.normalise, self.refs)


@dataclass
class Suite:
    name: str
    description: str
    path: Path
    tasks: dict[str, TaskSpec]
    source: str = ""

    def task(self, name: str) -> TaskSpec:
        if name not in self.tasks:
            raise SuiteError(f"unknown task {name!r} in suite {self.name}; valid: {', '.join(self.tasks)}")
        return self.tasks[name]

    def select(self, names: list[str] | None) -> list[TaskSpec]:
        if not names:
            return list(self.tasks.values())
        specs = [self.task(n) for n in names]
        twice = sorted({s.task for s in specs if sum(t.task == s.task for t in specs) > 1})
        if twice:
            raise SuiteError(f"--tasks names {', '.join(twice)} more than once")
        return specs


def suite_dirs() -> list[Path]:
    """Where suites are looked up by name: the installed suites, then ./suites of the cwd."""
    dirs = []
    try:
        from importlib import resources

        dirs.append(Path(str(resources.files("dreamer_bench.suite_files"))))
    except (ModuleNotFoundError, TypeError):
        pass
    repo = Path(__file__).resolve().parents[1] / "suites"
    for d in (repo, Path.cwd() / "suites"):
        if d.is_dir() and all(d.resolve() != x.resolve() for x in dirs):
            dirs.append(d)
    return dirs


def available() -> dict[str, Path]:
    """Suite name → file, over ``suite_dirs`` (earlier directories win)."""
    found: dict[str, Path] = {}
    for d in suite_dirs():
        for p in sorted(d.glob("*.y*ml")):
            found.setdefault(p.stem, p)
    return found


def find(name_or_path: str) -> Path:
    p = Path(name_or_path)
    # A results folder named like a suite ("learning/") must not shadow the suite: only a file
    # or something spelled as a path is read as one.
    if p.suffix in (".yaml", ".yml") or p.is_file() or "/" in name_or_path:
        if not p.is_file():
            raise SuiteError(f"suite file {name_or_path!r} does not exist")
        return p
    suites = available()
    if name_or_path not in suites:
        raise SuiteError(f"unknown suite {name_or_path!r}; valid: {', '.join(suites) or '(none found)'}")
    return suites[name_or_path]


def load(name_or_path: str) -> Suite:
    path = find(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SuiteError(f"cannot read suite {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SuiteError(f"suite {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict) or "tasks" not in raw:
        raise SuiteError(f"suite {path} must be a mapping with 'tasks'")
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        raise SuiteError(f"suite {path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SUITE_KEYS)}")
    name = str(raw.get("name", path.stem))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:  # it names a folder under --results
        raise SuiteError(f"suite {path}: name {name!r} must start with a letter or digit and hold only letters, "
                         "digits, '_', '-' and '.' (it names the suite's folder under --results)")
    defaults = raw.get("defaults") or {}
    _check_keys(defaults, f"suite {name} defaults")
    tasks = {}
    for task, overrides in (raw["tasks"] or {}).items():
        overrides = overrides or {}
        _check_keys(overrides, f"suite {name} task {task}")
        tasks[task] = _resolve(name, str(task), defaults, overrides)
    if not tasks:
        raise SuiteError(f"suite {name} has no tasks")
    return Suite(name, str(raw.get("description", "")).strip(), path, tasks, str(raw.get("source", "")).strip())


def _check_keys(d: Any, where: str) -> None:
    if not isinstance(d, dict):
        raise SuiteError(f"{where} must be a mapping")
    unknown = sorted(set(d) - set(TASK_KEYS))
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(TASK_KEYS)}")


def _is_integer(value) -> bool:
    """A whole number as YAML gives it: an int, or a float such as 1e5 with no fraction."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _resolve(suite: str, task: str, defaults: dict, overrides: dict) -> TaskSpec:
    merged = copy.deepcopy(defaults)
    for k, v in overrides.items():
        if k in MERGED_KEYS and isinstance(v, dict):
            merged[k] = {**(merged.get(k) or {}), **v}
        else:
            merged[k] = copy.deepcopy(v)
    try:
        fam = family(task)
    except EnvError as e:
        raise SuiteError(f"suite {suite}: {e}") from None
    missing = [k for k in ("steps", "train_ratio", "preset") if k not in merged]
    if missing:
        raise SuiteError(f"suite {suite} task {task}: missing {', '.join(missing)}")
    if merged["preset"] not in PRESETS:
        raise SuiteError(f"suite {suite} task {task}: unknown preset {merged['preset']!r}; valid: {', '.join(PRESETS)}")
    # YAML reads an unquoted `off` key as the boolean False
    if any(k == "off" or k is False for k in (merged.get("set") or {})):
        raise SuiteError(f"suite {suite} task {task}: `set: {{off: …}}` is not allowed; techniques are switched "
                         f"off with `dreamer-bench ablate --off NAME`, which names the variant")
    for key in ("steps", "action_repeat", "envs", "seeds"):
        if key in merged and not _is_integer(merged[key]):
            raise SuiteError(f"suite {suite} task {task}: {key} must be a whole number, got {merged[key]!r}")
    try:
        ratio = float(merged["train_ratio"])
    except (TypeError, ValueError):
        ratio = math.nan
    if not (math.isfinite(ratio) and ratio > 0):
        raise SuiteError(f"suite {suite} task {task}: train_ratio must be a finite number > 0, "
                         f"got {merged['train_ratio']!r}")
    for key in ("device", "seed"):
        if key in (merged.get("set") or {}):
            raise SuiteError(f"suite {suite} task {task}: `set: {{{key}: …}}` would be overridden by the runner; "
                             f"use --{'device' if key == 'device' else 'seeds'}")
    spec = TaskSpec(
        suite=suite, task=task, family=fam,
        steps=int(merged["steps"]), action_repeat=int(merged.get("action_repeat", 1)),
        train_ratio=float(merged["train_ratio"]), preset=str(merged["preset"]),
        envs=int(merged.get("envs", 1)), seeds=int(merged.get("seeds", 1)),
        env=dict(merged.get("env") or {}), set={k: str(v) for k, v in (merged.get("set") or {}).items()},
        score=dict(merged.get("score") or scoring.default_score(fam)),
        normalise=dict(merged.get("normalise") or scoring.default_normalise(fam)),
        refs=dict(merged.get("refs") or {}),
        target=dict(merged.get("target") or {}),
    )
    for key in ("steps", "action_repeat", "envs", "seeds"):
        if getattr(spec, key) < 1:
            raise SuiteError(f"suite {suite} task {task}: {key} must be ≥ 1")
    if spec.train_ratio <= 0:
        raise SuiteError(f"suite {suite} task {task}: train_ratio must be > 0")
    for name, value in spec.set.items():
        try:
            parse_value(name, value)
        except ConfigError as e:
            raise SuiteError(f"suite {suite} task {task}: {e}") from None
    try:
        if spec.target:
            scoring.check_target(spec.target)
        scoring.check(spec.score, spec.normalise, spec.refs)
    except ValueError as e:
        raise SuiteError(f"suite {suite} task {task}: {e}") from None
    return spec
