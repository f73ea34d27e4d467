"""The isolation check: switching one technique off changes exactly what its registry entry says.

Two agents of the debug preset are built from the same seed, one full and one with the technique
off, and compared where the registry's ``Isolation`` says the technique may act: parameters at
initialisation, every loss term on the same batch with the same random streams, and (for
techniques that act in the optimiser or on gradients alone) one update from the same state.
``problems(name)`` lists what disagrees with the entry; an empty list is a pass. The tests run it
for every technique of the registry, and for users' techniques (``Plugin.isolation``) once loaded.
"""

from __future__ import annotations

import zlib

import torch

from . import techniques
from .agent import ActSpace, Agent
from .config import make_config
from .synthetic import random_batch

BOTH = {"image": (64, 64, 3), "vector": (3,)}
IMAGE = {"image": (64, 64, 3)}
DISCRETE = ActSpace(True, 3)


def pair(name: str, obs: dict = BOTH, **overrides) -> tuple[Agent, Agent]:
    """The full agent and the agent with ``name`` off, built from the same seed (a user's
    technique, agent/plugins.py, is loaded into both): the debug preset with the full 255 two-hot
    bins, whose inner bins (``perturb_``) predict values of a few units, where the preset's 5
    bins (0, ±2.2e4, ±4.85e8) predict ~1e7 as soon as a head has learned anything."""
    overrides = {"bins": 255, **overrides}
    if techniques.BY_NAME[name].plugin:
        overrides = {**overrides, "plugins": (name,)}
    full = Agent(obs, DISCRETE, make_config("debug", overrides=overrides))
    off = Agent(obs, DISCRETE, make_config("debug", overrides=overrides, off=[name]))
    return full, off


def differing_params(a: Agent, b: Agent) -> set[str]:
    sa, sb = a.state_dict(), b.state_dict()
    return {k for k in set(sa) | set(sb)
            if k not in sa or k not in sb or sa[k].shape != sb[k].shape or not torch.equal(sa[k], sb[k])}


def perturb_(agent: Agent) -> None:
    """Add the same noise to same-named head parameters of any agent, so that zero-initialised
    heads predict something and the return statistics are not at their start. The two-hot output
    layers get it on the 33 bins nearest 0 only: noise on the outer bins (up to ±4.85e8) would
    make every prediction ~1e7, and rewards of a few units would vanish in its rounding."""
    with torch.no_grad():
        for key, p in agent.named_parameters():
            if not key.startswith(("reward.", "critic.", "actor.", "cont.")):
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            noise = 0.3 * torch.randn(p.shape, generator=g)
            if key.startswith(("reward.out.", "critic.out.")) and agent.cfg.on("twohot"):
                centre = p.shape[0] // 2
                noise[: centre - 16] = 0.0  # the 33 bins nearest 0 keep theirs
                noise[centre + 17:] = 0.0
            p.add_(noise)
        if agent.slow_critic is not None:
            agent.slow_critic.load_state_dict(agent.critic.state_dict())
        agent.retnorm.low.fill_(-5.0)
        agent.retnorm.high.fill_(5.0)


def param_problems(name: str) -> list[str]:
    expected = techniques.BY_NAME[name].isolation.params
    full, off = pair(name)
    diff = differing_params(full, off)
    if isinstance(expected, str):  # a prefix whose keys go away
        if not diff or not all(k.startswith(expected) for k in diff):
            return [f"{name}: parameters {sorted(diff)} differ, expected those under {expected!r}"]
        if any(k.startswith(expected) for k in off.state_dict()):
            return [f"{name}: keys under {expected!r} remain when it is off"]
        return []
    return [] if diff == set(expected) else [f"{name}: parameters {sorted(diff)} differ, expected {sorted(expected)}"]


def loss_problems(name: str) -> list[str]:
    technique = techniques.BY_NAME[name]
    expected = technique.isolation.losses
    if expected is None:
        return []
    # a technique that only acts on one kind of observation must change nothing on the other
    obs = IMAGE if technique.needs == "vector" else BOTH
    full, off = pair(name, obs)
    perturb_(full)
    perturb_(off)
    batch = random_batch(full.obs_space, full.act_space, full.cfg)
    lf, lo = full.loss_terms(batch), off.loss_terms(batch)
    changed = {k for k in set(lf) | set(lo) if k not in lf or k not in lo or not torch.equal(lf[k], lo[k])}
    return [] if changed == set(expected) else [f"{name}: loss terms {sorted(changed)} differ, expected {sorted(expected)}"]


def update_problems(name: str) -> list[str]:
    """A technique that acts on the update alone: the same forward pass, another update."""
    if not techniques.BY_NAME[name].isolation.update:
        return []
    full, off = pair(name, warmup=0)  # warm-up 0: the first update already moves the parameters
    perturb_(full)  # zero-initialised heads would pass no gradient back to the features
    perturb_(off)
    batch = random_batch(full.obs_space, full.act_space, full.cfg)
    before = {k: v.clone() for k, v in full.state_dict().items()}
    mf, mo = full.train(batch), off.train(batch)
    problems = [f"{name}: the forward pass changed ({k}: {mf[k]} → {mo[k]})"
                for k in mf if k.startswith("loss/") and k in mo and mf[k] != mo[k]]
    moved = {k for k, v in full.state_dict().items() if not torch.equal(v, before[k])}
    if not moved & differing_params(full, off):
        problems.append(f"{name}: one update with it off moved the parameters exactly as the full agent's")
    return problems


def problems(name: str) -> list[str]:
    """Everything in which switching ``name`` off disagrees with its registry entry."""
    return param_problems(name) + loss_problems(name) + update_problems(name)
