"""Synthetic replay batches of the agent's batch layout, for the benchmark and tests."""

from __future__ import annotations

from typing import Mapping

import torch

from .agent import ActSpace
from .config import AgentConfig


def random_batch(obs_space: Mapping[str, tuple], act_space: ActSpace, cfg: AgentConfig,
                 seed: int = 0, batch_size: int | None = None, length: int | None = None) -> dict:
    """A batch of B sequences of T + 1 steps with random observations, actions and flags.

    Episodes start at step 0 and, with small probability, at later steps; the replay context is
    zeros, as for windows whose context step was never visited by the policy.
    """
    g = torch.Generator().manual_seed(seed)
    b = batch_size or cfg.batch_size
    t1 = (length or cfg.batch_length) + 1
    batch: dict[str, torch.Tensor] = {}
    for key, shape in obs_space.items():
        if len(shape) == 3:
            batch[key] = torch.randint(0, 256, (b, t1, *shape), generator=g, dtype=torch.uint8)
        else:
            batch[key] = 3.0 * torch.randn(b, t1, *shape, generator=g)
    if act_space.discrete:
        index = torch.randint(0, act_space.size, (b, t1), generator=g)
        batch["action"] = torch.nn.functional.one_hot(index, act_space.size).float()
    else:
        batch["action"] = torch.randn(b, t1, act_space.size, generator=g)
    batch["reward"] = torch.randn(b, t1, generator=g)
    is_first = torch.rand(b, t1, generator=g) < 0.05
    is_first[:, 0] = True
    is_last = torch.zeros(b, t1, dtype=torch.bool)
    is_last[:, :-1] = is_first[:, 1:]
    batch["is_first"] = is_first
    batch["is_last"] = is_last
    batch["is_terminal"] = is_last & (torch.rand(b, t1, generator=g) < 0.5)
    batch["deter"] = torch.zeros(b, t1, cfg.deter)
    batch["stoch"] = torch.zeros(b, t1, cfg.latents, cfg.classes)
    return batch
