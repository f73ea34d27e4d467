"""Which mirrored bins of the two-hot output layers differ, official and ours, over the updates of
a first_updates.py run: the finding of version 0.4.0 (evidence/learning/README.md).

    python evidence/learning/analysis/mirrored_pairs.py DIR [--updates N] [--seed S]
    python evidence/learning/analysis/mirrored_pairs.py --runs RUN [RUN ...]

DIR: the folder of ``tools/official/first_updates.py official --out DIR --keep U ...``. For every
state<U>.npz there it lists, per head (reward, critic, slow critic), the offsets k from the centre
bin whose pair (centre − k, centre + k) has weights or bias that are not bitwise equal. Then it
trains ours from the same initial parameters on the same batches (its own samples, ``--seed``) and
lists the same after every update where the answer changes and at each U. A pair that no target
reaches has no reason to differ; the official agent keeps all of those equal.

With ``--runs`` it lists the same for the latest checkpoint of each of our run folders (a
training run's own, compiled, update).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

HEADS = {"reward": "rew", "critic": "val", "slow critic": "slowval"}


def differing(weight: np.ndarray, bias: np.ndarray) -> list[int]:
    """Offsets k = 1..m of the pairs whose rows of ``weight`` (bins, features) or bias differ."""
    m = weight.shape[0] // 2
    neg_w, pos_w = weight[:m][::-1], weight[m + 1:]
    neg_b, pos_b = bias[:m][::-1], bias[m + 1:]
    return [int(k) + 1 for k in np.nonzero((neg_w != pos_w).any(1) | (neg_b != pos_b))[0]]


def spans(offsets: list[int]) -> str:
    """[1, 2, 3, 97, 98] → '1–3, 97–98'."""
    if not offsets:
        return "none"
    out, start = [], offsets[0]
    for a, b in zip(offsets, offsets[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}–{a}" if a != start else f"{a}")
            start = b
    return ", ".join(out)


def runs(folders: list[pathlib.Path]) -> None:
    import torch

    for run in folders:
        latest = sorted((run / "checkpoint").glob("ckpt-*"))
        if not latest:
            print(f"{run}: no checkpoint")
            continue
        saved = torch.load(latest[-1] / "agent.pt", map_location="cpu", weights_only=False)
        modules = saved["modules"]
        row = {h: spans(differing(modules[f"{m}.out.weight"].numpy(), modules[f"{m}.out.bias"].numpy()))
               for h, m in (("reward", "reward"), ("critic", "critic"), ("slow critic", "slow_critic"))}
        print(f"{run} after update {saved['updates']}: " + "; ".join(f"{h} {v}" for h, v in row.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=pathlib.Path, nargs="?")
    p.add_argument("--runs", type=pathlib.Path, nargs="+", help="our run folders: their latest checkpoints")
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="our agent's seed (its samplers' draws)")
    args = p.parse_args(argv)
    if args.runs:
        runs(args.runs)
        return 0
    if args.dir is None:
        p.error("give DIR or --runs")
    kept = sorted(int(f.stem[len("state"):]) for f in args.dir.glob("state*.npz"))
    if not (args.dir / "params0.npz").exists():
        p.error(f"no {args.dir / 'params0.npz'}: run tools/official/first_updates.py official --out {args.dir} first")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "official"))
    from first_updates import our_agent, our_batch

    import dreamer_bench

    print(f"differing mirrored pairs (offsets from the centre bin), ours {dreamer_bench.__version__}")
    for u in kept:
        s = np.load(args.dir / f"state{u}.npz")
        row = {h: spans(differing(s[f"{k}/head/logits/kernel"].T, s[f"{k}/head/logits/bias"])) for h, k in HEADS.items()}
        print(f"official after update {u}: " + "; ".join(f"{h} {v}" for h, v in row.items()))
    with np.load(args.dir / "batches.npz") as f:
        stored = {k: f[k] for k in f.files}
    agent = our_agent(dict(np.load(args.dir / "params0.npz")), args.seed)
    heads = {"reward": agent.reward, "critic": agent.critic, "slow critic": agent.slow_critic}
    last = None
    for k in range(args.updates):
        agent.train(our_batch(stored, k))
        row = {h: spans(differing(m.out.weight.detach().numpy(), m.out.bias.detach().numpy())) for h, m in heads.items()}
        if row != last or k + 1 in kept:
            print(f"ours after update {k + 1}: " + "; ".join(f"{h} {v}" for h, v in row.items()), flush=True)
        last = row
    return 0


if __name__ == "__main__":
    sys.exit(main())
