"""Packed updates (dreamer_bench/agent/packed.py): slice k of a packed update of K seeds is the
update ``Agent.train`` makes for seed k alone — losses, gradients and the update direction after 3
updates, with techniques on and off — and everything that must stay per seed stays per seed."""

from __future__ import annotations

import pytest
import torch

from conftest import BOTH, CONTINUOUS, DISCRETE, VECTOR
from dreamer_bench.agent import Agent, make_config
from dreamer_bench.agent.isolation import perturb_
from dreamer_bench.agent.packed import NotPackable, PackedUpdate, packable
from dreamer_bench.agent.synthetic import random_batch

ALL_OFF = ("symlog", "twohot", "kl_balance", "free_bits", "unimix", "return_norm", "repval", "slow_critic",
           "block_gru", "agc", "laprop", "zero_init", "recon_grad", "reward_grad")
# fp32 tolerances: the batched products sum in another order than the unbatched ones
LOSS_RTOL, GRAD_RTOL, STEP_RTOL = 1e-5, 1e-4, 2e-3


def group(k: int, obs=VECTOR, act=DISCRETE, off=(), **sets) -> list[Agent]:
    """K agents of seeds 0..K−1 whose heads were moved off their (zero) initialisation: at the
    start, the actor's gradients are ~1e-9 and LaProp (ε 1e-20) turns their rounding into whole
    steps of either sign, in a packed and an unpacked update alike; moved heads give gradients
    that rounding cannot flip (agent/isolation.perturb_, the same noise for both groups)."""
    agents = [Agent(obs, act, make_config("debug", overrides={"seed": s, "warmup": 0, **sets}, off=off)) for s in range(k)]
    for a in agents:
        perturb_(a)
    return agents


def grads(agent: Agent) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in agent.trained_parameters() if p.grad is not None])


def flat(agent: Agent) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in agent.trained_parameters()])


def compare(alone: list[Agent], packed: list[Agent], updates: int = 3, pack=None) -> dict[str, float]:
    """Train both groups on the same batches; the worst relative differences seen."""
    pack = pack or PackedUpdate(packed)
    start = [flat(a) for a in alone]
    worst = {"loss": 0.0, "grad": 0.0}
    for u in range(updates):
        batches = [random_batch(a.obs_space, a.act_space, a.cfg, seed=100 * u + k) for k, a in enumerate(alone)]
        ma = [a.train(dict(b)) for a, b in zip(alone, batches)]
        mb = pack.train([dict(b) for b in batches])
        for k in range(len(alone)):
            assert set(ma[k]) == set(mb[k])
            for name in ma[k]:
                if name.startswith("loss/"):
                    worst["loss"] = max(worst["loss"], abs(ma[k][name] - mb[k][name]) / max(abs(ma[k][name]), 1e-3))
            ga, gb = grads(alone[k]), grads(packed[k])
            worst["grad"] = max(worst["grad"], float((ga - gb).norm() / ga.norm()))
    steps = [(flat(a) - s, flat(b) - s) for a, b, s in zip(alone, packed, start)]
    worst["step"] = max(float((da - db).norm() / da.norm()) for da, db in steps)
    worst["cos"] = min(float(torch.nn.functional.cosine_similarity(da, db, dim=0)) for da, db in steps)
    return worst


@pytest.mark.parametrize("obs,act,off", [
    (BOTH, DISCRETE, ()),
    (BOTH, DISCRETE, ALL_OFF),
    (VECTOR, CONTINUOUS, ("return_norm", "laprop", "slow_critic")),
])
def test_slice_k_of_a_packed_update_is_the_update_of_seed_k(obs, act, off):
    worst = compare(group(2, obs, act, off), group(2, obs, act, off))
    assert worst["loss"] < LOSS_RTOL and worst["grad"] < GRAD_RTOL, worst
    assert worst["step"] < STEP_RTOL and worst["cos"] > 1 - 1e-6, worst


def test_the_check_fails_when_the_seeds_share_their_draws():
    """The negative control: seed 1 given seed 0's draws is another update, and the check sees it."""
    alone, packed = group(2), group(2)
    packed[1].draws = packed[0].draws  # noqa: both draw from seed 0's generator (its second draw)
    worst = compare(alone, packed, updates=1)
    assert worst["loss"] > 1e-3 or worst["grad"] > 1e-2, worst


def test_per_seed_state_stays_per_seed_also_at_different_update_counts():
    """Seed 1 joins the group 2 updates ahead (as a member resumed from a later checkpoint): warm-up,
    optimiser moments, return statistics, slow critic and generators stay its own."""
    alone, packed = group(2, warmup=5), group(2, warmup=5)
    for agents in (alone, packed):
        for u in range(2):
            agents[1].train(random_batch(agents[1].obs_space, agents[1].act_space, agents[1].cfg, seed=50 + u))
    worst = compare(alone, packed)
    assert worst["loss"] < LOSS_RTOL and worst["grad"] < GRAD_RTOL and worst["step"] < STEP_RTOL, worst
    for a, b in zip(alone, packed):
        assert a.updates == b.updates and a.optimizer.step_count == b.optimizer.step_count
        assert a.optimizer.learning_rate() == b.optimizer.learning_rate()
        for key in ("low", "high"):
            torch.testing.assert_close(getattr(a.retnorm, key), getattr(b.retnorm, key), rtol=1e-5, atol=1e-7)
        for pa, pb in zip(a.slow_critic.parameters(), b.slow_critic.parameters()):
            torch.testing.assert_close(pa, pb, rtol=STEP_RTOL, atol=1e-6)
        for ma, mb in zip(a.optimizer.second, b.optimizer.second):
            torch.testing.assert_close(ma, mb, rtol=1e-3, atol=1e-12)
        assert torch.equal(a.train_generator.get_state(), b.train_generator.get_state())
    assert alone[0].updates == 3 and alone[1].updates == 5
    assert packed[0].optimizer.learning_rate() != packed[1].optimizer.learning_rate()  # warm-up per seed
    assert not torch.equal(packed[0].retnorm.high, packed[1].retnorm.high)


def test_what_cannot_be_packed_is_refused_in_one_line():
    assert packable(group(2)) is None
    mixed = group(1) + group(1, off=("symlog",))
    assert "differ in off" in packable(mixed)
    with pytest.raises(NotPackable, match="only seeds may differ"):
        PackedUpdate(mixed)
    backprop = [Agent(VECTOR, CONTINUOUS, make_config("debug", overrides={"seed": s, "actor_grad_cont": "backprop"}))
                for s in range(2)]
    assert "backprop" in packable(backprop)


def test_a_seed_whose_loss_is_not_finite_does_not_touch_the_others():
    """A packed update keeps the seeds apart: NaN rewards in seed 0's batch leave seed 1's update as
    it is alone (the runner then fails seed 0's run by itself)."""
    alone, packed = group(2), group(2)
    batches = [random_batch(a.obs_space, a.act_space, a.cfg, seed=k) for k, a in enumerate(alone)]
    batches[0]["reward"] = torch.full_like(torch.as_tensor(batches[0]["reward"]), float("nan"))
    out = PackedUpdate(packed).train([dict(b) for b in batches])
    assert not all(torch.isfinite(torch.tensor(v)) for k, v in out[0].items() if k.startswith("loss/"))
    mine = alone[1].train(dict(batches[1]))
    for k in mine:
        if k.startswith("loss/"):
            assert out[1][k] == pytest.approx(mine[k], rel=LOSS_RTOL), k
    ga, gb = grads(alone[1]), grads(packed[1])
    assert float((ga - gb).norm() / ga.norm()) < GRAD_RTOL
