"""zero_init and the official initialiser."""

import math

import torch

from dreamer_bench.agent.functional import init_weight_
from dreamer_bench.agent.heads import twohot_mean

from conftest import BOTH, CONTINUOUS, DISCRETE, make_agent


def test_truncated_normal_with_unit_variance_correction():
    w = init_weight_(torch.empty(400, 500), fan_in=500)
    sigma = math.sqrt(1 / 500) / 0.87962566103423978  # std of a unit normal truncated to ±2
    assert w.abs().max().item() <= 2 * sigma + 1e-7
    assert abs(w.std().item() - math.sqrt(1 / 500)) < 0.01 * math.sqrt(1 / 500) * 3


def test_reward_and_critic_start_with_zero_logits():
    """Zero output layers: every state gets uniform bins, so every state predicts the same value
    (the expectation of uniform bins: not exactly 0, as the official program's fused pairs leave
    their rounding, tests/test_twohot.py)."""
    agent = make_agent(BOTH, DISCRETE)
    feat = torch.randn(9, agent.cfg.feat) * 5
    for head in (agent.reward, agent.critic):
        assert torch.all(head.out.weight == 0) and torch.all(head.out.bias == 0)
        out = head(feat)
        assert torch.all(out.logits == 0)
        uniform = twohot_mean(torch.zeros(1, head.bins.shape[0]), head.bins)
        assert torch.all(out.pred() == uniform)


def test_actor_output_weights_are_scaled_by_one_hundredth():
    for act in (DISCRETE, CONTINUOUS):
        on, off = make_agent(BOTH, act), make_agent(BOTH, act, off=("zero_init",))
        torch.testing.assert_close(on.actor.out.weight, 0.01 * off.actor.out.weight, rtol=0, atol=0)
        if not act.discrete:  # the continuous actor's σ layer too
            torch.testing.assert_close(on.actor.std_out.weight, 0.01 * off.actor.std_out.weight, rtol=0, atol=0)
        assert off.reward.out.weight.abs().sum() > 0 and off.critic.out.weight.abs().sum() > 0


def test_continue_decoder_and_latent_logits_keep_the_normal_initialisation():
    on, off = make_agent(BOTH, DISCRETE), make_agent(BOTH, DISCRETE, off=("zero_init",))
    for name in ("cont", "decoder", "rssm"):
        for (k, a), (_, b) in zip(getattr(on, name).state_dict().items(), getattr(off, name).state_dict().items()):
            assert torch.equal(a, b), k
    assert on.cont.out.weight.abs().sum() > 0
