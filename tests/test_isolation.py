"""Switching a technique off changes exactly its own piece and nothing else.

The expectations live with each technique in the registry (``Isolation`` in
``dreamer_bench/agent/techniques.py``); the check is ``dreamer_bench/agent/isolation.py``: two
agents built from the same seed, one full and one with the technique off, compared on parameters at
initialisation, on every loss term of one batch with the same random streams, and, for techniques
that act on the update alone (``agc``, ``laprop``, ``recon_grad``, ``reward_grad``), on one update
from the same state. Techniques whose "off" changes the latent samples themselves (``unimix``,
``block_gru``) are compared on parameters here and on their pieces in their own test files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dreamer_bench.agent import isolation, techniques
from dreamer_bench.agent.losses import kl_scales
from dreamer_bench.agent.optim import Optimizer

from conftest import BOTH, DISCRETE, make_agent

PACKAGE = Path(__file__).resolve().parents[1] / "dreamer_bench"


@pytest.mark.parametrize("name", techniques.NAMES)
def test_switch_lives_where_the_registry_says(name):
    source = (PACKAGE / techniques.BY_NAME[name].where).read_text()
    assert re.search(rf'\.on\("{name}"\)', source), f"{name} is not switched in {techniques.BY_NAME[name].where}"


@pytest.mark.parametrize("name", techniques.NAMES)
def test_off_changes_only_its_own_parameters(name):
    assert isolation.param_problems(name) == []


@pytest.mark.parametrize("name", [n for n in techniques.NAMES if techniques.BY_NAME[n].isolation.losses is not None])
def test_off_changes_only_its_own_loss_terms(name):
    assert isolation.loss_problems(name) == []


@pytest.mark.parametrize("name", [n for n in techniques.NAMES if techniques.BY_NAME[n].isolation.update])
def test_a_technique_of_the_update_changes_the_update_and_not_the_forward_pass(name):
    assert isolation.update_problems(name) == []


def test_the_check_fails_when_a_switch_is_ignored(monkeypatch):
    # an optimiser that clips whatever the configuration says: "agc" off would change nothing
    original = Optimizer.__init__

    def always_clips(self, params, cfg):
        original(self, params, cfg)
        self.agc = True

    monkeypatch.setattr(Optimizer, "__init__", always_clips)
    assert any("exactly as the full agent" in p for p in isolation.problems("agc"))
    # and a registry entry that promises the wrong loss terms is caught too
    monkeypatch.setitem(techniques.BY_NAME, "free_bits",
                        techniques.Technique("free_bits", "on", "off", "agent/losses.py",
                                             techniques.Isolation(losses=frozenset({"dyn"}))))
    assert isolation.loss_problems("free_bits") == ["free_bits: loss terms ['dyn', 'rep'] differ, expected ['dyn']"]


def test_kl_balance_changes_only_the_two_kl_scales():
    full = make_agent(BOTH, DISCRETE)
    off = make_agent(BOTH, DISCRETE, off=("kl_balance",))
    sf, so = full.loss_scales(), off.loss_scales()
    assert {k for k in sf if sf[k] != so[k]} == {"dyn", "rep"}
    assert (sf["dyn"], sf["rep"]) == (1.0, 0.1)
    assert so["dyn"] == so["rep"] == pytest.approx(0.55)
    assert kl_scales(off.cfg) == pytest.approx((0.55, 0.55))
