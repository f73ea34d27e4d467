"""recon_grad and reward_grad: which losses send gradients into the representation."""

import pytest
import torch

from conftest import BOTH, DISCRETE, make_agent, make_batch


def grad_norms(agent, loss_name):
    agent.train_generator.manual_seed(0)
    losses = agent.loss_terms(make_batch(agent))
    modules = {"encoder": agent.encoder, "rssm": agent.rssm, "decoder": agent.decoder,
               "reward": agent.reward, "critic": agent.critic}
    params = [p for m in modules.values() for p in m.parameters()]
    grads = torch.autograd.grad(losses[loss_name], params, allow_unused=True)
    out, i = {}, 0
    for name, m in modules.items():
        n = len(list(m.parameters()))
        out[name] = sum(0.0 if g is None else g.abs().sum().item() for g in grads[i:i + n])
        i += n
    return out


def test_reconstruction_gradient_reaches_the_representation_only_when_on():
    on = grad_norms(make_agent(BOTH, DISCRETE), "rec_image")
    off = grad_norms(make_agent(BOTH, DISCRETE, off=("recon_grad",)), "rec_image")
    assert on["encoder"] > 0 and on["rssm"] > 0
    assert off["encoder"] == 0 and off["rssm"] == 0
    assert off["decoder"] > 0  # the decoder itself still trains
    assert off["decoder"] == pytest.approx(on["decoder"], rel=1e-5)


@pytest.mark.parametrize("loss", ["rew", "repval"])
def test_reward_and_value_gradients_reach_the_representation_only_when_on(loss):
    # zero-initialised heads pass no gradient back at the start: use the normal initialisation
    on = grad_norms(make_agent(BOTH, DISCRETE, off=("zero_init",)), loss)
    off = grad_norms(make_agent(BOTH, DISCRETE, off=("zero_init", "reward_grad")), loss)
    assert on["encoder"] > 0 and on["rssm"] > 0
    assert off["encoder"] == 0 and off["rssm"] == 0
    head = "reward" if loss == "rew" else "critic"
    assert off[head] > 0


def test_continue_gradient_still_reaches_the_representation_without_reward_grad():
    off = grad_norms(make_agent(BOTH, DISCRETE, off=("reward_grad",)), "con")
    assert off["encoder"] > 0 and off["rssm"] > 0
