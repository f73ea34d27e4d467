"""Both updates trained on one recorded replay stream, batch for batch.

first_updates.py feeds both implementations synthetic batches; this feeds them the real data of
a training run: the first steps of a walker_walk, cartpole_swingup or CartPole-v1 run's replay (ours or the
official agent's; ``--task`` at prepare, kept in DIR/meta.json), replayed by the official
schedule (tests/test_official_schedule.py: our Replay and TrainSchedule decide as the official
loop does) so that update k of the probe gets the windows update k of a run on that stream would
draw. Each side trains its own agent from the same official initial parameters at the runs'
settings (size1m, batch 16×64, LaProp with 1,000 warm-up updates, actor unimix 0, the task's
train ratio) and keeps its own replay context: the posteriors each update writes back, read as
the context of later windows as of the moment the prefetching stream drew them. A context step no
update has written yet starts from zeros on both sides (in a run it would be the acting
posterior, which the stream does not hold for the official agent). What differs between the
sides is then the update alone, its samplers' draws and the context it wrote; what differs
between streams is the data. ``--init-seed N`` (official) and ``--own-init`` (ours, drawn from
``--seed`` as a run's are) start a side from other initial parameters instead, to see what the
initial draw does on one stream; ``export --seed S`` writes our draw S in the official layout
(DIR/ours_init<S>.npz) and ``official --params DIR/ours_init<S>.npz`` trains the official agent
from it.

    # the windows, once per stream (any Python with dreamer_bench):
    python tools/official/stream_updates.py prepare --stream RUN_OR_LOGDIR --updates 1000 --out DIR \
        [--task dmc_walker_walk|gym_CartPole-v1]
    # the official agent (tools/official/setup.sh's environment, run from its clone):
    $VENV/bin/python tools/official/stream_updates.py official --dir DIR [--seed 0] [--init-seed N]
    # ours:
    python tools/official/stream_updates.py ours --dir DIR [--seed 0] [--own-init]
    # per bin of env steps, side by side:
    python tools/official/stream_updates.py compare --dir DIR ...
    # the official initial parameters alone, for a run of ours from them (official_init.py):
    $VENV/bin/python tools/official/stream_updates.py draw --task TASK --init-seed N --out FILE.npz

RUN_OR_LOGDIR: one of our run folders (its checkpoint's replay store) or an official logdir (its
replay chunks; a finished run of ours keeps its replay with ``dreamer-bench run --keep-replay``).
Each side writes DIR/<side>_seed<S>.csv: per update the imagined value, reward, normalised return,
advantage magnitude, policy entropy, the reward, reconstruction, dynamics, continuation, critic
and replayed-critic losses, the gradient norm (the raw global norm before clipping, on both
sides) and the prior's and posterior's entropies (summed over the latents, as the official agent
logs them), named as in our metrics (probes made before 2026-12-06 lack the continuation,
critic and replayed-critic losses and the gradient norm, probes before 13:10 that day the
entropies: "–").
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys

import numpy as np

B, T = 16, 64
L = T + 1


class Task:
    """A task's stream as both agents see it: our observation keys and shapes, the official
    agent's shape of each (walker's height is a scalar there), the action, the protocol."""

    def __init__(self, obs, official_shapes, discrete, act, ratio, repeat, edges, recon):
        self.obs, self.official_shapes = obs, official_shapes
        self.discrete, self.act = discrete, act  # act: classes (discrete) or dimensions
        self.ratio, self.repeat, self.edges = ratio, repeat, edges  # edges: env steps of the bins
        self.recon = recon  # the reconstruction loss of the key compared: (ours, official)
        self.step_keys = (*obs, "action", "reward", "is_first", "is_last", "is_terminal")


TASKS = {
    "dmc_walker_walk": Task({"height": (1,), "orientations": (14,), "velocity": (9,)},
                            {"height": (), "orientations": (14,), "velocity": (9,)},
                            False, 6, 512.0, 2, (2500, 3500, 4500, 5500, 6500),
                            ("loss/rec_velocity", "loss/velocity")),
    "dmc_cartpole_swingup": Task({"position": (3,), "velocity": (2,)}, {"position": (3,), "velocity": (2,)},
                                 False, 1, 512.0, 2, (2500, 3500, 4500, 5500, 6500),
                                 ("loss/rec_velocity", "loss/velocity")),
    # ratio 128, repeat 1: one update per 8 env steps from step 1,088 on; the bins split the
    # first ~60 updates from the next ~150, where the runs' gradient norms part
    "gym_CartPole-v1": Task({"vector": (4,)}, {"vector": (4,)}, True, 2, 128.0, 1,
                            (1500, 2500, 3500, 4500, 6500), ("loss/rec_vector", "loss/vector")),
}
# ours key: official key (the task's reconstruction loss is added per task)
COLUMNS = {"imag/value": "val", "imag/reward": "rew", "imag/return_normed": "ret", "imag/advantage_mag": "adv_mag",
           "imag/entropy": "ent/action", "loss/rew": "loss/rew", "loss/dyn": "loss/dyn",
           "loss/con": "loss/con", "loss/value": "loss/value", "loss/repval": "loss/repval",
           "grad_norm": "opt/grad_norm", "wm/prior_entropy": "dyn_ent", "wm/post_entropy": "rep_ent"}
# ours log these per latent, the official agent summed over the latents: the CSVs keep the sums
SUMMED = ("wm/prior_entropy", "wm/post_entropy")


def columns(task: Task) -> dict[str, str]:
    return {**COLUMNS, task.recon[0]: task.recon[1]}


def task_of(dir_: pathlib.Path) -> Task:
    """The probe's task (meta.json; probes made before the option were walker_walk's)."""
    meta = json.loads((dir_ / "meta.json").read_text()) if (dir_ / "meta.json").exists() else {}
    return TASKS[meta.get("task", "dmc_walker_walk")]


# ------------------------------------------------------------------------------------------------
# the stream and its windows

def read_stream(path: pathlib.Path, steps: int, task: Task) -> dict[str, np.ndarray]:
    """The first ``steps`` policy steps of a run's replay, ours or official, as arrays (steps, …)
    in our layout (observation keys at our shapes, a discrete action one-hot)."""
    keys = task.step_keys
    ours = sorted((path / "checkpoint" / "replay").glob("stream0-*.npz"))
    if ours:  # our store: stream0-<start>-<end>.npz, append-only
        chunks = sorted(ours, key=lambda p: int(p.stem.split("-")[1]))
        expect = 0
        parts = []
        for p in chunks:
            start, end = map(int, p.stem.split("-")[1:])
            if start != expect:
                raise SystemExit(f"{p}: the store is not contiguous (step {expect} missing)")
            with np.load(p) as f:
                parts.append({k: f[k] for k in keys})
            expect = end
            if expect >= steps:
                break
    else:  # the official replay: chunks named <time>-<uuid>-<successor>-<length>.npz, each naming the next
        files = sorted((path / "replay").glob("*.npz"))
        if not files:
            raise SystemExit(f"{path}: neither our checkpoint/replay nor an official replay/ folder")
        by_uuid = {p.stem.split("-")[1]: p for p in files}
        # a resumed run starts a new chain (its first chunk is no chunk's successor): the chains,
        # in the order of their first chunks' times, are the run's steps in the order it took them
        named = {p.stem.split("-")[2] for p in files}
        heads = [p for p in files if p.stem.split("-")[1] not in named]
        p, parts, total = heads.pop(0), [], 0  # the earliest chunk starts the stream
        restarted = False  # p is the first chunk of a resumed run's chain
        while True:
            with np.load(p) as f:
                part = {k: f[k] for k in keys}
            if restarted and not bool(part["is_first"][0]):
                raise SystemExit(f"{p}: a chain that does not start an episode")
            for k, shape in task.obs.items():
                part[k] = part[k].reshape(-1, *shape)
            if task.discrete and part["action"].ndim == 1:  # the official replay stores the index
                part["action"] = np.eye(task.act, dtype=np.float32)[part["action"]]
            parts.append(part)
            total += len(part["reward"])
            successor = p.stem.split("-")[2]
            if total >= steps:
                break
            if successor in by_uuid:
                p, restarted = by_uuid[successor], False
            elif heads:  # the chain ends where the run was stopped; the next starts a new episode
                p, restarted = heads.pop(0), True
            else:
                break  # every chain read: checked below
    stream = {k: np.concatenate([p[k] for p in parts])[:steps] for k in keys}
    if len(stream["reward"]) < steps:
        raise SystemExit(f"{path}: only {len(stream['reward'])} policy steps stored, {steps} asked for")
    return stream


def prepare(stream_path: pathlib.Path, updates: int, out: pathlib.Path, seed: int, task_name: str) -> None:
    """DIR/stream.npz (the steps) and DIR/windows.npz: per update the 16 window starts and the
    number of updates done when the prefetching stream drew them."""
    from dreamer_bench.runner.replay import Replay
    from dreamer_bench.runner.schedule import TrainSchedule, training_start

    task = TASKS[task_name]
    keys = task.step_keys
    # policy steps a run needs for ``updates`` updates (one environment)
    steps = training_start(1, B, T) + int(np.ceil((updates - 1) * B * T / task.ratio)) + 1
    data = read_stream(stream_path, steps, task)
    replay = Replay(task.obs, task.act, deter=1, latents=1, streams=1, capacity=10**6, length=T, seed=seed)
    schedule = TrainSchedule(task.ratio, B, T, prefetch=True)
    draws, done, inner = [], {"n": 0}, replay.sample

    def sample(batch):
        got = inner(batch)
        draws.append((got["start"].copy(), done["n"]))
        return got

    replay.sample = sample
    zeros = {"deter": np.zeros(1, np.float16), "stoch": np.zeros(1, np.int16)}
    for i in range(steps):
        replay.add(0, {**{k: data[k][i] for k in keys}, **zeros})
        for _ in range(schedule.added(i + 1, replay)):
            if done["n"] < updates:
                schedule.batch(replay)
            done["n"] += 1
    used = draws[:updates]
    if len(used) < updates:
        raise SystemExit(f"only {len(used)} batches from {steps} steps")
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "stream.npz", **data)
    np.savez(out / "windows.npz", starts=np.stack([s for s, _ in used]), drawn_after=np.array([d for _, d in used]))
    rate = float(data["reward"].sum()) / steps
    meta = {"stream": str(stream_path), "task": task_name, "policy_steps": steps, "updates": updates,
            "seed": seed, "reward_per_policy_step": rate}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"{out}: {updates} batches from {steps} policy steps, replayed reward {rate:.4f} per policy step")


class Context:
    """One side's replay context over the stream: the latent each step last had written back
    (zeros where none was), and the contexts of the batches as of when they were drawn."""

    def __init__(self, steps: int, deter: int, stoch: int, classes: int, starts, drawn_after):
        self.deter = np.zeros((steps, deter), np.float32)
        self.stoch = np.zeros((steps, stoch, classes), np.float32)
        self.starts, self.drawn_after = starts, drawn_after
        self.taken: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def before_update(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The context of batch k, taking first that of every batch drawn before update k ran."""
        for j in np.flatnonzero(self.drawn_after == k):
            s = self.starts[j]
            self.taken[int(j)] = (self.deter[s].copy(), self.stoch[s].copy())
        return self.taken.pop(k)

    def write(self, k: int, deter: np.ndarray, stoch: np.ndarray) -> None:
        """Update k's posteriors of its trained steps (B, T, …)."""
        idx = self.starts[k][:, None] + np.arange(1, L)[None]
        self.deter[idx] = deter
        self.stoch[idx] = stoch


def load(dir_: pathlib.Path):
    with np.load(dir_ / "stream.npz") as f:
        stream = {k: f[k] for k in f.files}
    with np.load(dir_ / "windows.npz") as f:
        starts, drawn_after = f["starts"], f["drawn_after"]
    return stream, starts, drawn_after


def window_batch(stream: dict, starts: np.ndarray, task: Task) -> dict[str, np.ndarray]:
    """The batch's steps (B, L, …) with the replay's flags: a window's first step starts a
    sequence, a step followed by a first step ends one."""
    idx = starts[:, None] + np.arange(L)[None]
    batch = {k: stream[k][idx] for k in task.step_keys}
    batch["is_first"][:, 0] = True
    batch["is_last"][:, :-1] |= batch["is_first"][:, 1:]
    return batch


# ------------------------------------------------------------------------------------------------
# the comparison

def env_steps(update: int, task: Task) -> int:
    """Env steps of a one-environment run at the start of update ``update`` (1-based): from the
    first update on, one update per B·T / train ratio policy steps, ``task.repeat`` env steps each."""
    from dreamer_bench.runner.schedule import training_start

    return task.repeat * (training_start(1, B, T) + round((update - 1) * B * T / task.ratio))


def compare(dirs: list[pathlib.Path], edges: tuple[float, ...] | None = None) -> str:
    """A Markdown table per quantity: a row per probe folder and side (and seed), a column per
    bin of env steps (walker_walk's as early_metrics.py's), each the mean over the updates in it.
    The folders must be of one task; ``edges`` (env steps) replaces the task's bins."""
    tasks = {id(task_of(d)): task_of(d) for d in dirs}
    if len(tasks) != 1:
        raise SystemExit("compare: the folders are of different tasks")
    task = task_of(dirs[0])
    bounds = (0, *(edges or task.edges))
    head = ["stream, side"] + [f"({lo / 1000:g}K, {hi / 1000:g}K]" for lo, hi in zip(bounds[:-1], bounds[1:])]
    out = []
    for col in columns(task):
        lines = [f"{col}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for d in dirs:
            for path in sorted(d.glob("*_seed*.csv")):
                with open(path) as f:
                    rows = list(csv.DictReader(f))
                x = np.array([env_steps(int(r["update"]), task) for r in rows])
                y = np.array([float(r[col]) if col in r else np.nan for r in rows])
                cells = []
                for lo, hi in zip(bounds[:-1], bounds[1:]):
                    sel = (x > lo) & (x <= hi) & np.isfinite(y)
                    cells.append(f"{y[sel].mean():.4g}" if sel.any() else "–")
                lines.append(f"| {d.name}, {path.stem} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


# ------------------------------------------------------------------------------------------------
# the two sides

def write_rows(path: pathlib.Path, rows: list[dict], task: Task) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["update", *columns(task)])
        w.writeheader()
        w.writerows(rows)
    print(path)


def in_official_layout(agent, reference: dict) -> dict:
    """Our agent's parameters as the official agent's arrays: ``to_ours`` inverted by mapping
    index-coded copies of ``reference`` (official names and shapes, e.g. params0.npz), so that
    every value lands where ``to_ours`` takes it from. Arrays no parameter of ours comes from (the
    official optimiser's and return scale's starting state) are the reference's."""
    from dreamer_bench.agent.official import to_ours

    ours = {k: v.detach().cpu().numpy() for k, v in agent.state_dict().items()}
    coded, start = {}, 0
    for k, v in reference.items():
        coded[k] = (start + np.arange(v.size, dtype=np.float64)).reshape(v.shape)
        start += v.size
    values, filled = np.zeros(start), np.zeros(start, bool)
    for name, ids in to_ours(coded, agent.cfg, agent.obs_space, agent.act_space.discrete).items():
        ids = np.asarray(ids).astype(np.int64).ravel()
        values[ids], filled[ids] = ours[name].ravel(), True
    out, start = {}, 0
    for k, v in reference.items():
        part = slice(start, start + v.size)
        if filled[part].any() and not filled[part].all():
            raise ValueError(f"{k}: only part of it maps to our parameters")
        out[k] = values[part].reshape(v.shape).astype(v.dtype) if filled[part].all() else np.asarray(v)
        start += v.size
    return out


def export_ours(dir_: pathlib.Path, seed: int) -> None:
    """DIR/ours_init<S>.npz: our own initial parameters drawn from ``seed`` (as a run's), in the
    official layout of DIR/params0.npz, for ``official --params``."""
    from dreamer_bench.agent import ActSpace, Agent, make_config

    task = task_of(dir_)
    cfg = make_config("size1m", overrides=dict(batch_size=B, batch_length=T, actor_unimix=0.0, seed=seed, compile=False))
    agent = Agent(task.obs, ActSpace(task.discrete, task.act), cfg)
    path = dir_ / f"ours_init{seed}.npz"
    np.savez(path, **in_official_layout(agent, dict(np.load(dir_ / "params0.npz"))))
    print(path)


def official_spaces(task: Task):
    """The official agent's observation and action spaces of ``task``."""
    import elements

    spaces = {k: elements.Space(bool) for k in ("is_first", "is_last", "is_terminal")}
    spaces["reward"] = elements.Space(np.float32)
    spaces.update({k: elements.Space(np.float32, shape) for k, shape in task.official_shapes.items()})
    if task.discrete:
        return spaces, {"action": elements.Space(np.int32, (), 0, task.act)}
    return spaces, {"action": elements.Space(np.float32, (task.act,), -1.0, 1.0)}


def draw_official(task_name: str, init_seed: int, out: pathlib.Path) -> None:
    """OUT (.npz): the official agent's initial parameters for ``task_name`` drawn from agent seed
    ``init_seed``, for a run of ours that starts from them (tools/official/official_init.py)."""
    import tempfile

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from first_updates import official_agent

    with tempfile.TemporaryDirectory() as tmp:
        agent, _ = official_agent(pathlib.Path(tmp), official_spaces(TASKS[task_name]),
                                  ["--agent.opt.warmup", "1000"], seed=init_seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, **{k: np.asarray(v) for k, v in agent.params.items()})
    print(out)


def official(dir_: pathlib.Path, seed: int, init_seed: int = 0, params: pathlib.Path | None = None) -> None:
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from first_updates import official_agent

    stream, starts, drawn_after = load(dir_)
    task = task_of(dir_)
    agent, config = official_agent(dir_, official_spaces(task), ["--agent.opt.warmup", "1000"], seed=init_seed)
    model = agent.model
    rssm = config.agent.dyn.rssm
    if init_seed == 0 and not (dir_ / "params0.npz").exists():  # the parameters both sides start from
        np.savez(dir_ / "params0.npz", **{k: np.asarray(v) for k, v in agent.params.items()})

    def train_step(carry, batch):  # the official Agent.train, returning its replay-context entries
        carry, obs, prevact, _ = model._apply_replay_context(carry, batch)
        metrics, (carry, entries, outs, mets) = model.opt(model.loss, carry, obs, prevact, training=True, has_aux=True)
        metrics.update(mets)
        model.slowval.update()
        return metrics, entries[1]

    pure = jax.jit(nj.pure(train_step))
    _, carry = nj.pure(model.init_train)(dict(agent.params), B, seed=jnp.array([0, 0], jnp.uint32))
    state = dict(agent.params)
    if params is not None:  # another initial state, in the official layout (export_ours)
        given = dict(np.load(params))
        if set(given) != set(state):
            raise SystemExit(f"{params}: not the official agent's arrays ({sorted(set(given) ^ set(state))[:3]} …)")
        state = {k: jnp.asarray(given[k]) for k in state}
    ctx = Context(len(stream["reward"]), rssm.deter, rssm.stoch, rssm.classes, starts, drawn_after)
    rows = []
    for k in range(len(starts)):
        batch = window_batch(stream, starts[k], task)
        for key, shape in task.official_shapes.items():
            batch[key] = batch[key].reshape(B, L, *shape)
        if task.discrete:
            batch["action"] = batch["action"].argmax(-1).astype(np.int32)
        deter0, stoch0 = ctx.before_update(k)
        batch["dyn/deter"] = np.zeros((B, L, rssm.deter), np.float32)
        batch["dyn/stoch"] = np.zeros((B, L, rssm.stoch, rssm.classes), np.float32)
        batch["dyn/deter"][:, 0], batch["dyn/stoch"][:, 0] = deter0, stoch0
        batch["consec"] = np.zeros((B, L), np.int32)
        batch["stepid"] = np.zeros((B, L, 20), np.uint8)
        draws = jnp.array([k, 1 + seed], jnp.uint32)
        state, (metrics, dyn) = pure(state, carry, {key: jnp.asarray(v) for key, v in batch.items()}, seed=draws)
        ctx.write(k, np.asarray(dyn["deter"], np.float32), np.asarray(dyn["stoch"], np.float32))
        rows.append({"update": k + 1, **{c: float(np.asarray(metrics[o])) for c, o in columns(task).items()}})
        if (k + 1) % 50 == 0:
            print(f"official update {k + 1}/{len(starts)}", file=sys.stderr, flush=True)
    name = "official" if init_seed == 0 else f"official_init{init_seed}"
    if params is not None:
        name = f"official_from_{params.stem}"
    write_rows(dir_ / f"{name}_seed{seed}.csv", rows, task)


def train_ours(agent, dir_: pathlib.Path, updates: int = 0):
    """Train our ``agent`` on the probe's batches in order, each with the replay context as it
    stood when drawn; yields each update's metrics. ``updates``: only the first N (0: all)."""
    stream, starts, drawn_after = load(dir_)
    task, cfg = task_of(dir_), agent.cfg
    ctx = Context(len(stream["reward"]), cfg.deter, cfg.latents, cfg.classes, starts, drawn_after)
    for k in range(updates or len(starts)):
        batch = window_batch(stream, starts[k], task)
        deter0, stoch0 = ctx.before_update(k)
        batch["deter"] = np.zeros((B, L, cfg.deter), np.float32)
        batch["stoch"] = np.zeros((B, L, cfg.latents, cfg.classes), np.float32)
        batch["deter"][:, 0], batch["stoch"][:, 0] = deter0, stoch0
        metrics = agent.train(batch)
        ctx.write(k, batch["deter"][:, 1:].cpu().numpy(), batch["stoch"][:, 1:].cpu().numpy())
        yield metrics


def ours(dir_: pathlib.Path, seed: int, compile_: bool, own_init: bool = False) -> None:
    from dreamer_bench.agent import ActSpace, Agent, make_config
    from dreamer_bench.agent.official import load_official

    if not own_init and not (dir_ / "params0.npz").exists():
        raise SystemExit(f"no {dir_ / 'params0.npz'}: run the official side first (it writes the initial parameters)")
    starts = load(dir_)[1]
    task = task_of(dir_)
    cfg = make_config("size1m", overrides=dict(batch_size=B, batch_length=T, actor_unimix=0.0, seed=seed,
                                               compile=compile_))
    agent = Agent(task.obs, ActSpace(task.discrete, task.act), cfg)
    if not own_init:  # else our own initial parameters, drawn from ``seed`` as a run's are
        load_official(agent, dict(np.load(dir_ / "params0.npz")))
    rows = []
    for k, metrics in enumerate(train_ours(agent, dir_)):
        rows.append({"update": k + 1, **{c: float(metrics[c]) * (cfg.latents if c in SUMMED else 1) for c in columns(task)}})
        if (k + 1) % 50 == 0:
            print(f"ours update {k + 1}/{len(starts)}", file=sys.stderr, flush=True)
    write_rows(dir_ / f"{'ours_owninit' if own_init else 'ours'}_seed{seed}.csv", rows, task)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["prepare", "official", "ours", "compare", "export", "draw"])
    p.add_argument("--stream", type=pathlib.Path, help="prepare: our run folder or an official logdir")
    p.add_argument("--updates", type=int, default=1000, help="prepare: updates (batches) to draw")
    p.add_argument("--out", type=pathlib.Path, help="prepare: the probe's folder; draw: the .npz to write")
    p.add_argument("--dir", type=pathlib.Path, nargs="+", help="official/ours: the prepared folder; compare: folders")
    p.add_argument("--seed", type=int, default=0, help="the replay's draws (prepare) or the side's samplers")
    p.add_argument("--task", choices=sorted(TASKS), default="dmc_walker_walk", help="prepare: the stream's task")
    p.add_argument("--eager", action="store_true", help="ours: without torch.compile (the runs compile)")
    p.add_argument("--own-init", action="store_true",
                   help="ours: start from our own initial parameters drawn from --seed, as a run's (ours_owninit_seed<S>.csv)")
    p.add_argument("--init-seed", type=int, default=0,
                   help="official: the agent seed that draws its initial parameters; other than 0, "
                        "official_init<N>_seed<S>.csv and params0.npz untouched")
    p.add_argument("--params", type=pathlib.Path,
                   help="official: start from these arrays (export's DIR/ours_init<S>.npz): official_from_<name>_seed<S>.csv")
    p.add_argument("--edges", help="compare: the bins' upper edges in env steps, e.g. 3125,6250,9375,12500 "
                                   "(default: the task's, for 1,000 updates)")
    args = p.parse_args(argv)
    if args.side == "prepare":
        if args.stream is None or args.out is None:
            p.error("prepare needs --stream and --out")
        prepare(args.stream, args.updates, args.out, args.seed, args.task)
    elif args.side == "draw":
        if args.out is None:
            p.error("draw needs --out")
        draw_official(args.task, args.init_seed, args.out)
    elif args.side == "export":
        if not args.dir or len(args.dir) != 1 or not (args.dir[0] / "params0.npz").exists():
            p.error("export needs --dir: a probe folder with the official side's params0.npz")
        export_ours(args.dir[0], args.seed)
    elif args.side == "compare":
        if not args.dir:
            p.error("compare needs --dir")
        try:
            edges = tuple(float(x) for x in args.edges.split(",")) if args.edges else None
        except ValueError:
            p.error(f"--edges: env steps separated by commas, e.g. 3125,6250; got {args.edges!r}")
        print(compare(args.dir, edges))
    else:
        if args.dir is None or len(args.dir) != 1 or not (args.dir[0] / "windows.npz").exists():
            p.error("--dir must be one folder made by prepare")
        if args.side == "official":
            official(args.dir[0], args.seed, args.init_seed, args.params)
        else:
            ours(args.dir[0], args.seed, not args.eager, args.own_init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
