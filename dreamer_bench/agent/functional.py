"""Small pure functions shared by the agent's modules."""

from __future__ import annotations

import contextlib
import math
import threading
import zlib

import torch
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·ln(1 + |x|)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·(exp(|x|) − 1), the inverse of symlog."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


# Truncating a unit normal to [-2, 2] leaves a standard deviation of 0.8796; dividing by it
# (× 1.1368) restores unit variance, as the official initialiser does.
TRUNC_CORRECTION = 1.0 / 0.87962566103423978


def init_weight_(weight: torch.Tensor, fan_in: int, scale: float = 1.0) -> torch.Tensor:
    """Truncated normal on [−2σ, 2σ] with σ = 1.1368·√(1/fan_in), times ``scale``."""
    std = TRUNC_CORRECTION * math.sqrt(1.0 / fan_in)
    with torch.no_grad():
        nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
        weight.mul_(scale)
    return weight


_SEEDED = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int, name: str):
    """Seed torch's CPU generator from (seed, name) for the block, then restore it.

    Every module is initialised under its own name, so that switching a technique that changes
    one module's shape (block_gru, twohot) leaves every other module's initial weights identical.
    """
    # torch's CPU generator is one per process: the members of a packed group (runner/pack.py)
    # build their agents in threads at once, so one block at a time
    with _SEEDED, torch.random.fork_rng(devices=[]):
        torch.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
        yield
