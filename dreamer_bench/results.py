"""The results folder: its layout, and every file a run writes and the report reads.

    <results>/<suite>/<variant>/<task>/seed_<n>/
        config.json      the resolved configuration, its identity, versions, machine, git commit
        status.json      state (pending, running, done, failed), progress, error
        starts.jsonl     one line per start of training: counters, machine, versions, commit
        episodes.jsonl   one line per finished training episode
        metrics.jsonl    training metrics, periodically and at the end
        scores.json      the episodes in the official {task, method, seed, xs, ys} format

This module is the one owner of those files (the runner writes them, ``status`` and the report
read them) and of the official score-file format. Every file is written atomically: to a
temporary file in the same folder, flushed to disk and renamed over the old one, so a reader sees
the old or the new file, never half of one; starts.jsonl, whose lines are never rewritten, only
gains whole lines at its end. It imports nothing else of the package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

SCORE_KEYS = {"task", "method", "seed", "xs", "ys"}

# agent fields that do not change what a run means
IDENTITY_EXCLUDED = ("device", "compile")
PLUGIN_MARK = "@"  # joins a variant's name to the plug-ins its agent was built with: full@mine, off-x@mine


CONFIG_MARK = "#"  # the report's label for one of several configurations under one variant: off-x#3a9f0c


def baseline_variant(variant: str) -> str:
    """The full agent a variant is ablated against: ``full`` for ``off-x`` (and for ``off-x#h``, one
    of its configurations), ``full@p`` for ``off-x@p``."""
    _, mark, plugins = variant.partition(CONFIG_MARK)[0].partition(PLUGIN_MARK)
    return "full" + mark + plugins


# the agent's plug-in fields (agent/plugins.py): part of the identity when a run has plug-ins
PLUGIN_FIELDS = ("plugins", "plugin_settings", "plugin_sources")
# agent fields renamed since runs were recorded, under the names those runs recorded: a run's
# identity hashes them under the old name, so that existing runs keep their identity and resume
RENAMED_FIELDS = {"agc_clip": "agc", "latent_unimix": "unimix"}
# task fields that only say how a run is judged (scored, normalised, accepted), not what it does;
# a rerun may update them in config.json
EVALUATION_KEYS = ("score", "normalise", "refs", "target", "seeds")


# ------------------------------------------------------------------------------------------------
# atomic writes, tolerant reads

def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=_jsonable) + "\n")


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n" for r in rows))


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, tuple)):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: Path, default: Any = None) -> Any:
    """The parsed file, or ``default`` when it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def read_jsonl(path: Path) -> list[dict]:
    """All valid lines of a JSON-lines file (a file written atomically has no partial lines)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


# ------------------------------------------------------------------------------------------------
# layout

def writable(path: Path) -> bool:
    """Whether a folder exists and is writable, or could be made inside one that is: its nearest
    existing folder passes the permission check and really takes a file (created and removed at
    once; the permission bits alone pass for root everywhere, /proc and /sys included)."""
    probe = Path(path).absolute()
    while not os.path.exists(probe):  # (Path.exists raises where a parent may not be searched)
        probe = probe.parent
    if not (os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)):
        return False
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".dreamer-bench-probe-"):
            return True
    except OSError:
        return False


def safe_name(task: str) -> str:
    """Task names become folder names (entry points contain ':' and '.')."""
    return task.replace(":", "__").replace("/", "_")


def run_path(results: Path | str, suite: str, variant: str, task: str, seed: int) -> Path:
    return Path(results) / suite / variant / safe_name(task) / f"seed_{seed}"


def find_runs(results: Path) -> list[Path]:
    """Every run folder under a results folder (those holding a status or config file)."""
    results = Path(results)
    found = {p.parent for p in results.rglob("status.json")} | {p.parent for p in results.rglob("config.json")}
    return sorted(d for d in found if d.name.startswith("seed_"))


# ------------------------------------------------------------------------------------------------
# config.json: a run's identity

def identity_hash(task: dict, agent: dict, version: str | None) -> str:
    """The configuration shared by every seed of a (suite, variant, task): the report pools runs
    with the same hash. The seed is a run's coordinate, not part of its configuration."""
    agent = {RENAMED_FIELDS.get(k, k): v for k, v in agent.items() if k not in IDENTITY_EXCLUDED and k != "seed"
             and not (k in PLUGIN_FIELDS and not v)}  # runs without plug-ins keep the identity they had
    task = {k: v for k, v in task.items() if k not in EVALUATION_KEYS}
    blob = json.dumps({"task": task, "agent": agent, "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def read_config(run: Path) -> dict | None:
    """A run's config.json, or None when it is missing or not valid JSON."""
    return read_json(Path(run) / "config.json")


def write_config(run: Path, config: dict) -> None:
    atomic_write_json(Path(run) / "config.json", config)


# ------------------------------------------------------------------------------------------------
# status.json

def read_status(run: Path) -> dict:
    """A run's status, or {} when it is missing or corrupt."""
    return read_json(Path(run) / "status.json", default={}) or {}


def write_status(run: Path, **fields) -> dict:
    """Update some fields of a run's status (the others are kept) and stamp the time. Its state
    is pending, running, done or failed."""
    status = read_status(run)
    status.update(fields)
    status["updated"] = time.time()
    atomic_write_json(Path(run) / "status.json", status)
    return status


# ------------------------------------------------------------------------------------------------
# episodes, metrics and the score file

def read_episodes(run: Path) -> list[dict]:
    return read_jsonl(Path(run) / "episodes.jsonl")


def read_metrics(run: Path) -> list[dict]:
    return read_jsonl(Path(run) / "metrics.jsonl")


def read_starts(run: Path) -> list[dict]:
    """A run's starts.jsonl: one line per start of training, with the machine that trained it."""
    return read_jsonl(Path(run) / "starts.jsonl")


def add_start(run: Path, row: dict) -> None:
    """Append a start's line to starts.jsonl: one write of the whole line, flushed to disk. The
    earlier lines are never rewritten; a line a crash cut short is skipped by ``read_jsonl``, and
    the next one still begins on a line of its own."""
    path = Path(run) / "starts.jsonl"
    line = (json.dumps(row, sort_keys=True, default=_jsonable) + "\n").encode()
    with open(path, "a+b") as f:  # (appending: every write goes to the end)
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def score_record(task: str, method: str, seed: int, episodes: list[dict]) -> dict:
    """A run's training episodes in the official score format."""
    return {"task": task, "method": method, "seed": seed, "xs": [e["env_steps"] for e in episodes],
            "ys": [e["return"] for e in episodes]}


def write_logs(run: Path, episodes: list[dict], metrics: list[dict], record: dict) -> None:
    """A run's episodes, metrics and score file, each replaced atomically."""
    run = Path(run)
    atomic_write_jsonl(run / "episodes.jsonl", episodes)
    atomic_write_jsonl(run / "metrics.jsonl", metrics)
    atomic_write_json(run / "scores.json", [record])


def read_evaluation(run: Path) -> list[dict]:
    """A run's evaluation episodes (eval.jsonl; runner/evaluate.py)."""
    return read_jsonl(Path(run) / "eval.jsonl")


def write_evaluation(run: Path, rows: list[dict], record: dict) -> None:
    """eval.jsonl and eval_scores.json (the evaluation episodes in the official format), each
    replaced atomically."""
    atomic_write_jsonl(Path(run) / "eval.jsonl", rows)
    atomic_write_json(Path(run) / "eval_scores.json", [record])


def read_score_file(path: Path) -> list[dict]:
    """The records of an official score file (``.json`` or ``.json.gz``)."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    records = json.loads(raw)
    if not isinstance(records, list) or not all(isinstance(r, dict) and SCORE_KEYS <= set(r) for r in records):
        raise ValueError(f"{path} is not a list of {{task, method, seed, xs, ys}} records")
    for i, r in enumerate(records):
        problem = score_record_problem(r)
        if problem:
            raise ValueError(f"record {i} ({r.get('task')!r}, {r.get('method')!r}): {problem}")
    return records


def score_record_problem(r: dict) -> str | None:
    """What is wrong with one score record's values (None: nothing): task and method are strings,
    seed an integer, xs and ys lists of numbers of the same length."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(r["task"], str) or not isinstance(r["method"], str):
        return "task and method must be strings"
    seed = r["seed"]
    if not (isinstance(seed, int) and not isinstance(seed, bool) or isinstance(seed, float) and seed.is_integer()):
        return f"seed must be an integer, got {seed!r}"
    if not isinstance(r["xs"], list) or not isinstance(r["ys"], list):
        return "xs and ys must be lists"
    if len(r["xs"]) != len(r["ys"]):
        return f"xs and ys differ in length ({len(r['xs'])} and {len(r['ys'])})"
    bad = next((v for v in r["xs"] + r["ys"] if not number(v)), None)
    if bad is not None:
        return f"xs and ys must be numbers, got {bad!r}"
    return None


def write_score_file(path: Path, records: Iterable[dict]) -> None:
    """Write records in the official format (gzipped when the name ends in .gz), atomically."""
    rows = [{"task": r["task"], "method": r["method"], "seed": r["seed"], "xs": list(r["xs"]), "ys": list(r["ys"])}
            for r in records]
    data = json.dumps(rows).encode()
    atomic_write_bytes(Path(path), gzip.compress(data) if str(path).endswith(".gz") else data)
