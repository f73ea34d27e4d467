"""Updates from a later official state, both implementations on the same samples.

first_updates.py lets each side draw its own samples, so it shows where hundreds of updates lead
but not why two runs part. This starts from the whole official state after update S of such a
run (parameters, slow critic, LaProp's moments and count, return statistics: first_updates.py
official --keep S) and runs the next K updates twice: the official agent, which records the
samples it draws, then ours with those samples injected (Agent.inject_draws), as the equivalence
fixtures do for updates 1-3. Whatever differs then comes from the arithmetic, at a state where
the heads have learned rather than at the zero-initialised start.

    $VENV/bin/python tools/official/later_updates.py official --dir DIR --start S [--updates K]
    python tools/official/later_updates.py ours --dir DIR --start S

``official`` continues with the samplers' seeds of first_updates.py (so its metrics repeat that
run's, a check that the state was restored whole) and writes DIR/later<S>.npz: per update its
samples, scalar metrics and return statistics, and the state after the last update. ``ours``
prints per update the relative error of each metric both sides log, and at the end the
parameters that differ most.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from first_updates import B, official_agent, our_agent, our_batch  # noqa: E402  (beside this script)

# ours: official metric
METRICS = {"imag/value": "val", "imag/return_normed": "ret", "imag/advantage_mag": "adv_mag",
           "imag/entropy": "ent/action", "imag/reward": "rew", "loss/rew": "loss/rew", "loss/value": "loss/value",
           "loss/policy": "loss/policy", "grad_norm": "opt/grad_norm"}
MODULES = ("dyn/", "enc/", "dec/", "pol/", "val/", "rew/", "con/")


def official(out: pathlib.Path, start: int, n: int) -> None:
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    import export_fixtures as ef
    from dreamerv3 import agent as official_module

    agent, _ = official_agent(out)
    model = agent.model
    loss, restore = ef.capture(model, official_module, "continuous")

    def train_step(carry, batch):  # first_updates.py's, with the samples kept
        carry, obs, prevact, _ = model._apply_replay_context(carry, batch)
        metrics, (carry, entries, outs, mets) = model.opt(loss, carry, obs, prevact, training=True, has_aux=True)
        metrics.update(mets)
        model.slowval.update()
        return metrics, outs

    state = {k: jnp.asarray(v) for k, v in np.load(out / f"state{start}.npz").items()}
    seed = json.loads((out / "official.json").read_text()).get("seed", 0)
    with np.load(out / "batches.npz") as f:
        stored = {k: f[k] for k in f.files}
    pure = jax.jit(nj.pure(train_step))
    _, carry = nj.pure(model.init_train)(dict(agent.params), B, seed=jnp.array([0, 0], jnp.uint32))
    record = {}
    for k in range(start, start + n):  # update k + 1 trains on batch k
        batch = {key[len(f"{k}/"):]: jnp.asarray(v) for key, v in stored.items() if key.startswith(f"{k}/")}
        state, (metrics, outs) = pure(state, carry, batch, seed=jnp.array([k, 1 + seed], jnp.uint32))
        p = f"u{k + 1}/"
        record.update({p + key: value for key, value in ef.samples(outs, "continuous").items()})
        for key, value in metrics.items():
            if np.asarray(value).ndim == 0:
                record[p + f"metric/{key}"] = np.asarray(value)
        record[p + "retnorm"] = np.array([state["retnorm/lo/value"], state["retnorm/hi/value"]], np.float32)
        print(f"official update {k + 1}/{start + n}", file=sys.stderr)
    restore()
    record.update({f"state/{key}": np.asarray(v) for key, v in state.items()})
    np.savez_compressed(out / f"later{start}.npz", **record)
    print(out / f"later{start}.npz")


def load_state(agent, state: dict) -> None:
    """The whole official state into ours: parameters and slow critic, LaProp's moments and
    count, the return statistics."""
    import torch

    from dreamer_bench.agent.official import load_official, to_ours

    load_official(agent, {k: v for k, v in state.items() if k.startswith(MODULES + ("slowval/",))})
    keys = [k for k in state if k.startswith(MODULES)]
    second = to_ours({k: state[f"opt/state/1/1/{k}"] for k in keys}, agent.cfg, agent.obs_space, False)
    first = to_ours({k: state[f"opt/state/2/1/{k}"] for k in keys}, agent.cfg, agent.obs_space, False)
    names = {id(p): n for n, p in agent.named_parameters()}
    opt = agent.optimizer
    with torch.no_grad():
        for i, param in enumerate(opt.params):
            name = names[id(param)]
            opt.second[i].copy_(torch.as_tensor(np.ascontiguousarray(second[name])))
            opt.momentum[i].copy_(torch.as_tensor(np.ascontiguousarray(first[name])))
    opt.step_count = int(state["opt/step/value"])
    agent.retnorm.low.fill_(float(state["retnorm/lo/value"]))
    agent.retnorm.high.fill_(float(state["retnorm/hi/value"]))


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def ours(out: pathlib.Path, start: int) -> None:
    import torch

    from dreamer_bench.agent.official import to_ours

    with np.load(out / f"later{start}.npz") as f:
        later = {k: f[k] for k in f.files}
    with np.load(out / "batches.npz") as f:
        stored = {k: f[k] for k in f.files}
    state = dict(np.load(out / f"state{start}.npz"))
    updates = sorted({int(k.split("/")[0][1:]) for k in later if k.startswith("u")})
    agent = our_agent({k: v for k, v in state.items() if k.startswith(MODULES + ("slowval/",))})
    load_state(agent, state)
    agent.inject_draws([{"post": later[f"u{u}/post"].transpose(1, 0, 2), "prior": later[f"u{u}/prior"].transpose(1, 0, 2),
                         "action": np.ascontiguousarray(later[f"u{u}/act_noise"].transpose(1, 0, 2))} for u in updates])
    torch.set_flush_denormal(True)  # as XLA on CPU
    print("update | " + " | ".join(METRICS) + " | retnorm   (relative errors, ours against the official)")
    for u in updates:
        metrics = agent.train(our_batch(stored, u - 1))
        errs = []
        for key, theirs in METRICS.items():
            errs.append(f"{rel(float(metrics[key]), later[f'u{u}/metric/{theirs}']):.1e}"
                        if f"u{u}/metric/{theirs}" in later else "-")
        stats = [agent.retnorm.low.item(), agent.retnorm.high.item()]
        print(f"{u} | " + " | ".join(errs) + f" | {rel(stats, later[f'u{u}/retnorm']):.1e}", flush=True)
    torch.set_flush_denormal(False)
    final = {k[len("state/"):]: v for k, v in later.items() if k.startswith("state/")}
    theirs = to_ours({k: v for k, v in final.items() if k.startswith(MODULES)}, agent.cfg, agent.obs_space, False)
    mine = {k: v.detach().double().numpy() for k, v in agent.named_parameters()}
    begin = to_ours({k: v for k, v in state.items() if k.startswith(MODULES)}, agent.cfg, agent.obs_space, False)
    rows = sorted(((rel(mine[k] - begin[k], theirs[k] - begin[k]), k) for k in theirs if k in mine), reverse=True)
    print(f"after update {updates[-1]}: relative error of each parameter's change since update {start}, "
          "per module the largest and the median")
    for module in sorted({k.split(".")[0] for _, k in rows}):
        errs = [(e, k) for e, k in rows if k.split(".")[0] == module]
        print(f"  {module}: largest {errs[0][0]:.2e} ({errs[0][1]}), median {np.median([e for e, _ in errs]):.2e}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["official", "ours"])
    p.add_argument("--dir", type=pathlib.Path, required=True, help="a first_updates.py official --keep S folder")
    p.add_argument("--start", type=int, required=True, help="S: the update whose state to start from")
    p.add_argument("--updates", type=int, default=20, help="K (official; ours replays what it wrote)")
    args = p.parse_args(argv)
    need = args.dir / (f"state{args.start}.npz" if args.side == "official" else f"later{args.start}.npz")
    if not need.exists():
        p.error(f"no {need}: run first_updates.py official --keep {args.start}, then this script's official side")
    if args.side == "official":
        official(args.dir, args.start, args.updates)
    else:
        ours(args.dir, args.start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
