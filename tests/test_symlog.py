"""symlog: vector inputs and vector decoder targets in symlog space; images untouched."""

import math

import numpy as np
import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.functional import symexp, symlog
from dreamer_bench.agent.nets import vector_input, vector_target

from conftest import DISCRETE, IMAGE, VECTOR, make_agent, make_batch

VALUES = [-1e6, -123.4, -1.0, -0.5, 0.0, 1e-7, 0.25, 1.0, 2.0, 1e3, 3.4e8]


def test_symlog_matches_its_definition():
    x = torch.tensor(VALUES, dtype=torch.float64)
    expected = [math.copysign(math.log1p(abs(v)), v) for v in VALUES]
    np.testing.assert_allclose(symlog(x).numpy(), expected, rtol=1e-12)


def test_symlog_and_symexp_are_inverses():
    x = torch.tensor(VALUES, dtype=torch.float64)
    np.testing.assert_allclose(symexp(symlog(x)).numpy(), VALUES, rtol=1e-10, atol=1e-15)
    y = torch.linspace(-20, 20, 101, dtype=torch.float64)
    np.testing.assert_allclose(symlog(symexp(y)).numpy(), y.numpy(), rtol=1e-10, atol=1e-12)
    assert symexp(torch.tensor(-2.0, dtype=torch.float64)).item() == pytest.approx(-(math.exp(2.0) - 1), rel=1e-12)


def test_on_vectors_enter_and_are_regressed_in_symlog_space():
    x = torch.tensor([[-100.0, 0.0, 5.0]])
    on, off = make_config("debug"), make_config("debug", off=["symlog"])
    expected = torch.tensor([[-math.log(101.0), 0.0, math.log(6.0)]])
    torch.testing.assert_close(vector_input(x, on), expected)
    torch.testing.assert_close(vector_target(x, on), expected)
    assert torch.equal(vector_input(x, off), x)
    assert torch.equal(vector_target(x, off), x)


def test_vector_reconstruction_loss_is_summed_squared_error_in_each_space():
    for off in ((), ("symlog",)):
        agent = make_agent(VECTOR, DISCRETE, off=off)
        obs = {"vector": torch.tensor([[10.0, -3.0, 0.5, 0.0, 200.0]])}
        feat = torch.randn(1, agent.cfg.feat)
        pred = agent.decoder(feat)["vector"]
        target = obs["vector"] if off else torch.sign(obs["vector"]) * torch.log1p(obs["vector"].abs())
        loss = agent.decoder.loss(feat, obs)["vector"]
        torch.testing.assert_close(loss, ((pred - target) ** 2).sum(-1))


def test_images_are_untouched_by_the_toggle():
    full, off = make_agent(IMAGE, DISCRETE), make_agent(IMAGE, DISCRETE, off=("symlog",))
    batch = make_batch(full)
    obs = {"image": batch["image"][:, 1]}
    assert torch.equal(full.encoder(obs), off.encoder(obs))
    # the image decoder's loss is the summed squared error against x / 255
    feat = torch.randn(obs["image"].shape[0], full.cfg.feat)
    pred = full.decoder(feat)["image"]
    assert pred.min() >= 0 and pred.max() <= 1
    expected = ((pred - obs["image"].float() / 255) ** 2).sum((1, 2, 3))
    torch.testing.assert_close(full.decoder.loss(feat, obs)["image"], expected)
    torch.testing.assert_close(off.decoder.loss(feat, obs)["image"], expected)
