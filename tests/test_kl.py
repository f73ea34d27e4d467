"""kl_balance and free_bits: which distribution each KL term trains, and the 1-nat floor."""

import numpy as np
import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.losses import categorical_kl, kl_losses

ON = make_config("debug")
NO_FREE_BITS = make_config("debug", off=["free_bits"])


def logprobs(logits):
    return torch.log_softmax(logits, -1)


def test_categorical_kl_is_summed_over_latents():
    p = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    q = np.array([[0.1, 0.3, 0.3, 0.3], [0.4, 0.3, 0.2, 0.1]])
    expected = float(np.sum(p * np.log(p / q)))
    got = categorical_kl(torch.tensor(np.log(p)), torch.tensor(np.log(q)))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_dynamics_loss_trains_only_the_prior_and_representation_only_the_posterior():
    post_logits = torch.randn(3, 2, 4, requires_grad=True)
    prior_logits = torch.randn(3, 2, 4, requires_grad=True)
    dyn, rep = kl_losses(logprobs(post_logits), logprobs(prior_logits), NO_FREE_BITS)
    torch.testing.assert_close(dyn, rep)  # same value, different gradients
    g_post, g_prior = torch.autograd.grad(dyn.sum(), [post_logits, prior_logits], allow_unused=True, retain_graph=True)
    assert g_post is None and g_prior.abs().sum() > 0
    g_post, g_prior = torch.autograd.grad(rep.sum(), [post_logits, prior_logits], allow_unused=True)
    assert g_post.abs().sum() > 0 and g_prior is None


def test_dynamics_gradient_is_that_of_kl_with_a_fixed_posterior():
    post = torch.randn(1, 2, 4)
    prior_logits = torch.randn(1, 2, 4, requires_grad=True)
    dyn, _ = kl_losses(logprobs(post), logprobs(prior_logits), NO_FREE_BITS)
    (grad,) = torch.autograd.grad(dyn.sum(), prior_logits)
    # d/dz KL(p || softmax(z)) = softmax(z) − p
    expected = torch.softmax(prior_logits, -1) - torch.softmax(post, -1)
    torch.testing.assert_close(grad, expected.detach())


def two_latents_with_kl(per_latent):
    """Posterior/prior log-probs of 2 latents whose KL is ``per_latent`` each (solved numerically)."""
    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = (lo + hi) / 2
        p = torch.softmax(torch.tensor([mid, 0.0, 0.0, 0.0], dtype=torch.float64), -1)
        kl = (p * (p.log() - np.log(0.25))).sum().item()
        lo, hi = (mid, hi) if kl < per_latent else (lo, mid)
    post = torch.tensor([[mid, 0.0, 0.0, 0.0]] * 2, dtype=torch.float64, requires_grad=True)
    prior = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    return post, prior


def test_free_bits_floor_applies_after_summing_over_latents():
    post, prior = two_latents_with_kl(0.6)  # 0.6 per latent, 1.2 in total: above the floor
    dyn, rep = kl_losses(logprobs(post)[None], logprobs(prior)[None], ON)
    assert dyn.item() == pytest.approx(1.2, abs=1e-6) and rep.item() == pytest.approx(1.2, abs=1e-6)
    (g,) = torch.autograd.grad(rep.sum(), post)
    assert g.abs().sum() > 0


def test_free_bits_clip_below_one_nat_and_stop_the_gradient():
    post, prior = two_latents_with_kl(0.2)  # 0.4 nats in total
    dyn, rep = kl_losses(logprobs(post)[None], logprobs(prior)[None], ON)
    assert dyn.item() == 1.0 and rep.item() == 1.0
    g_post, g_prior = torch.autograd.grad(dyn.sum() + rep.sum(), [post, prior], allow_unused=True)
    assert torch.all(g_post == 0) and torch.all(g_prior == 0)
    dyn, rep = kl_losses(logprobs(post)[None], logprobs(prior)[None], NO_FREE_BITS)
    assert dyn.item() == pytest.approx(0.4, abs=1e-6)
    (g,) = torch.autograd.grad(rep.sum(), post)
    assert g.abs().sum() > 0
