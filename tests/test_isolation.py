"""Switching a technique off changes exactly its own piece and nothing else.

Two agents are built from the same seed, one full and one with a single technique off, and
compared (a) parameter by parameter at initialisation and (b) loss term by loss term on the same
batch with the same random streams. The expected differences are written out for every
technique of the registry; techniques whose "off" changes the latent samples themselves
(``unimix``, ``block_gru``, ``symlog`` on vectors) are compared on parameters here and on their
pieces in their own test files.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest
import torch

from dreamer_bench.agent import techniques
from dreamer_bench.agent.losses import kl_scales

from conftest import BOTH, DISCRETE, IMAGE, make_agent, make_batch

PACKAGE = Path(__file__).resolve().parents[1] / "dreamer_bench"

# Parameters (state-dict keys) whose initial value or presence differs when the technique is off.
PARAM_DIFF = {
    "symlog": set(),
    "twohot": {f"{m}.out.{p}" for m in ("reward", "critic", "slow_critic") for p in ("weight", "bias")},
    "kl_balance": set(),
    "free_bits": set(),
    "unimix": set(),
    "return_norm": set(),
    "repval": set(),
    "slow_critic": "slow_critic.",  # every key under this prefix disappears
    "block_gru": {"rssm.core.hidden.weight", "rssm.core.gates.weight"},
    "agc": set(),
    "laprop": set(),
    "zero_init": {"reward.out.weight", "critic.out.weight", "slow_critic.out.weight", "actor.out.weight"},
    "recon_grad": set(),
    "reward_grad": set(),
}

# Loss terms whose value differs on the same batch (None: not comparable, see module doc).
LOSS_DIFF = {
    "symlog": set(),  # on image observations symlog touches nothing
    "twohot": {"rew", "value", "repval", "policy"},
    "kl_balance": set(),  # only the scales change, checked below
    "free_bits": {"dyn", "rep"},
    "unimix": None,
    "return_norm": {"policy"},
    "repval": {"repval"},  # absent when off
    "slow_critic": {"value", "repval"},
    "block_gru": None,
    "agc": set(),
    "laprop": set(),
    "zero_init": {"rew", "value", "repval", "policy"},
    "recon_grad": set(),  # forward identical; gradients checked in test_grad_ablations
    "reward_grad": set(),
}


def test_tables_cover_the_registry():
    assert set(PARAM_DIFF) == set(techniques.NAMES)
    assert set(LOSS_DIFF) == set(techniques.NAMES)


@pytest.mark.parametrize("name", techniques.NAMES)
def test_switch_lives_where_the_registry_says(name):
    source = (PACKAGE / techniques.BY_NAME[name].where).read_text()
    assert re.search(rf'\.on\("{name}"\)', source), f"{name} is not switched in {techniques.BY_NAME[name].where}"


def differing_params(a, b) -> set[str]:
    sa, sb = a.state_dict(), b.state_dict()
    keys = set(sa) | set(sb)
    return {k for k in keys if k not in sa or k not in sb or sa[k].shape != sb[k].shape or not torch.equal(sa[k], sb[k])}


@pytest.mark.parametrize("name", techniques.NAMES)
def test_off_changes_only_its_own_parameters(name):
    full = make_agent(BOTH, DISCRETE)
    off = make_agent(BOTH, DISCRETE, off=(name,))
    diff = differing_params(full, off)
    expected = PARAM_DIFF[name]
    if isinstance(expected, str):
        assert diff and all(k.startswith(expected) for k in diff), diff
        assert not any(k.startswith(expected) for k in off.state_dict())
    else:
        assert diff == expected


def perturb_(agent) -> None:
    """Add the same noise to same-named head parameters of any agent, so they predict non-zero."""
    with torch.no_grad():
        for key, p in agent.named_parameters():
            if not key.startswith(("reward.", "critic.", "actor.", "cont.")):
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        if agent.slow_critic is not None:
            agent.slow_critic.load_state_dict(agent.critic.state_dict())
        agent.retnorm.low.fill_(-5.0)
        agent.retnorm.high.fill_(5.0)


@pytest.mark.parametrize("name", [n for n in techniques.NAMES if LOSS_DIFF[n] is not None])
def test_off_changes_only_its_own_loss_terms(name):
    obs = IMAGE if name == "symlog" else BOTH
    full = make_agent(obs, DISCRETE)
    off = make_agent(obs, DISCRETE, off=(name,))
    perturb_(full)
    perturb_(off)
    batch = make_batch(full)
    lf, lo = full.loss_terms(batch), off.loss_terms(batch)
    expected = LOSS_DIFF[name]
    changed = {k for k in set(lf) | set(lo) if k not in lf or k not in lo or not torch.equal(lf[k], lo[k])}
    assert changed == expected, (changed, expected)


def test_kl_balance_changes_only_the_two_kl_scales():
    full = make_agent(BOTH, DISCRETE)
    off = make_agent(BOTH, DISCRETE, off=("kl_balance",))
    sf, so = full.loss_scales(), off.loss_scales()
    assert {k for k in sf if sf[k] != so[k]} == {"dyn", "rep"}
    assert (sf["dyn"], sf["rep"]) == (1.0, 0.1)
    assert so["dyn"] == so["rep"] == pytest.approx(0.55)
    assert kl_scales(off.cfg) == pytest.approx((0.55, 0.55))
