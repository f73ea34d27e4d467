"""Live metrics: the rows a run appends to metrics.jsonl and episodes.jsonl, sent on to TensorBoard
and Weights & Biases as well (``--log tensorboard``, ``--log wandb``). JSONL stays the record;
these are views of it, under the same names:

- every key of a metrics row (losses, entropies, return scale, updates/s, counters) is a scalar at
  step ``env_steps`` with the row's wall time; every episode sends ``return`` and ``length`` at the
  env step it ended on, every evaluation episode (``--eval-every``) ``eval/return`` and
  ``eval/length`` at the env step of its round.
- the run's resolved settings (config.json's run, task and agent sections) are its hyperparameters;
  suite/variant/task/seed_n its name, and suite, variant, task and seed_n its tags.

TensorBoard's event files live in ``<run>/tensorboard/``. A resumed run restarts its event file at
the checkpoint's env step (``purge_step``): TensorBoard hides what the interrupted process logged
after it, which the resumed run logs again. W&B writes ``<run>/wandb/``, offline unless
``WANDB_MODE`` says otherwise (``WANDB_PROJECT`` names the project, default dreamer-bench), and a
resumed run continues the same W&B run id; W&B cannot hide rows, so the few logged after the last
checkpoint of an interrupted run appear twice there (the JSONL files never hold duplicates).
``live.json`` in the run folder keeps the W&B id and how many rows each logger has sent, so that a
logger added to an existing run first receives the run's history.

Logger settings are not part of a run's identity: adding or dropping ``--log`` resumes the run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import secrets
import struct
from pathlib import Path

from ..results import atomic_write_json

# logger name → (the module it needs, the package extra that installs it)
LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}


def check_loggers(names) -> tuple[str, ...]:
    """The loggers asked for, checked: a ValueError with one line for an unknown one or one whose
    library is not installed."""
    out = []
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"unknown logger {name!r} for --log; valid: {', '.join(LOGGERS)} "
                             f"(metrics.jsonl is always written)")
        module, extra = LOGGERS[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ValueError:  # a module that sys.modules holds as None (blocked)
            found = False
        if not found:
            raise ValueError(f"--log {name} needs the {extra} extra: pip install 'dreamer-bench[{extra}]'")
        if name not in out:
            out.append(name)
    return tuple(out)


def hyperparameters(config: dict) -> dict:
    """config.json's run, task and agent sections flattened to ``section.key`` → a number, a bool
    or a string (lists, dicts and None as JSON), as TensorBoard's hparams want them."""
    flat = {}
    for section in ("run", "task", "agent"):
        for key, value in sorted(config.get(section, {}).items()):
            if isinstance(value, (bool, int, float, str)):
                flat[f"{section}.{key}"] = value
            else:
                flat[f"{section}.{key}"] = json.dumps(value, sort_keys=True)
    return flat


def metric_scalars(row: dict) -> dict:
    """A metrics row's values to log: every finite number but the step and the wall time."""
    return {k: float(v) for k, v in row.items()
            if k not in ("env_steps", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def episode_scalars(row: dict) -> dict:
    return {"return": float(row["return"]), "length": int(row["length"])}


def wandb_records(directory: Path, run_id: str | None = None) -> list[tuple[str, object]]:
    """Every record W&B wrote to the run files under ``directory/wandb`` (of ``run_id`` only, if
    given), oldest process first, as (folder name, wandb_internal Record). W&B's .wandb file is a
    7-byte header (":W&B", 0xBEE1, version) and then log blocks of 32 KiB in LevelDB's layout: each
    piece a 7-byte header (checksum, little-endian length, type: 1 whole, 2 first, 3 middle,
    4 last) and a part of a serialised Record; a block's tail too short for a header is padding.
    A file cut off by a crash yields the records before the cut."""
    from wandb.proto import wandb_internal_pb2

    pattern = f"*-{run_id}/run-{run_id}.wandb" if run_id else "*run-*/run-*.wandb"
    files = sorted((Path(directory) / "wandb").glob(pattern),  # by the start time in the folder's name
                   key=lambda f: (re.findall(r"\d{8}_\d{6}", f.parent.name) or [""])[0])
    out = []
    for path in files:
        data = path.read_bytes()
        if data[:4] != b":W&B" or struct.unpack("<H", data[4:6])[0] != 0xBEE1:
            continue
        pos, pending = 7, b""
        while pos + 7 <= len(data):
            left = _BLOCK - pos % _BLOCK
            length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
            if left < 7 or (length == 0 and kind == 0):
                pos += left
                continue
            piece = data[pos + 7:pos + 7 + length]
            if len(piece) < length:
                break
            pos += 7 + length
            pending = piece if kind in (1, 2) else pending + piece
            if kind in (1, 4):
                record = wandb_internal_pb2.Record()
                try:
                    record.ParseFromString(pending)
                except Exception:  # noqa: BLE001 - a damaged record ends what can be read
                    break
                out.append((path.parent.name, record))
    return out


def wandb_history(records) -> list[dict]:
    """The rows of the history records (what ``run.log`` sent), as dicts."""
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for _, r in records if r.WhichOneof("record_type") == "history"]


_BLOCK = 32768


class LiveLog:
    """The loggers of one run, opened on the rows the run starts from (a resumed run: those its
    checkpoint knew; they are sent unless the logger's files already hold them). ``send`` passes
    on the rows added since; ``close`` flushes and ends the loggers. A logger that cannot start
    closes those already open and raises."""

    def __init__(self, directory: Path, names: tuple[str, ...], config: dict, start_step: int,
                 episodes: list[dict], metrics_log: list[dict], evaluation: list[dict] | None = None):
        self.dir = Path(directory)
        self.state_file = self.dir / "live.json"
        try:
            self.state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            self.state = {}
        self.writers = {}
        try:
            for name in names:
                state = self.state.setdefault(name, {"episodes": 0, "metrics": 0})
                state.setdefault("eval", 0)
                opener = _TensorBoard if name == "tensorboard" else _WandB
                writer = self.writers[name] = opener(self.dir, config, state, start_step)
                # rows are in env-step order: skip those the logger's files keep
                state.update(episodes=sum(r["env_steps"] <= writer.have["episodes"] for r in episodes),
                             metrics=sum(r["env_steps"] <= writer.have["metrics"] for r in metrics_log),
                             eval=sum(r["env_steps"] <= writer.have["eval"] for r in evaluation or []))
        except BaseException:
            self.close()
            raise
        self.send(episodes, metrics_log, evaluation)

    def send(self, episodes: list[dict], metrics_log: list[dict], evaluation: list[dict] | None = None) -> None:
        """Send the rows added since the last call (``evaluation``: eval.jsonl's rows, as
        ``eval/return`` and ``eval/length``)."""
        if not self.writers:
            return
        for name, writer in self.writers.items():
            sent = self.state[name]
            for row in metrics_log[sent["metrics"]:]:
                writer.metrics(row)
            for row in episodes[sent["episodes"]:]:
                writer.episode(row)
            for row in (evaluation or [])[sent["eval"]:]:
                writer.episode(row, prefix="eval/")
            writer.flush()
            sent.update(episodes=len(episodes), metrics=len(metrics_log), eval=len(evaluation or []))
        atomic_write_json(self.state_file, self.state)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


class _TensorBoard:
    def __init__(self, directory: Path, config: dict, sent: dict, start_step: int):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        earlier = bool(sent["episodes"] or sent["metrics"])  # an earlier process wrote event files
        # purge_step: TensorBoard hides the events at or after it that earlier processes wrote
        # (the run repeats those steps); what they wrote before it stays and is not sent again
        self.writer = SummaryWriter(log_dir=str(directory / "tensorboard"), purge_step=start_step if earlier else None,
                                    flush_secs=30)
        kept = start_step - 1 if earlier else -1
        self.have = {"episodes": kept, "metrics": kept, "eval": kept}
        if not earlier:
            # the hparams plugin's records, in the run's own event file (SummaryWriter.add_hparams
            # would write them to a sub-folder of their own)
            for summary in hparams(hyperparameters(config), {"return": 0.0}):
                self.writer.file_writer.add_summary(summary)
            self.writer.add_text("settings", "```\n" + json.dumps(
                {k: config.get(k) for k in ("run", "task", "agent")}, indent=1) + "\n```", 0)

    def metrics(self, row: dict) -> None:
        step = int(row["env_steps"])
        for key, value in metric_scalars(row).items():
            self.writer.add_scalar(key, value, step, walltime=row.get("time"))

    def episode(self, row: dict, prefix: str = "") -> None:
        for key, value in episode_scalars(row).items():
            self.writer.add_scalar(prefix + key, value, int(row["env_steps"]), walltime=row.get("time"))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, directory: Path, config: dict, sent: dict, start_step: int):
        import wandb

        run = config.get("run", {})
        if "id" not in sent:
            sent["id"] = secrets.token_hex(6)  # W&B's run id, kept for resume
        label = f"{run.get('suite')}/{run.get('variant')}/{run.get('task')}/seed_{run.get('seed')}"
        # what earlier processes' W&B files hold: the run continues after it (W&B cannot unlog)
        history = wandb_history(wandb_records(directory, sent["id"]))
        self.have = {"episodes": max((h["env_steps"] for h in history if "return" in h), default=-1),
                     "metrics": max((h["env_steps"] for h in history if "updates" in h), default=-1),
                     "eval": max((h["env_steps"] for h in history if "eval/return" in h), default=-1)}
        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "dreamer-bench"), dir=str(directory), id=sent["id"],
            resume="allow", mode=os.environ.get("WANDB_MODE", "offline"), name=label,
            group=f"{run.get('suite')}/{run.get('variant')}/{run.get('task')}",
            tags=[str(run.get("suite")), str(run.get("variant")), str(run.get("task")), f"seed_{run.get('seed')}"],
            config={k: config.get(k) for k in ("run", "task", "agent")},
            settings=wandb.Settings(console="off", silent=True))
        self.run.define_metric("env_steps")
        self.run.define_metric("*", step_metric="env_steps")

    def metrics(self, row: dict) -> None:
        self.run.log({**metric_scalars(row), "env_steps": int(row["env_steps"])})

    def episode(self, row: dict, prefix: str = "") -> None:
        self.run.log({**{prefix + k: v for k, v in episode_scalars(row).items()}, "env_steps": int(row["env_steps"])})

    def flush(self) -> None:
        pass  # W&B writes its run file as it goes

    def close(self) -> None:
        self.run.finish()
        self.wandb.teardown()  # its service process ends with the run, not with the worker
