"""Both updates trained on one recorded walker_walk replay stream, batch for batch.

first_updates.py feeds both implementations synthetic batches; this feeds them the real data of
a training run: the first steps of a walker_walk run's replay (ours or the official agent's),
replayed by the official schedule (tests/test_official_schedule.py: our Replay and TrainSchedule
decide as the official loop does) so that update k of the probe gets the windows update k of a
run on that stream would draw. Each side trains its own agent from the same official initial
parameters at the runs' settings (size1m, batch 16×64, LaProp with 1,000 warm-up updates,
actor unimix 0) and keeps its own replay context: the posteriors each update writes back, read
as the context of later windows as of the moment the prefetching stream drew them. A context
step no update has written yet starts from zeros on both sides (in a run it would be the acting
posterior, which the stream does not hold for the official agent). What differs between the
sides is then the update alone, its samplers' draws and the context it wrote; what differs
between streams is the data.

    # the windows, once per stream (any Python with dreamer_bench):
    python tools/official/stream_updates.py prepare --stream RUN_OR_LOGDIR --updates 1000 --out DIR
    # the official agent (tools/official/setup.sh's environment, run from its clone):
    $VENV/bin/python tools/official/stream_updates.py official --dir DIR [--seed 0]
    # ours:
    python tools/official/stream_updates.py ours --dir DIR [--seed 0]
    # per bin of env steps, side by side:
    python tools/official/stream_updates.py compare --dir DIR ...

RUN_OR_LOGDIR: one of our run folders (its checkpoint's replay store) or an official logdir (its
replay chunks). Each side writes DIR/<side>_seed<S>.csv: per update the imagined value, reward,
normalised return, advantage magnitude, policy entropy, replayed reward loss, velocity
reconstruction loss and dynamics loss, named as in our metrics.
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
OBS = {"height": (1,), "orientations": (14,), "velocity": (9,)}  # walker_walk, as our agent sees it
ACT = 6
TRAIN_RATIO = 512.0
# ours key: official key
COLUMNS = {"imag/value": "val", "imag/reward": "rew", "imag/return_normed": "ret", "imag/advantage_mag": "adv_mag",
           "imag/entropy": "ent/action", "loss/rew": "loss/rew", "loss/rec_velocity": "loss/velocity",
           "loss/dyn": "loss/dyn"}
STEP_KEYS = (*OBS, "action", "reward", "is_first", "is_last", "is_terminal")


# ------------------------------------------------------------------------------------------------
# the stream and its windows

def read_stream(path: pathlib.Path, steps: int) -> dict[str, np.ndarray]:
    """The first ``steps`` policy steps of a run's replay, ours or official, as arrays (steps, …)."""
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
                parts.append({k: f[k] for k in STEP_KEYS})
            expect = end
            if expect >= steps:
                break
    else:  # the official replay: chunks named <time>-<uuid>-<successor>-<length>.npz, each naming the next
        files = sorted((path / "replay").glob("*.npz"))
        if not files:
            raise SystemExit(f"{path}: neither our checkpoint/replay nor an official replay/ folder")
        by_uuid = {p.stem.split("-")[1]: p for p in files}
        p, parts, total = files[0], [], 0  # the earliest chunk starts the stream
        while True:
            with np.load(p) as f:
                part = {k: f[k] for k in STEP_KEYS}
            part["height"] = part["height"].reshape(-1, 1)
            parts.append(part)
            total += len(part["reward"])
            successor = p.stem.split("-")[2]
            if total >= steps or successor not in by_uuid:
                break  # enough steps, or the chain ends (a restart begins a new one): checked below
            p = by_uuid[successor]
    stream = {k: np.concatenate([p[k] for p in parts])[:steps] for k in STEP_KEYS}
    if len(stream["reward"]) < steps:
        raise SystemExit(f"{path}: only {len(stream['reward'])} policy steps stored, {steps} asked for")
    return stream


def prepare(stream_path: pathlib.Path, updates: int, out: pathlib.Path, seed: int) -> None:
    """DIR/stream.npz (the steps) and DIR/windows.npz: per update the 16 window starts and the
    number of updates done when the prefetching stream drew them."""
    from dreamer_bench.runner.replay import Replay
    from dreamer_bench.runner.schedule import TrainSchedule, training_start

    # policy steps a run needs for ``updates`` updates (one environment)
    steps = training_start(1, B, T) + int(np.ceil((updates - 1) * B * T / TRAIN_RATIO)) + 1
    data = read_stream(stream_path, steps)
    replay = Replay(OBS, ACT, deter=1, latents=1, streams=1, capacity=10**6, length=T, seed=seed)
    schedule = TrainSchedule(TRAIN_RATIO, B, T, prefetch=True)
    draws, done, inner = [], {"n": 0}, replay.sample

    def sample(batch):
        got = inner(batch)
        draws.append((got["start"].copy(), done["n"]))
        return got

    replay.sample = sample
    zeros = {"deter": np.zeros(1, np.float16), "stoch": np.zeros(1, np.int16)}
    for i in range(steps):
        replay.add(0, {**{k: data[k][i] for k in STEP_KEYS}, **zeros})
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
    meta = {"stream": str(stream_path), "policy_steps": steps, "updates": updates, "seed": seed,
            "reward_per_policy_step": rate}
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


def window_batch(stream: dict, starts: np.ndarray) -> dict[str, np.ndarray]:
    """The batch's steps (B, L, …) with the replay's flags: a window's first step starts a
    sequence, a step followed by a first step ends one."""
    idx = starts[:, None] + np.arange(L)[None]
    batch = {k: stream[k][idx] for k in STEP_KEYS}
    batch["is_first"][:, 0] = True
    batch["is_last"][:, :-1] |= batch["is_first"][:, 1:]
    return batch


# ------------------------------------------------------------------------------------------------
# the comparison

EDGES = (2500, 3500, 4500, 5500, 6500)  # env steps (action repeat 2), as early_metrics.py's bins


def env_steps(update: int) -> int:
    """Env steps of a one-environment run at the start of update ``update`` (1-based): from the
    first update on, one update per B·T / train ratio policy steps, two env steps each (action
    repeat 2)."""
    from dreamer_bench.runner.schedule import training_start

    return 2 * (training_start(1, B, T) + round((update - 1) * B * T / TRAIN_RATIO))


def compare(dirs: list[pathlib.Path], columns: list[str]) -> str:
    """A Markdown table per quantity: a row per probe folder and side (and seed), a column per
    bin of env steps, each the mean over the updates in it."""
    bounds = (0, *EDGES)
    head = ["stream, side"] + [f"({lo / 1000:g}K, {hi / 1000:g}K]" for lo, hi in zip(bounds[:-1], bounds[1:])]
    out = []
    for col in columns:
        lines = [f"{col}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for d in dirs:
            for path in sorted(d.glob("*_seed*.csv")):
                with open(path) as f:
                    rows = list(csv.DictReader(f))
                x = np.array([env_steps(int(r["update"])) for r in rows])
                y = np.array([float(r[col]) for r in rows])
                cells = []
                for lo, hi in zip(bounds[:-1], bounds[1:]):
                    sel = (x > lo) & (x <= hi)
                    cells.append(f"{y[sel].mean():.4g}" if sel.any() else "–")
                lines.append(f"| {d.name}, {path.stem} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


# ------------------------------------------------------------------------------------------------
# the two sides

def write_rows(path: pathlib.Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["update", *COLUMNS])
        w.writeheader()
        w.writerows(rows)
    print(path)


def official(dir_: pathlib.Path, seed: int) -> None:
    import elements
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from first_updates import official_agent

    stream, starts, drawn_after = load(dir_)
    spaces = {k: elements.Space(bool) for k in ("is_first", "is_last", "is_terminal")}
    spaces["reward"] = elements.Space(np.float32)
    spaces.update(height=elements.Space(np.float32, ()), orientations=elements.Space(np.float32, (14,)),
                  velocity=elements.Space(np.float32, (9,)))
    act_space = {"action": elements.Space(np.float32, (ACT,), -1.0, 1.0)}
    agent, config = official_agent(dir_, (spaces, act_space), ["--agent.opt.warmup", "1000"])
    model = agent.model
    rssm = config.agent.dyn.rssm
    if not (dir_ / "params0.npz").exists():
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
    ctx = Context(len(stream["reward"]), rssm.deter, rssm.stoch, rssm.classes, starts, drawn_after)
    rows = []
    for k in range(len(starts)):
        batch = window_batch(stream, starts[k])
        batch["height"] = batch["height"][..., 0]
        deter0, stoch0 = ctx.before_update(k)
        batch["dyn/deter"] = np.zeros((B, L, rssm.deter), np.float32)
        batch["dyn/stoch"] = np.zeros((B, L, rssm.stoch, rssm.classes), np.float32)
        batch["dyn/deter"][:, 0], batch["dyn/stoch"][:, 0] = deter0, stoch0
        batch["consec"] = np.zeros((B, L), np.int32)
        batch["stepid"] = np.zeros((B, L, 20), np.uint8)
        draws = jnp.array([k, 1 + seed], jnp.uint32)
        state, (metrics, dyn) = pure(state, carry, {key: jnp.asarray(v) for key, v in batch.items()}, seed=draws)
        ctx.write(k, np.asarray(dyn["deter"], np.float32), np.asarray(dyn["stoch"], np.float32))
        rows.append({"update": k + 1, **{c: float(np.asarray(metrics[o])) for c, o in COLUMNS.items()}})
        if (k + 1) % 50 == 0:
            print(f"official update {k + 1}/{len(starts)}", file=sys.stderr, flush=True)
    write_rows(dir_ / f"official_seed{seed}.csv", rows)


def ours(dir_: pathlib.Path, seed: int, compile_: bool) -> None:
    from dreamer_bench.agent import ActSpace, Agent, make_config
    from dreamer_bench.agent.official import load_official

    if not (dir_ / "params0.npz").exists():
        raise SystemExit(f"no {dir_ / 'params0.npz'}: run the official side first (it writes the initial parameters)")
    stream, starts, drawn_after = load(dir_)
    cfg = make_config("size1m", overrides=dict(batch_size=B, batch_length=T, actor_unimix=0.0, seed=seed,
                                               compile=compile_))
    agent = Agent(OBS, ActSpace(False, ACT), cfg)
    load_official(agent, dict(np.load(dir_ / "params0.npz")))
    ctx = Context(len(stream["reward"]), cfg.deter, cfg.latents, cfg.classes, starts, drawn_after)
    rows = []
    for k in range(len(starts)):
        batch = window_batch(stream, starts[k])
        deter0, stoch0 = ctx.before_update(k)
        batch["deter"] = np.zeros((B, L, cfg.deter), np.float32)
        batch["stoch"] = np.zeros((B, L, cfg.latents, cfg.classes), np.float32)
        batch["deter"][:, 0], batch["stoch"][:, 0] = deter0, stoch0
        metrics = agent.train(batch)
        ctx.write(k, batch["deter"][:, 1:].cpu().numpy(), batch["stoch"][:, 1:].cpu().numpy())
        rows.append({"update": k + 1, **{c: float(metrics[c]) for c in COLUMNS}})
        if (k + 1) % 50 == 0:
            print(f"ours update {k + 1}/{len(starts)}", file=sys.stderr, flush=True)
    write_rows(dir_ / f"ours_seed{seed}.csv", rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["prepare", "official", "ours", "compare"])
    p.add_argument("--stream", type=pathlib.Path, help="prepare: our run folder or an official logdir")
    p.add_argument("--updates", type=int, default=1000, help="prepare: updates (batches) to draw")
    p.add_argument("--out", type=pathlib.Path, help="prepare: the probe's folder")
    p.add_argument("--dir", type=pathlib.Path, nargs="+", help="official/ours: the prepared folder; compare: folders")
    p.add_argument("--seed", type=int, default=0, help="the replay's draws (prepare) or the side's samplers")
    p.add_argument("--eager", action="store_true", help="ours: without torch.compile (the runs compile)")
    args = p.parse_args(argv)
    if args.side == "prepare":
        if args.stream is None or args.out is None:
            p.error("prepare needs --stream and --out")
        prepare(args.stream, args.updates, args.out, args.seed)
    elif args.side == "compare":
        if not args.dir:
            p.error("compare needs --dir")
        print(compare(args.dir, list(COLUMNS)))
    else:
        if args.dir is None or len(args.dir) != 1 or not (args.dir[0] / "windows.npz").exists():
            p.error("--dir must be one folder made by prepare")
        run = official if args.side == "official" else (lambda d, s: ours(d, s, not args.eager))
        run(args.dir[0], args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
