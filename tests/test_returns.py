"""λ-returns, continue targets, the replay critic (repval) and the slow critic."""

import pytest
import torch

from dreamer_bench.agent.config import make_config
from dreamer_bench.agent.heads import MSEDist, TwoHotDist, twohot_bins
from dreamer_bench.agent import losses as L
from dreamer_bench.agent.losses import (continue_target, lambda_return, replay_value_loss, repval_targets,
                                        trajectory_weights, value_loss)

from conftest import BOTH, DISCRETE, make_agent, make_batch

CFG = make_config("debug")
GAMMA = 1 - 1 / 333


def test_lambda_return_by_hand():
    lam = 0.95
    r = [1e9, 2.0, -1.0]  # the start state's own reward prediction never enters
    c = [0.3, 0.9, 0.5]
    v = [7.0, 4.0, 10.0]
    ret = lambda_return(torch.tensor([r]), torch.tensor([c]), torch.tensor([v]), lam)
    r1 = r[2] + c[2] * ((1 - lam) * v[2] + lam * v[2])
    r0 = r[1] + c[1] * ((1 - lam) * v[1] + lam * r1)
    torch.testing.assert_close(ret, torch.tensor([[r0, r1]]))


def test_continues_are_probabilities_and_gamma_is_not_applied_twice():
    # continue probability 1, reward 1 for 15 steps, λ = 1: the return is exactly 15, no γ added
    h = 15
    ret = lambda_return(torch.ones(1, h + 1), torch.ones(1, h + 1), torch.zeros(1, h + 1), 1.0)
    assert ret[0, 0].item() == 15.0
    # a fractional continue is used as it is, never rounded
    ret = lambda_return(torch.ones(1, 2), torch.tensor([[1.0, 0.4]]), torch.tensor([[0.0, 10.0]]), 0.95)
    assert ret[0, 0].item() == pytest.approx(1.0 + 0.4 * 10.0)
    assert continue_target(torch.tensor([0.0, 1.0]), CFG).tolist() == pytest.approx([GAMMA, 0.0])


def test_trajectory_weights_include_the_start_state():
    c = torch.tensor([[0.5, 0.8, 0.25, 0.1]])
    torch.testing.assert_close(trajectory_weights(c), torch.tensor([[0.5, 0.4, 0.1]]))


def test_repval_targets_by_hand():
    lam = 0.95
    reward = [0.0, 1.0, 2.0, 3.0]
    term = [0.0, 0.0, 1.0, 0.0]
    last = [0.0, 0.0, 1.0, 0.0]
    boot = [10.0, 20.0, 30.0, 40.0]
    got = repval_targets(*(torch.tensor([x]) for x in (reward, term, last, boot)), CFG)[0]

    def lp(t):
        return lam * (1 - last[t])

    r3 = boot[3]
    r2 = reward[3] + GAMMA * (1 - term[3]) * ((1 - lp(3)) * boot[3] + lp(3) * r3)
    r1 = reward[2] + GAMMA * (1 - term[2]) * ((1 - lp(2)) * boot[2] + lp(2) * r2)
    r0 = reward[1] + GAMMA * (1 - term[1]) * ((1 - lp(1)) * boot[1] + lp(1) * r1)
    torch.testing.assert_close(got, torch.tensor([r0, r1, r2, r3]))
    assert r1 == 2.0 and got[1].item() == pytest.approx(2.0)  # the terminal step cuts the return


def test_replay_value_loss_masks_last_steps_and_drops_the_final_step():
    out = MSEDist(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    targets = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    is_last = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    loss = replay_value_loss(out, targets, None, is_last, CFG)
    torch.testing.assert_close(loss, torch.tensor([[1.0, 0.0, 9.0]]))  # (B, T − 1)


def test_slow_critic_regulariser_adds_a_loss_towards_its_prediction():
    out = TwoHotDist(torch.randn(4, 5), twohot_bins(5))
    target, slow = torch.randn(4), torch.randn(4)
    torch.testing.assert_close(value_loss(out, target, slow, CFG), out.loss(target) + out.loss(slow))
    torch.testing.assert_close(value_loss(out, target, None, CFG), out.loss(target))


def test_slow_critic_starts_as_a_copy_and_follows_at_rate_two_percent():
    agent = make_agent(BOTH, DISCRETE)
    for slow, fast in zip(agent.slow_critic.parameters(), agent.critic.parameters()):
        assert torch.equal(slow, fast)
        assert not slow.requires_grad
    before = [p.detach().clone() for p in agent.slow_critic.parameters()]
    agent.train(make_batch(agent))
    for old, slow, fast in zip(before, agent.slow_critic.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(slow, 0.02 * fast + 0.98 * old)
    assert make_agent(BOTH, DISCRETE, off=("slow_critic",)).slow_critic is None


def test_train_writes_the_replay_context_back():
    agent = make_agent(BOTH, DISCRETE)
    batch = make_batch(agent)
    context = batch["deter"][:, :1].clone()
    agent.train(batch)
    assert torch.equal(batch["deter"][:, :1], context)  # the context step's entry is kept
    assert batch["deter"].shape == (agent.cfg.batch_size, agent.cfg.batch_length + 1, agent.cfg.deter)
    assert batch["deter"][:, 1:].abs().sum() > 0
    assert torch.equal(batch["stoch"][:, 1:].sum(-1), torch.ones(agent.cfg.batch_size, agent.cfg.batch_length, agent.cfg.latents))


def test_replay_context_is_where_each_window_starts():
    """A window whose context step holds a different stored latent gives different posteriors."""
    agent = make_agent(BOTH, DISCRETE)
    batch = make_batch(agent)
    batch["is_first"][:] = False  # no reset inside the window: the context carries over
    agent.train_generator.manual_seed(0)
    a = agent.loss_terms(dict(batch))
    b_batch = dict(batch)
    b_batch["deter"] = batch["deter"].clone()
    b_batch["deter"][:, 0] = 1.0
    agent.train_generator.manual_seed(0)
    b = agent.loss_terms(b_batch)
    assert not torch.equal(a["rec_vector"], b["rec_vector"])
    # with is_first at the first trained step, the context is ignored
    batch["is_first"][:, 1] = True
    b_batch["is_first"] = batch["is_first"]
    agent.train_generator.manual_seed(0)
    a = agent.loss_terms(dict(batch))
    agent.train_generator.manual_seed(0)
    b = agent.loss_terms(b_batch)
    assert torch.equal(a["rec_vector"], b["rec_vector"])


def test_reinforce_policy_loss_by_hand():
    # −sg(w)·(log π(a|s)·sg(A) + η·H), η = 3e-4; the gradient reaches log π and H, not w or A
    cfg = make_config("debug")
    logp = torch.tensor([[-1.2, -0.3]], requires_grad=True)
    entropy = torch.tensor([[1.0, 0.5]], requires_grad=True)
    adv = torch.tensor([[2.0, -4.0]], requires_grad=True)
    weight = torch.tensor([[1.0, 0.25]], requires_grad=True)
    loss = L.policy_loss(logp, entropy, adv, weight, cfg)
    expected = [-(1.0 * (-1.2 * 2.0 + 3e-4 * 1.0)), -(0.25 * (-0.3 * -4.0 + 3e-4 * 0.5))]
    torch.testing.assert_close(loss, torch.tensor([expected]))
    loss.sum().backward()
    torch.testing.assert_close(entropy.grad, torch.tensor([[-3e-4, -0.25 * 3e-4]]))
    torch.testing.assert_close(logp.grad, torch.tensor([[-2.0, 0.25 * 4.0]]))
    assert adv.grad is None or not adv.grad.any()
    assert weight.grad is None or not weight.grad.any()
