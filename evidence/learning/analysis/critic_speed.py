"""How many updates does the critic head need to move its prediction from 0 to a target under the
agent's optimiser (LaProp lr 4e-5, AGC, 1,000-update warm-up)? Fixed random features, constant target.

Usage: python critic_speed.py TARGET [TECHNIQUE_OFF ...]
Measured (2026-11-25): targets 20 and 250 both reach 50% at 1,250 updates and 90% at 1,750.
"""
import sys

import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.heads import ValueHead
from dreamer_bench.agent.optim import Optimizer
torch.set_num_threads(1); torch.manual_seed(0)
target = float(sys.argv[1]); off = tuple(sys.argv[2:])
cfg = make_config("size1m", off=off)
head = ValueHead(cfg.feat, cfg.critic_layers, cfg)
opt = Optimizer(list(head.parameters()), cfg)
feat = torch.randn(1024, cfg.feat)
y = torch.full((1024,), target)
marks = {}
for k in range(1, 20001):
    for p in head.parameters(): p.grad = None
    out = head(feat); head.loss(out, y).mean().backward(); opt.step()
    if k % 250 == 0:
        pred = head.pred(out.detach()).mean().item()
        for f in (0.5, 0.9):
            if f not in marks and pred >= f * target: marks[f] = k
        if 0.9 in marks: break
print(f"target {target} off={off}: 50% at {marks.get(0.5)} updates, 90% at {marks.get(0.9)} updates")
