"""The first updates from the official initial state, both implementations side by side.

The equivalence fixtures compare one update; this compares where the first N updates lead. Two
steps, each with its own Python:

    # the official agent (tools/official/setup.sh's environment, run from its clone):
    $VENV/bin/python tools/official/first_updates.py official --out DIR [--updates 30]
    # ours, from the same initial parameters on the same batches, once per two-hot summation:
    python tools/official/first_updates.py ours --out DIR

``official`` builds the official agent (size1m, DMC-like vector keys, 3 continuous actions, batch
16×64) at its true initial state (zero-initialised reward and critic outputs), makes N replayed
batches with rewards in [0, 0.3] (a walker early in training) and trains on them, writing the
initial parameters, the batches and its metrics after each update into DIR. ``ours`` loads those
parameters (dreamer_bench.agent.official), trains ours on the same batches, once with
heads.twohot_mean as shipped (the official compiled program's fused pairs) and once with the pairs
summed exactly (what the official code's comment intends, and what ours did before 0.3.0), and
writes DIR/first_updates.csv: per update and side the imagined value, the normalised return,
the advantage's magnitude and the policy entropy. The samplers draw independently on each side
(unlike the fixtures), so single updates differ; the trends are what this shows.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

B, T = 16, 64
# ours key: official key
COLUMNS = {"imag/value": "val", "imag/return_normed": "ret", "imag/advantage_mag": "adv_mag",
           "imag/entropy": "ent/action", "loss/rew": "loss/rew"}


def batches(n: int, deter: int, stoch: int, classes: int) -> list[dict]:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import export_fixtures as ef

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        data = ef.make_batch(rng, "proprio", "continuous", B, T, deter, stoch, classes)
        data["reward"] = rng.uniform(0, 0.3, (B, T + 1)).astype(np.float32)
        data["reward"][data["is_first"]] = 0.0
        data["is_first"][:, 0] = True  # every window starts from the initial latent state
        data["dyn/deter"][:, 0] = 0.0
        data["dyn/stoch"][:, 0] = 0.0
        out.append(data)
    return out


def official_agent(out: pathlib.Path, spaces=None, flags=(), seed: int = 0):
    """The official agent (size1m, batch 16×64; by default DMC-like vector keys and 3 continuous
    actions, else ``spaces`` = (obs_space, act_space)) at its true initial state, host transfers
    allowed, its logdir under ``out``; and its config. ``flags``: official flags on top of the
    fixtures' (export_fixtures.build_config). ``seed``: the agent's seed, which draws its initial
    parameters."""
    import elements
    import jax

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import export_fixtures as ef
    import official_envs
    from dreamerv3 import agent as official

    config, _ = ef.build_config("size1m", list(flags), (B, T))
    obs_space, act_space = spaces or ef.spaces("proprio", "continuous")
    agent_config = dict(**config.agent, logdir=str(out / "logdir"), seed=seed, jax=config.jax, batch_size=B,
                        batch_length=T, replay_context=config.replay_context,
                        report_length=config.report_length, replica=0, replicas=1)
    official_envs.quiet_agent_options()
    agent = official.Agent(obs_space, act_space, elements.Config(agent_config))
    jax.config.update("jax_transfer_guard", "allow")
    return agent, config


def official(out: pathlib.Path, n: int, seed: int = 0, keep: tuple[int, ...] = ()) -> None:
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    agent, config = official_agent(out)
    model = agent.model

    def train_step(carry, batch):  # the official Agent.train less its replay outputs
        carry, obs, prevact, _ = model._apply_replay_context(carry, batch)
        metrics, (carry, entries, outs, mets) = model.opt(model.loss, carry, obs, prevact, training=True, has_aux=True)
        metrics.update(mets)
        model.slowval.update()
        return metrics

    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "params0.npz", **{k: np.asarray(v) for k, v in agent.params.items()})
    rssm = config.agent.dyn.rssm
    data = batches(n, rssm.deter, rssm.stoch, rssm.classes)
    np.savez_compressed(out / "batches.npz", **{f"{k}/{key}": v for k, d in enumerate(data) for key, v in d.items()})
    pure = jax.jit(nj.pure(train_step))
    _, carry = nj.pure(model.init_train)(dict(agent.params), B, seed=jnp.array([0, 0], jnp.uint32))
    state, rows = dict(agent.params), []
    for k, d in enumerate(data):
        draws = jnp.array([k, 1 + seed], jnp.uint32)  # seed 0: the draws of the first version of this script
        state, metrics = pure(state, carry, {key: jnp.asarray(v) for key, v in d.items()}, seed=draws)
        rows.append({key: float(np.asarray(v)) for key, v in metrics.items() if np.asarray(v).ndim == 0})
        if k + 1 in keep:  # every parameter and optimiser moment after this update
            np.savez(out / f"state{k + 1}.npz", **{key: np.asarray(v) for key, v in state.items()})
        print(f"official update {k + 1}/{n}", file=sys.stderr)
    (out / "official.json").write_text(json.dumps({"jax": jax.__version__, "seed": seed, "rows": rows}))


SPACE = {"height": (1,), "orientations": (4,), "velocity": (3,)}  # export_fixtures.PROPRIO, as our agent sees it


def our_agent(params: dict, seed: int = 0):
    """Our agent at the official initial parameters, at the settings ``official`` trained with."""
    from dreamer_bench.agent import ActSpace, Agent, make_config
    from dreamer_bench.agent.official import load_official

    cfg = make_config("size1m", overrides=dict(batch_size=B, batch_length=T, warmup=0, lr=4e-5, actor_unimix=0.0,
                                               seed=seed))
    agent = Agent(SPACE, ActSpace(False, 3), cfg)
    load_official(agent, params)
    return agent


def our_batch(stored: dict, k: int) -> dict:
    """Batch k of DIR/batches.npz as our agent's ``train`` takes it."""
    get = lambda key: stored[f"{k}/{key}"]  # noqa: E731
    batch = {key: get(key).reshape(B, T + 1, *shape) for key, shape in SPACE.items()}
    batch.update(action=get("action"), reward=get("reward"), is_first=get("is_first"), is_last=get("is_last"),
                 is_terminal=get("is_terminal"), deter=get("dyn/deter"), stoch=get("dyn/stoch"))
    return {key: np.array(v) for key, v in batch.items()}


def ours(out: pathlib.Path, exact_too: bool = True) -> None:
    import torch

    from dreamer_bench.agent import heads

    def exact(logits, bins):  # the mirrored pairs subtracted before the sum: uniform bins give 0
        probs = torch.softmax(logits.float(), -1)
        m = bins.shape[0] // 2
        return (probs[..., :m] - probs[..., m + 1:].flip(-1)) @ bins[:m]

    params = dict(np.load(out / "params0.npz"))
    with np.load(out / "batches.npz") as f:
        stored = {k: f[k] for k in f.files}
    n = len({k.split("/")[0] for k in stored})
    theirs = json.loads((out / "official.json").read_text())["rows"]
    lines = ["update,side," + ",".join(COLUMNS)]
    for k, row in enumerate(theirs):
        lines.append(f"{k + 1},official," + ",".join(f"{row.get(v, float('nan')):.6g}" for v in COLUMNS.values()))
    shipped = heads.twohot_mean
    for side, mean in (("ours", shipped), ("ours (exact pairs)", exact))[: 2 if exact_too else 1]:
        heads.twohot_mean = mean
        agent = our_agent(params)
        for k in range(n):
            metrics = agent.train(our_batch(stored, k))
            lines.append(f"{k + 1},{side}," + ",".join(f"{float(metrics[c]):.6g}" for c in COLUMNS))
            print(f"{side} update {k + 1}/{n}", file=sys.stderr)
    heads.twohot_mean = shipped
    (out / "first_updates.csv").write_text("\n".join(lines) + "\n")
    print(out / "first_updates.csv")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["official", "ours"])
    p.add_argument("--out", type=pathlib.Path, required=True)
    p.add_argument("--updates", type=int, default=30, help="updates (official; ours trains on what it wrote)")
    p.add_argument("--seed", type=int, default=0, help="official: its samplers' draws (the batches stay the same)")
    p.add_argument("--keep", type=int, nargs="*", default=[], help="official: save the whole state after these updates")
    p.add_argument("--shipped-only", action="store_true", help="ours: leave out the exact pair sum")
    args = p.parse_args(argv)
    if args.side == "official":
        official(args.out, args.updates, args.seed, tuple(args.keep))
    else:
        if not (args.out / "official.json").exists():
            p.error(f"no {args.out / 'official.json'}: run the official side first")
        ours(args.out, exact_too=not args.shipped_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
