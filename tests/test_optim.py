"""laprop, agc and the warm-up: one step of each computed by hand."""

import numpy as np
import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.optim import Optimizer, clip_adaptive

from conftest import BOTH, DISCRETE, make_agent


def run_steps(grads_per_step, param, **overrides):
    p = torch.nn.Parameter(torch.tensor(param, dtype=torch.float32))
    cfg = make_config("debug", overrides={"warmup": 0, "lr": 0.1, **overrides.pop("cfg", {})}, **overrides)
    opt = Optimizer([p], cfg)
    for g in grads_per_step:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    return p.detach().numpy()


def test_one_and_two_laprop_steps_by_hand():
    theta = np.array([1.0, -2.0, 0.5])
    g1, g2 = np.array([0.3, -0.1, 0.0]), np.array([-0.2, 0.4, 1e-3])
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-20
    v = (1 - b2) * g1**2
    u = g1 / (np.sqrt(v / (1 - b2)) + eps)
    m = (1 - b1) * u
    theta1 = theta - lr * m / (1 - b1)
    np.testing.assert_allclose(run_steps([g1], theta, off=["agc"]), theta1, rtol=1e-6)
    v = b2 * v + (1 - b2) * g2**2
    u = g2 / (np.sqrt(v / (1 - b2**2)) + eps)
    m = b1 * m + (1 - b1) * u
    theta2 = theta1 - lr * m / (1 - b1**2)
    np.testing.assert_allclose(run_steps([g1, g2], theta, off=["agc"]), theta2, rtol=1e-6)


def test_off_is_adam_with_eps_1e8():
    theta = np.array([1.0, -2.0])
    g1, g2 = np.array([0.3, 0.0]), np.array([-0.2, 1e-9])
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    m = v = 0
    out = theta.copy()
    for t, g in enumerate([g1, g2], 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        out = out - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(run_steps([g1, g2], theta, off=["agc", "laprop"]), out, rtol=1e-6)


def test_agc_clips_each_tensor_by_hand():
    big = torch.tensor([6.0, 8.0])  # ‖g‖ = 10
    small = torch.tensor([1e-4, 0.0])
    params = [torch.tensor([1.2, 1.6]), torch.tensor([3.0, 4.0])]  # ‖θ‖ = 2, 5
    grads = [big.clone(), small.clone()]
    clipped = clip_adaptive(grads, params, 0.3, 1e-3)
    torch.testing.assert_close(clipped[0], big * (0.3 * 2.0 / 10.0))  # limit 0.6 < 10
    torch.testing.assert_close(clipped[1], small)  # under the limit: untouched
    torch.testing.assert_close(grads[0], big)  # the raw gradient is left as it was
    tiny = [torch.tensor([1.0, 0.0])]
    clipped = clip_adaptive(tiny, [torch.zeros(2)], 0.3, 1e-3)  # ‖θ‖ = 0 → floor 1e-3
    torch.testing.assert_close(clipped[0], torch.tensor([3e-4, 0.0]))


def test_the_step_leaves_the_raw_gradient_in_grad():
    cfg = make_config("debug", overrides={"warmup": 0})
    p = torch.nn.Parameter(torch.tensor([0.01, 0.01]))
    opt = Optimizer([p], cfg)
    p.grad = torch.tensor([50.0, -50.0])  # far beyond the AGC limit 0.3·max(1e-3, ‖θ‖)
    opt.step()
    torch.testing.assert_close(p.grad, torch.tensor([50.0, -50.0]))


def test_agc_off_leaves_the_gradient_unclipped():
    theta = np.array([0.01, 0.01])
    g = np.array([50.0, -50.0])
    with_agc = run_steps([g], theta)
    without = run_steps([g], theta, off=["agc"])
    # LaProp's first step is ±lr whatever the scale of g: clipping only scales g, so both agree
    np.testing.assert_allclose(with_agc, without, rtol=1e-5)
    # after a small gradient the state remembers the clipped scale
    g2 = np.array([1e-3, 1e-3])
    assert not np.allclose(run_steps([g, g2], theta), run_steps([g, g2], theta, off=["agc"]))


def test_warmup_is_linear_from_zero():
    # The official schedule (optax linear_schedule(0, lr, warmup) joined to a constant) is read at
    # the count of earlier updates: updates 1, 2, 3, ... use lr·0/w, lr·1/w, lr·2/w, ...
    # With a constant gradient of 1 (AGC off) LaProp's bias-corrected step is exactly the learning
    # rate, so the parameter shows the rate each update used, not only the one reported.
    cfg = make_config("debug", overrides={"warmup": 4, "lr": 1.0}, off=["agc"])
    opt = Optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    lrs, path = [], []
    for _ in range(6):
        opt.params[0].grad = torch.ones(1)
        opt.step()
        lrs.append(opt.learning_rate())
        path.append(opt.params[0].item())
    assert lrs == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert path == pytest.approx([0.0, -0.25, -0.75, -1.5, -2.5, -3.5], abs=1e-6)


def test_one_optimiser_for_every_trained_module_but_not_the_slow_critic():
    agent = make_agent(BOTH, DISCRETE)
    ids = {id(p) for p in agent.optimizer.params}
    for mod in (agent.encoder, agent.rssm, agent.decoder, agent.reward, agent.cont, agent.actor, agent.critic):
        assert all(id(p) in ids for p in mod.parameters())
    assert not any(id(p) in ids for p in agent.slow_critic.parameters())
