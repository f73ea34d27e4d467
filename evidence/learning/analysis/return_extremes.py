"""The extremes of our normalised imagined returns over the updates of a first_updates.py run,
beside the official ones (its ``ret_min``, ``ret_max``, ``ret_rate``): where the two drift apart.

    python evidence/learning/analysis/return_extremes.py DIR [--updates N] [--every K] [--seed S]

DIR: the folder of ``tools/official/first_updates.py official --out DIR`` (params0.npz,
batches.npz, official.json). Trains ours from the same initial parameters on the same batches, as
first_updates.py does, and prints every K updates the minimum, maximum and share beyond ±1 of
(R − P5)/S over all imagined steps, ours then the official.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=pathlib.Path)
    p.add_argument("--updates", type=int, default=None)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="our agent's seed (its samplers' draws)")
    args = p.parse_args(argv)
    if not (args.dir / "official.json").exists():
        p.error(f"no {args.dir / 'official.json'}: run tools/official/first_updates.py official --out {args.dir} first")
    from dreamer_bench.agent import losses as L

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "official"))
    from first_updates import our_agent, our_batch

    params = dict(np.load(args.dir / "params0.npz"))
    with np.load(args.dir / "batches.npz") as f:
        stored = {k: f[k] for k in f.files}
    theirs = json.loads((args.dir / "official.json").read_text())["rows"]
    n = min(args.updates or len(theirs), len(theirs))
    captured = {}
    original = L.lambda_return

    def kept(*a, **k):
        captured["R"] = original(*a, **k)
        return captured["R"]

    L.lambda_return = kept
    agent = our_agent(params, args.seed)
    print("update | ours min, max, share beyond ±1 | official min, max, share")
    for k in range(n):
        metrics = agent.train(our_batch(stored, k))
        if (k + 1) % args.every == 0:
            normed = (captured["R"].detach() - agent.retnorm.offset()) / metrics["imag/return_scale"]
            o = theirs[k]
            print(f"{k + 1} | {normed.min().item():.3f}, {normed.max().item():.3f}, "
                  f"{(normed.abs() >= 1).float().mean().item():.4f} | "
                  f"{o['ret_min']:.3f}, {o['ret_max']:.3f}, {o['ret_rate']:.4f}", flush=True)
    L.lambda_return = original
    return 0


if __name__ == "__main__":
    sys.exit(main())
