"""unimix: 1% uniform mixed into the RSSM's latents and the discrete actor."""

import numpy as np
import pytest
import torch

from dreamer_bench.agent.heads import actor_mix, latent_mix, mixed_logprobs, sample_onehot_st

from conftest import BOTH, CONTINUOUS, DISCRETE, make_agent


def test_mixed_probabilities_match_the_definition():
    logits = torch.tensor([[30.0, 0.0, -30.0, 1.0]])
    probs = mixed_logprobs(logits, 0.01).exp()
    soft = np.exp(logits.numpy() - logits.numpy().max())
    soft /= soft.sum()
    np.testing.assert_allclose(probs.numpy(), 0.99 * soft + 0.01 / 4, rtol=1e-6)
    assert probs.min().item() == pytest.approx(0.0025, rel=1e-4)  # the minimum probability 1%/K
    assert probs.sum().item() == pytest.approx(1.0)


def test_rssm_latents_keep_the_minimum_probability():
    agent = make_agent(BOTH, DISCRETE)
    with torch.no_grad():
        agent.rssm.prior_out.bias.copy_(torch.tensor([50.0, 0, 0, -50.0] * agent.cfg.latents))
        agent.rssm.prior_out.weight.zero_()
    prior = agent.rssm.prior_logprobs(torch.randn(5, agent.cfg.deter)).exp()
    assert prior.min().item() == pytest.approx(0.01 / agent.cfg.classes, rel=1e-4)
    off = make_agent(BOTH, DISCRETE, off=("unimix",))
    with torch.no_grad():
        off.rssm.prior_out.bias.copy_(agent.rssm.prior_out.bias)
        off.rssm.prior_out.weight.zero_()
    assert off.rssm.prior_logprobs(torch.randn(5, off.cfg.deter)).exp().min().item() < 1e-20


def _saturated_actor_probs(agent) -> torch.Tensor:
    """The discrete actor's probabilities with its output layer forced to logits (60, 0, −60)."""
    with torch.no_grad():
        agent.actor.out.bias.copy_(torch.tensor([60.0, 0.0, -60.0]))
        agent.actor.out.weight.zero_()
    return agent.actor(torch.randn(4, agent.cfg.feat)).exp()


def test_discrete_actor_is_mixed_and_the_official_head_can_be_reproduced():
    agent = make_agent(BOTH, DISCRETE)
    assert latent_mix(agent.cfg) == 0.01 and actor_mix(agent.cfg) == 0.01
    assert _saturated_actor_probs(agent).min().item() == pytest.approx(0.01 / 3, rel=1e-4)
    # actor_unimix=0 (the official head): the actor is a plain softmax, the latents still mixed
    official = make_agent(BOTH, DISCRETE, actor_unimix=0.0)
    assert _saturated_actor_probs(official).min().item() < 1e-20
    with torch.no_grad():
        official.rssm.prior_out.bias.copy_(torch.tensor([50.0, 0, 0, -50.0] * official.cfg.latents))
        official.rssm.prior_out.weight.zero_()
    prior = official.rssm.prior_logprobs(torch.randn(5, official.cfg.deter)).exp()
    assert prior.min().item() == pytest.approx(0.01 / official.cfg.classes, rel=1e-4)


def test_off_is_plain_softmax_everywhere():
    agent = make_agent(BOTH, DISCRETE, off=("unimix",))
    assert latent_mix(agent.cfg) == 0.0 and actor_mix(agent.cfg) == 0.0
    probs = _saturated_actor_probs(agent)
    logits = torch.tensor([60.0, 0.0, -60.0])
    torch.testing.assert_close(probs, torch.softmax(logits, -1).expand(4, 3))  # float32 softmax: e^-60 ≈ 8.8e-27
    logits = torch.randn(3, 5)
    torch.testing.assert_close(mixed_logprobs(logits, 0.0), torch.log_softmax(logits, -1))


def test_straight_through_sample_is_one_hot_with_the_gradient_of_the_probabilities():
    logits = torch.randn(6, 2, 4, requires_grad=True)
    logp = mixed_logprobs(logits, 0.01)
    sample = sample_onehot_st(logp, torch.rand(6, 2, 1, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(sample.detach().sum(-1), torch.ones(6, 2))
    assert set(sample.detach().unique().tolist()) <= {0.0, 1.0}
    weights = torch.randn(6, 2, 4)
    (g_sample,) = torch.autograd.grad((sample * weights).sum(), logits, retain_graph=True)
    (g_probs,) = torch.autograd.grad((logp.exp() * weights).sum(), logits)
    torch.testing.assert_close(g_sample, g_probs)


def test_samples_follow_the_probabilities():
    probs = torch.tensor([0.1, 0.6, 0.3])
    logp = probs.log().expand(20000, 3)
    uniform = torch.rand(20000, 1, generator=torch.Generator().manual_seed(1))
    counts = sample_onehot_st(logp, uniform).detach().sum(0) / 20000
    np.testing.assert_allclose(counts.numpy(), probs.numpy(), atol=0.015)
