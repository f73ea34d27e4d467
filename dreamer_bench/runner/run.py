"""One training run = (suite, task, variant, seed): the loop, its results files and its resume.

Results of a run, in ``<results>/<suite>/<variant>/<task>/seed_<n>/``:
    config.json      the fully resolved configuration, package/torch/env versions, git commit
    status.json      state (pending, running, done, failed), progress, error with traceback
    episodes.jsonl   one line per finished training episode: env steps at its end (x), frames,
                     return, length, wall-clock, and Crafter's achievements
    metrics.jsonl    periodic training metrics: losses, updates/s, env steps/s
    scores.json      the run's episodes in the official {task, method, seed, xs, ys} format
    tensorboard/, wandb/, live.json   with --log: the live loggers' files (runner/live.py)
    eval.jsonl, eval_scores.json      with --eval-every: evaluation episodes (runner/evaluate.py)
    checkpoint/      ckpt-<n>/: agent (networks, optimiser, slow critic, return statistics,
                     generators), replay latents and metadata, loop counters; the newest complete
                     one wins. replay/: the replayed steps as append-only chunk files
    run.lock         present while a process trains the run
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..results import (EVALUATION_KEYS, IDENTITY_EXCLUDED, PLUGIN_FIELDS, add_start, identity_hash, read_config,
                       read_episodes, read_evaluation, read_metrics, read_status, run_path, score_record,
                       write_config, write_evaluation, write_logs, write_status)
from .lock import RunLock
from .schedule import TrainSchedule

STOPPED = "stopped on request after a checkpoint: rerun the command to resume"


class ConfigMismatch(ValueError):
    """An existing run was made with another resolved configuration."""


class Diverged(RuntimeError):
    """A loss became non-finite."""


@dataclass
class RunSpec:
    """Everything that defines a run, as plain data (it travels to worker processes)."""

    suite: str
    task: dict  # suites.TaskSpec.to_dict()
    off: tuple = ()
    seed: int = 0
    results: str = "results"
    steps: int | None = None  # overrides the task budget
    preset: str | None = None  # overrides the task preset
    train_ratio: float | None = None
    sets: dict = field(default_factory=dict)  # agent config overrides from the command line
    device: str = "cpu"
    threads: int = 0  # torch threads (0: leave as is)
    checkpoint_minutes: float = 10.0
    keep_replay: bool = False  # keep the replay of a finished run (it can be large)
    log_seconds: float = 30.0
    log_updates: int = 0  # also a metrics row after every N updates (0: by time only); not identity
    replay_capacity: int = 0  # steps per environment stream (0: the whole run, at most 1M)
    live: tuple = ()  # loggers beside the JSONL files: tensorboard, wandb (runner/live.py); not identity
    eval_every: int = 0  # evaluation episodes every N env steps (runner/evaluate.py); not identity
    eval_episodes: int = 10
    eval_mode: str = "sample"
    plugins: tuple = ()  # users' techniques: files, modules or entry points (agent/plugins.py), loaded where the run trains

    @property
    def plugin_names(self) -> tuple[str, ...]:
        from ..agent.plugins import load_all

        return load_all(self.plugins)

    @property
    def variant(self) -> str:
        from ..agent.techniques import variant_name

        return variant_name(self.off, self.plugin_names)

    @property
    def task_name(self) -> str:
        return self.task["task"]

    @property
    def directory(self) -> Path:
        return run_path(self.results, self.suite, self.variant, self.task_name, self.seed)

    @property
    def label(self) -> str:
        return f"{self.suite}/{self.variant}/{self.task_name}/seed_{self.seed}"

    def budget(self) -> int:
        return int(self.steps or self.task["steps"])

    @property
    def evaluation(self):
        from .evaluate import EvalSettings

        return EvalSettings(self.eval_every, self.eval_episodes, self.eval_mode)

    def settings(self) -> dict:
        """The run's resolved settings, which define its identity."""
        task = dict(self.task)
        task["steps"] = self.budget()
        task["preset"] = self.preset or task["preset"]
        task["train_ratio"] = float(self.train_ratio or task["train_ratio"])
        return task

    def agent_config(self):
        from ..agent.config import ConfigError, make_config
        from ..agent.techniques import variant_name

        settings = self.settings()
        overrides = {**settings["set"], **self.sets, "device": self.device, "seed": self.seed,
                     "plugins": self.plugin_names}
        cfg = make_config(settings["preset"], overrides=overrides, off=self.off)
        if variant_name(cfg.off, cfg.plugins) != self.variant:  # the folder's name must say what is off
            raise ConfigError(f"the configuration switches off {', '.join(cfg.off)} but the run is named "
                              f"{self.variant}: switch techniques off with --off only")
        return cfg


def resolved_config(spec: RunSpec) -> dict[str, Any]:
    from .. import __version__

    from ..agent.plugins import recorded_refs

    agent = spec.agent_config()
    cfg = agent.to_dict()
    return {
        "run": {"suite": spec.suite, "task": spec.task_name, "variant": spec.variant, "seed": spec.seed},
        **({"plugins": recorded_refs(agent.plugins)} if agent.plugins else {}),  # where predict finds them again
        "task": spec.settings(),
        "agent": cfg,
        "identity": identity_hash(spec.settings(), cfg, __version__),
        "beyond_preset": beyond_preset(spec.settings()["preset"], cfg),
        "versions": versions(),
        "machine": machine_record(spec),
        "git_commit": git_commit(),
    }


def env_seed(run_seed: int, restart: int, env: int) -> int:
    """The seed of a training environment: the run's seed, how often it restarted (a resumed run
    plays new episodes) and which of its environments. ``evaluate.round_seed`` and
    ``predict.episode_seed`` draw from streams apart from this one."""
    return (run_seed * 1_000_003 + 7919 * restart + env) % (2**31)


def machine_record(spec: RunSpec) -> dict[str, Any]:
    """Where a run trains: host, CPU in words (model, family, instruction sets), device, threads,
    Python. (The GPU's name is asked in the training process alone, ``training_machine``: asking it
    initialises CUDA, which the grid's own process need not.)"""
    from ..machine import cpu_description

    return {"host": platform.node(), "cpu": cpu_description(), "device": spec.device,
            "threads": spec.threads or os.cpu_count(), "python": platform.python_version()}


def training_machine(spec: RunSpec) -> dict[str, Any]:
    """``machine_record``, with what torch itself uses there: its CPU kernels' instruction set
    (``ATEN_CPU_CAPABILITY`` can lower it below the CPU's), MKL's code branch as fixed by
    ``MKL_CBWR`` (None: MKL picks one by CPU, so another CPU model trains another run; README,
    "Reproducibility") and, on CUDA, the GPU's name."""
    import torch

    record = machine_record(spec)
    capability = getattr(torch.backends.cpu, "get_cpu_capability", None)
    if capability is not None:
        record["torch_cpu_capability"] = capability()
    record["mkl_cbwr"] = os.environ.get("MKL_CBWR") or None
    if spec.device.startswith("cuda") and torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(torch.device(spec.device))
    return record


def beyond_preset(preset: str, agent: dict) -> dict[str, Any]:
    """The agent settings that differ from the preset's defaults (``--set`` and a suite's ``set:``
    values), without the seed, the techniques switched off (the variant names them) and the fields
    that do not change what a run means. The report shows them beside the run's label."""
    from ..agent.config import make_config

    defaults = make_config(preset).to_dict()
    skip = ("seed", "off", "plugins", "plugin_sources", *IDENTITY_EXCLUDED)  # the variant names those
    return {k: v for k, v in sorted(agent.items()) if k in defaults and k not in skip and defaults[k] != v
            and not (k in PLUGIN_FIELDS and not defaults[k] and not v)}  # no plug-in settings, however written


def config_differences(old: dict, new: dict) -> list[str]:
    from ..agent.config import canonical

    keys = []
    for section in ("task", "agent"):
        a, b = old.get(section, {}), new.get(section, {})
        if section == "agent":  # a run recorded before a field was renamed holds its former name
            a, b = canonical(a), canonical(b)
        for k in sorted(set(a) | set(b)):
            if (section == "agent" and k in IDENTITY_EXCLUDED) or (section == "task" and k in EVALUATION_KEYS):
                continue
            if section == "agent" and k in PLUGIN_FIELDS and not a.get(k) and not b.get(k):
                continue  # recorded before plug-ins existed: none
            if a.get(k) != b.get(k):
                keys.append(f"{section}.{k} ({a.get(k)!r} → {b.get(k)!r})")
    if old.get("versions", {}).get("dreamer_bench") != new["versions"]["dreamer_bench"]:
        keys.append(f"dreamer_bench version ({old.get('versions', {}).get('dreamer_bench')} → "
                    f"{new['versions']['dreamer_bench']})")
    return keys


def versions() -> dict[str, str]:
    """The versions of the package (its own ``__version__``: an editable install's metadata keeps
    the version it was installed at) and of the libraries a run depends on."""
    from importlib import metadata

    from .. import __version__

    out = {"dreamer_bench": __version__}
    for name, dist in (("torch", "torch"), ("numpy", "numpy"),
                       ("gymnasium", "gymnasium"), ("ale_py", "ale-py"), ("dm_control", "dm_control"),
                       ("mujoco", "mujoco"), ("crafter", "crafter")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# ------------------------------------------------------------------------------------------------
# the training loop
# ------------------------------------------------------------------------------------------------

class Run:
    """A run's training loop. ``execute`` trains it to its budget, resuming from its checkpoint."""

    def __init__(self, spec: RunSpec, on_progress: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, trainer: Callable | None = None):
        self.spec = spec
        # trainer(agent, batch) → metrics in place of agent.train(batch): a packed group's update
        # service (runner/pack.py), which batches this run's update with its group's
        self.trainer = trainer
        self.dir = spec.directory
        self.on_progress = on_progress
        # asked every two seconds of training: True makes the run checkpoint and stop (state
        # pending, resumable), as a Dask grid's client asks its runs on SIGTERM or Ctrl-C
        self.should_stop = should_stop
        self.window = _MetricsWindow()  # the loop's metrics since its last row (see _loop)
        self.live = None  # the live loggers while the run trains (runner/live.py)
        self.eval_rows: list[dict] = []  # evaluation episodes so far (runner/evaluate.py)

    # ---- set-up ------------------------------------------------------------------------------

    def check_config(self) -> dict:
        """Write config.json for a new run; refuse an existing run made with another config."""
        config = resolved_config(self.spec)
        old = read_config(self.dir)
        if old is None and (self.dir / "config.json").exists():
            raise ConfigMismatch(f"{self.dir / 'config.json'} is not valid JSON, so the run's configuration cannot "
                                 f"be checked: restore the file or remove the run's folder")
        self.replaces_config = False
        if old is not None:
            differ = config_differences(old, config)
            if differ and self._never_trained():
                self.replaces_config = True  # nothing was made with the old one: it does not bind
            elif differ:
                raise ConfigMismatch(f"{self.spec.label} exists with another configuration: {'; '.join(differ)}")
        return config

    def _never_trained(self) -> bool:
        """No checkpoint, no episode and no update: the folder holds nothing made with its config."""
        status = read_status(self.dir)
        return (latest_checkpoint(self.dir) is None and not status.get("updates")
                and not read_episodes(self.dir))

    def execute(self) -> dict:
        import torch

        spec = self.spec
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.dir / "run.lock")
        lock.acquire()
        try:
            config = self.check_config()
            old = read_config(self.dir)
            if old is None or self.replaces_config:
                write_config(self.dir, config)
            else:  # judged by the suite's current rules, and recorded as this version records a run
                current = {**old, "task": {**old.get("task", {}), **{k: config["task"].get(k) for k in EVALUATION_KEYS}},
                           "beyond_preset": config["beyond_preset"]}
                if current != old:
                    write_config(self.dir, current)
            status = read_status(self.dir)
            if status.get("state") == "done":
                return status
            finished = self._finished(status)
            if finished is not None:
                return finished
            if spec.threads:
                torch.set_num_threads(spec.threads)
            write_status(self.dir, state="running", error=None, started=time.time(), budget=spec.budget(),
                         pid=os.getpid(), host=platform.node(), attempts=int(status.get("attempts", 0)) + 1)
            return self._train(lock)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                write_status(self.dir, state="pending", error="interrupted")
            elif isinstance(e, ConfigMismatch):
                raise
            else:
                write_status(self.dir, state="failed", error=f"{type(e).__name__}: {e}",
                             traceback=traceback.format_exc())
            raise
        finally:
            lock.release()

    def _finished(self, status: dict) -> dict | None:
        """A run whose final checkpoint exists has finished training, even if it was stopped
        before status.json said so (or lost status.json): finish it from that checkpoint's
        counters and logs. None if it has not."""
        ckpt = latest_checkpoint(self.dir)
        if ckpt is None:
            return None
        loop = json.loads((ckpt / "loop.json").read_text())
        if not loop.get("final"):
            return None
        episodes, metrics_log = self._logs_known_to(loop)
        self._write_logs(episodes, metrics_log)
        lost_status = {} if "started" in status else {"started": time.time(),
                                                      "attempts": int(status.get("attempts", 0)) + 1}
        write_status(self.dir, error=None, traceback=None, **lost_status)
        return self._progress(_LoopState.from_dict(loop, 0), episodes, metrics_log, state="done")

    def _record_start(self, state: "_LoopState") -> None:
        """One line per start of training in starts.jsonl: when, from which counters (0 or the
        checkpoint's), on which machine, with which torch and commit. A run resumed elsewhere names
        every machine that trained it (config.json's record is the first start's)."""
        import torch

        from .. import __version__

        row = {"time": time.time(), "env_steps": state.env_steps, "updates": state.updates,
               **training_machine(self.spec), "torch": torch.__version__, "dreamer_bench": __version__,
               "git_commit": git_commit()}
        add_start(self.dir, row)

    def _logs_known_to(self, loop: dict) -> tuple[list[dict], list[dict]]:
        """The episodes and metrics rows a checkpoint knew (those logged after it are dropped: the
        run repeats those steps). An episode line damaged on disk is lost; the status says so."""
        episodes = [e for e in read_episodes(self.dir)
                    if isinstance(e, dict) and e.get("env_steps", math.inf) <= loop["env_steps"]]
        metrics_log = read_metrics(self.dir)[: loop["metrics"]]
        lost = loop["episodes"] - len(episodes)
        if lost > 0:
            message = f"episodes.jsonl had {lost} damaged line(s) before the checkpoint: those episodes are lost"
            print(f"warning: {self.spec.label}: {message}", file=sys.stderr, flush=True)
            write_status(self.dir, warning=message)
        return episodes[: loop["episodes"]], metrics_log

    def _train(self, lock: RunLock) -> dict:
        import torch

        from ..agent import Agent
        from ..agent.runtime import tune_cpu_allocator
        from ..envs import EnvGroup
        from .replay import Replay

        tune_cpu_allocator()
        spec = self.spec
        settings = spec.settings()
        cfg = spec.agent_config()
        budget = spec.budget()
        repeat = settings["action_repeat"]
        n_envs = settings["envs"]
        ckpt = latest_checkpoint(self.dir)
        loop = json.loads((ckpt / "loop.json").read_text()) if ckpt else {}
        restarts = int(loop.get("restarts", -1)) + 1
        env_seeds = [env_seed(spec.seed, restarts, i) for i in range(n_envs)]
        envs = EnvGroup(spec.task_name, env_seeds, {"action_repeat": repeat, **settings["env"]}, parallel=n_envs > 1)
        try:
            agent = Agent(envs.obs_space, envs.act_space, cfg)
            policy_budget = math.ceil(budget / repeat / n_envs) + 2
            capacity = spec.replay_capacity or min(policy_budget, 1_000_000)
            replay = Replay(envs.obs_space, envs.act_space.size, cfg.deter, cfg.latents, n_envs,
                            max(capacity, cfg.batch_length + 1), cfg.batch_length, seed=spec.seed)
            # Only what the checkpoint knew survives: episodes and metrics logged after it are
            # dropped, and a run stopped before its first checkpoint starts over with empty logs,
            # so a resumed run never holds duplicates.
            episodes, metrics_log = [], []
            if ckpt:
                agent.restore(torch.load(ckpt / "agent.pt", map_location=agent.device, weights_only=False))
                replay.load(ckpt / "replay", self.dir / "checkpoint" / "replay")
                episodes, metrics_log = self._logs_known_to(loop)
            state = _LoopState.from_dict(loop, n_envs)
            self._record_start(state)
            # the evaluation rounds the checkpoint knew (a later one is repeated, as it would have run)
            self.eval_rows = [r for r in read_evaluation(self.dir) if r.get("round", math.inf) < state.eval_rounds]
            if spec.live:
                from .live import LiveLog

                self.live = LiveLog(self.dir, spec.live, read_config(self.dir), state.env_steps, episodes, metrics_log,
                                    self.eval_rows)
            try:
                result = self._loop(agent, envs, replay, state, episodes, metrics_log, lock, budget)
            except Exception:
                if self.window.count:  # what it trained since the last metrics row, for the post-mortem
                    metrics_log.append(self._metrics_row(state, self.window))
                    self._write_logs(episodes, metrics_log)
                raise
        finally:
            envs.close()
            if self.live is not None:
                self.live.close()
                self.live = None
        return result

    def _loop(self, agent, envs, replay, st, episodes, metrics_log, lock, budget) -> dict:
        """Step the environments to the budget: log the episodes that end, act, store each step and
        train after it by the official schedule, write logs, checkpoints and the status as time
        passes, and stop early when asked (checkpointed: a rerun resumes)."""
        cfg = agent.cfg
        schedule = TrainSchedule(float(self.spec.settings()["train_ratio"]), cfg.batch_size, cfg.batch_length,
                                 prefetch=cfg.replay_prefetch, prev=st.train_prev)
        tracker = _EpisodeTracker(len(envs))
        evaluation = self.spec.evaluation  # once, not at every step
        # metrics summed since the last metrics row (a failing run logs them too: see _train)
        self.window = _MetricsWindow()
        clock = _Clock()
        transitions = envs.step([None] * len(envs))  # every environment starts with its reset step
        policy_state = None
        stopped = False
        hold = hold_point() if self.should_stop is not None else None  # tests only
        while True:
            episodes.extend(tracker.arrived(transitions, st, self.window))
            if st.env_steps >= budget:
                break
            if hold is not None and st.env_steps >= hold:
                self._hold(st, episodes, metrics_log)
                stopped = True
                break
            policy_state, env_actions = self._act_and_train(agent, envs.obs_space, transitions, policy_state,
                                                            replay, schedule, st)
            transitions = envs.step(list(env_actions))
            if evaluation.due(st.env_steps, st.eval_rounds):
                self._evaluate(agent, st)
            now = time.time()
            self._periodic_writes(agent, replay, st, episodes, metrics_log, clock, now)
            if now - st.last_status >= 2.0:
                lock.heartbeat()
                self._progress(st, episodes, metrics_log)
                if self.should_stop is not None and self.should_stop():
                    stopped = True
                    break
        return self._finish(agent, replay, st, episodes, metrics_log, stopped)

    def _hold(self, st, episodes, metrics_log) -> None:
        """The hold point (``hold_point``): the status says where the run stands, then it waits,
        alive and holding its lock (its heartbeat thread beats on), for the stop request."""
        self._progress(st, episodes, metrics_log)
        while not self.should_stop():
            time.sleep(0.2)

    def _act_and_train(self, agent, obs_keys, transitions, policy_state, replay, schedule, st):
        """The policy's actions for the arrived steps; each step goes into the replay with the
        world-model action and the latents the policy computed, and the updates the schedule owes
        after it run at once (runner/schedule.py). Returns the new policy state and env actions."""
        obs = {k: np.stack([tr.obs[k] for tr in transitions]) for k in obs_keys}
        obs["is_first"] = np.array([tr.obs["is_first"] for tr in transitions])
        policy_state, env_actions = agent.policy(policy_state, obs)
        wm_action = policy_state["action"].cpu().numpy()
        deter = policy_state["deter"].cpu().numpy()
        stoch = policy_state["stoch"].argmax(-1).cpu().numpy()
        for i, tr in enumerate(transitions):
            step = {k: tr.obs[k] for k in obs_keys}
            step.update(action=wm_action[i], reward=tr.obs["reward"], is_first=tr.obs["is_first"],
                        is_last=tr.obs["is_last"], is_terminal=tr.obs["is_terminal"], deter=deter[i],
                        stoch=stoch[i])
            replay.add(i, step)
            st.policy_steps += 1
            for _ in range(schedule.added(st.policy_steps, replay)):
                self.window.add_update(self._update(agent, replay, schedule))
                st.updates += 1
        st.train_prev = schedule.prev
        return policy_state, env_actions

    def _periodic_writes(self, agent, replay, st, episodes, metrics_log, clock, now) -> None:
        """A metrics row every ``log_seconds`` (and after every ``log_updates`` updates, when set),
        the logs at least every 5 s, a checkpoint every ``checkpoint_minutes``."""
        by_updates = self.spec.log_updates and self.window.updates >= self.spec.log_updates
        if by_updates or now - clock.log >= self.spec.log_seconds:
            metrics_log.append(self._metrics_row(st, self.window))
            clock.log = clock.write = now
            self._write_logs(episodes, metrics_log)
        elif now - clock.write >= 5.0:
            self._write_logs(episodes, metrics_log)
            clock.write = now
        if now - clock.checkpoint >= self.spec.checkpoint_minutes * 60:
            self._write_logs(episodes, metrics_log)
            self._checkpoint(agent, replay, st, episodes, metrics_log)
            clock.checkpoint = now

    def _finish(self, agent, replay, st, episodes, metrics_log, stopped: bool) -> dict:
        """The last metrics row, logs and checkpoint: final when the budget is reached (the run is
        done), a resumable one when it was stopped on request (state pending)."""
        if not stopped and self.spec.eval_every and not any(r["env_steps"] == st.env_steps for r in self.eval_rows):
            self._evaluate(agent, st)  # the trained agent's own evaluation, at the budget
        if self.window.count or not metrics_log:
            metrics_log.append(self._metrics_row(st, self.window))
        self._write_logs(episodes, metrics_log)
        self._checkpoint(agent, replay, st, episodes, metrics_log, final=not stopped)
        if stopped:
            return self._progress(st, episodes, metrics_log, state="pending", error=STOPPED)
        fault_point("after-final-checkpoint")
        return self._progress(st, episodes, metrics_log, state="done")

    def _evaluate(self, agent, st) -> None:
        """One evaluation round (runner/evaluate.py); its episodes are written at once."""
        from .evaluate import evaluate

        settings = self.spec.settings()
        rows = evaluate(agent, self.spec.task_name, {"action_repeat": settings["action_repeat"], **settings["env"]},
                        self.spec.evaluation, self.spec.seed, st.eval_rounds, st.env_steps)
        st.eval_rounds += 1
        self.eval_rows += rows
        record = score_record(self.spec.task_name, self.spec.variant, self.spec.seed, self.eval_rows)
        write_evaluation(self.dir, self.eval_rows, record)
        fault_point("after-evaluation", st.env_steps)

    def _update(self, agent, replay, schedule) -> dict:
        import torch

        cfg = agent.cfg
        sample = schedule.batch(replay)
        batch = {k: torch.from_numpy(v) for k, v in sample.items() if k not in ("stream", "start", "deter", "stoch")}
        batch["deter"] = torch.from_numpy(sample["deter"].astype(np.float32))
        batch["stoch"] = torch.nn.functional.one_hot(torch.from_numpy(sample["stoch"].astype(np.int64)), cfg.classes).float()
        metrics = self.trainer(agent, batch) if self.trainer is not None else agent.train(batch)
        bad = [k for k, v in metrics.items() if k.startswith("loss/") and not math.isfinite(v)]
        if bad:
            raise Diverged(f"non-finite {', '.join(bad)} at update {agent.updates}")
        replay.write_context(sample["stream"], sample["start"], batch["deter"][:, 1:].numpy().astype(np.float16),
                             batch["stoch"][:, 1:].argmax(-1).numpy().astype(np.int16))
        return metrics

    @staticmethod
    def _metrics_row(st, window: _MetricsWindow) -> dict:
        return window.row(env_steps=st.env_steps, updates=st.updates, policy_steps=st.policy_steps)

    def _write_logs(self, episodes, metrics_log) -> None:
        write_logs(self.dir, episodes, metrics_log,
                   score_record(self.spec.task_name, self.spec.variant, self.spec.seed, episodes))
        fault_point("after-logs", episodes[-1]["env_steps"] if episodes else 0)
        if self.live is not None:
            self.live.send(episodes, metrics_log, self.eval_rows)

    def _progress(self, st, episodes, metrics_log, state="running", **extra) -> dict:
        st.last_status = time.time()
        recent = [e["return"] for e in episodes[-10:]]
        last = metrics_log[-1] if metrics_log else {}
        status = write_status(
            self.dir, state=state, env_steps=st.env_steps, budget=self.spec.budget(), updates=st.updates,
            policy_steps=st.policy_steps,
            episodes=len(episodes), latest_return=float(np.mean(recent)) if recent else None,
            updates_per_s=last.get("updates_per_s"), env_steps_per_s=last.get("env_steps_per_s"), **extra)
        if self.on_progress:
            self.on_progress(status)
        return status

    def _checkpoint(self, agent, replay, st, episodes, metrics_log, final=False) -> None:
        """Write the replay's new chunks and ckpt-<n>.tmp, rename it to ckpt-<n> (atomic), then
        delete older checkpoints and the chunks the new one does not list."""
        import torch

        from .replay import prune_store

        root = self.dir / "checkpoint"
        root.mkdir(exist_ok=True)
        number = st.checkpoints + 1
        tmp = root / f"ckpt-{number:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        torch.save(agent.checkpoint(), tmp / "agent.pt")
        store = root / "replay"  # chunk files shared by the checkpoints: each step is written once
        keep_replay = not final or self.spec.keep_replay
        if keep_replay:
            replay.save(tmp / "replay", store)
        st.checkpoints = number
        loop = st.to_dict()
        loop.update(episodes=len(episodes), metrics=len(metrics_log), final=final)
        (tmp / "loop.json").write_text(json.dumps(loop))
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        fault_point("checkpoint-write")
        os.replace(tmp, root / f"ckpt-{number:06d}")
        if not final:
            fault_point("after-checkpoint", st.env_steps)
        for old in root.glob("ckpt-*"):
            if old.name != f"ckpt-{number:06d}":
                shutil.rmtree(old, ignore_errors=True)
        if keep_replay:
            prune_store(store, replay.chunks)
        else:
            shutil.rmtree(store, ignore_errors=True)


@dataclass
class _LoopState:
    env_steps: int = 0
    policy_steps: int = 0
    updates: int = 0
    train_prev: float | None = None  # the schedule's state (runner/schedule.py)
    checkpoints: int = 0
    restarts: int = 0
    eval_rounds: int = 0  # evaluations done (runner/evaluate.py)
    last_status: float = 0.0

    @classmethod
    def from_dict(cls, d: dict, n_envs: int) -> "_LoopState":
        if not d:
            return cls()
        return cls(env_steps=d["env_steps"], policy_steps=d["policy_steps"], updates=d["updates"],
                   train_prev=d.get("train_prev"), checkpoints=d["checkpoints"], restarts=d.get("restarts", 0) + 1,
                   eval_rounds=d.get("eval_rounds", 0))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("last_status")
        return d


@dataclass
class _MetricsWindow:
    """Training metrics summed since the last metrics row, and the updates and env steps in it."""
    updates: int = 0
    env_steps: int = 0
    start: float = field(default_factory=time.time)
    sums: dict = field(default_factory=dict)
    count: int = 0

    def add_update(self, metrics: dict) -> None:
        self.updates += 1
        self.count += 1
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def row(self, **counters) -> dict:
        """The means of the metrics, the loop's ``counters``, the time and the window's rates;
        the window starts again."""
        now = time.time()
        dt = max(now - self.start, 1e-9)
        row = {k: v / self.count for k, v in self.sums.items()} if self.count else {}
        row.update(counters, time=now, updates_per_s=self.updates / dt, env_steps_per_s=self.env_steps / dt)
        self.updates, self.env_steps, self.start, self.sums, self.count = 0, 0, now, {}, 0
        return row


@dataclass
class _Clock:
    """When the loop last appended a metrics row, wrote its logs and checkpointed."""
    log: float = field(default_factory=time.time)
    write: float = field(default_factory=time.time)
    checkpoint: float = field(default_factory=time.time)


class _EpisodeTracker:
    """Each environment's return and length so far; the rows of the episodes that end."""

    def __init__(self, n: int):
        self.returns = np.zeros(n)
        self.lengths = np.zeros(n, np.int64)

    def arrived(self, transitions, st, window: _MetricsWindow) -> list[dict]:
        """Count the arrived steps (Atari: frames) and return a row per episode that ended: env
        steps of all environments at its end (the x of the published score files), return,
        length in policy steps, and what the environment reports of it (e.g. achievements)."""
        rows = []
        for i, tr in enumerate(transitions):
            reward = float(tr.obs["reward"])
            if not math.isfinite(reward):
                raise NonFiniteReward(f"the environment returned a non-finite reward ({reward}) "
                                      f"after env step {st.env_steps} (environment {i})")
            st.env_steps += tr.frames
            window.env_steps += tr.frames
            self.returns[i] += reward
            self.lengths[i] += 0 if tr.obs["is_first"] else 1
            if tr.obs["is_last"]:
                row = {"env_steps": st.env_steps, "frames": st.env_steps, "return": float(self.returns[i]),
                       "length": int(self.lengths[i]), "env": i, "terminal": bool(tr.obs["is_terminal"]),
                       "time": time.time()}
                row.update(tr.episode)
                rows.append(row)
                self.returns[i], self.lengths[i] = 0.0, 0
        return rows


class NonFiniteReward(RuntimeError):
    """The environment, not the agent, produced NaN or an infinity."""


def fault_point(name: str, env_steps: int | None = None) -> None:
    """Fault injection for the fault tests: with DREAMER_BENCH_FAULT=name the process kills itself
    (SIGKILL) here, at a named point; with DREAMER_BENCH_FAULT_FROM=N as well, only once the
    point's ``env_steps`` is ≥ N (the run's env steps; at ``after-logs``, those at the end of the
    last logged episode), so that a test need not race the clock for a point late in a run; with
    DREAMER_BENCH_FAULT_ONCE=path, only the first process to reach it (the one that creates that
    file). Never set outside tests."""
    if os.environ.get("DREAMER_BENCH_FAULT") != name:
        return
    start = os.environ.get("DREAMER_BENCH_FAULT_FROM")
    if start is not None and (env_steps is None or env_steps < int(start)):
        return
    once = os.environ.get("DREAMER_BENCH_FAULT_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def hold_point() -> int | None:
    """For the stop tests: with DREAMER_BENCH_HOLD=N, a run that can be asked to stop (one of a
    grid) takes no further step once it has N env steps, and waits for the request, so that a test
    need not race a fast machine to stop a run before its budget. Returns N, or None (unset:
    always outside tests). Read once per run, not at every step."""
    start = os.environ.get("DREAMER_BENCH_HOLD")
    return None if start is None else int(start)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint (``ckpt-<n>`` without ``.tmp``), or None."""
    root = Path(directory) / "checkpoint"
    done = sorted(p for p in root.glob("ckpt-*") if p.is_dir() and not p.name.endswith(".tmp")
                  and (p / "loop.json").exists() and (p / "agent.pt").exists())
    return done[-1] if done else None
