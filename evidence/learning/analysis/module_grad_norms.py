"""Our update on a stream probe's batches, with the raw gradient norm per module (and per tensor
of the recurrent core) before clipping, per update: where the logged gradient norm comes from.

    python evidence/learning/analysis/module_grad_norms.py --dir PROBE --seed S [--params FILE [--ours-part P,…]] \
        --out OUT.json [--eager] [--updates N]

PROBE: a folder of tools/official/stream_updates.py prepare (its windows, replayed as that tool's
``ours`` side does, context included). Without --params ours starts from its own initial draw
(seed S, as a run's); with --params from official arrays (the probe's params0.npz, or another
official draw) loaded by load_official; with --params and --ours-part P1,P2,… from those official
arrays except the parameters whose names start with one of the prefixes, which keep our own draw
(seed S): which part of a draw carries an effect. Writes OUT.json: one object per update, module → norm,
``total`` the norm the optimiser logs. Prints the means over updates 1–50 and 51–100.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "official"))
import stream_updates as su  # noqa: E402  (beside the other official tools)


def group(name: str) -> str:
    """The recurrent core per tensor, everything else per top-level module."""
    return name if name.startswith("rssm.core.") else ".".join(name.split(".")[:2]) if name.startswith("rssm.") \
        else name.split(".")[0]


def main() -> None:
    import torch

    from dreamer_bench.agent import ActSpace, Agent, make_config
    from dreamer_bench.agent.official import load_official

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--eager", action="store_true", help="without torch.compile (the runs and probes compile)")
    parser.add_argument("--ours-part", default="", help="with --params: name prefixes that keep our own draw")
    parser.add_argument("--updates", type=int, default=0, help="only the first N of the probe's updates (0: all)")
    args = parser.parse_args()
    task = su.task_of(args.dir)
    cfg = make_config("size1m", overrides=dict(batch_size=su.B, batch_length=su.T, actor_unimix=0.0, seed=args.seed,
                                               compile=not args.eager))
    agent = Agent(task.obs, ActSpace(task.discrete, task.act), cfg)
    if args.ours_part and not args.params:
        parser.error("--ours-part needs --params")
    own = {k: v.detach().clone() for k, v in agent.state_dict().items()}
    if args.params:
        load_official(agent, dict(np.load(args.params)))
        prefixes = tuple(x for x in args.ours_part.split(",") if x)
        kept = [k for k in own if k.startswith(prefixes)] if prefixes else []
        if prefixes and not kept:
            parser.error(f"--ours-part {args.ours_part}: no parameter of ours starts with it")
        state = agent.state_dict()
        with torch.no_grad():
            for k in kept:
                state[k].copy_(own[k])
    rows: list[dict[str, float]] = []
    step = agent.optimizer.step

    def step_and_record():  # the gradients as the optimiser receives them, before any clipping
        squares: dict[str, float] = {}
        for name, p in agent.named_parameters():
            if p.grad is not None:
                squares[group(name)] = squares.get(group(name), 0.0) + float(p.grad.double().square().sum())
        rows.append({k: v ** 0.5 for k, v in squares.items()})
        return step()

    agent.optimizer.step = step_and_record
    for metrics in su.train_ours(agent, args.dir, args.updates):
        rows[-1]["total"] = float(metrics["grad_norm"])  # (the optimiser step appended this update's row)
    args.out.write_text(json.dumps(rows))
    for lo, hi in ((1, 50), (51, 100)):
        part = rows[lo - 1:hi]
        if part:
            top = sorted(part[0], key=lambda key: -np.mean([r[key] for r in part]))[:6]
            print(f"updates {lo}-{hi}: " + ", ".join(f"{key} {np.mean([r[key] for r in part]):.4g}" for key in top))


if __name__ == "__main__":
    main()
