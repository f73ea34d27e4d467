"""actor_grad_cont=backprop: the 2023 agent's continuous actor, trained by differentiating the
imagined returns through the frozen dynamics and heads (a protocol choice, not a technique)."""

import subprocess
import sys

import pytest
import torch

from conftest import CONTINUOUS, DISCRETE, VECTOR, make_agent, make_batch
from dreamer_bench.agent import make_config
from dreamer_bench.agent.config import ConfigError
from dreamer_bench.results import identity_hash
from dreamer_bench.runner.run import config_differences
from test_training import train_and_check

def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *args], capture_output=True, text=True)


MODULES = ("encoder", "rssm", "decoder", "reward", "cont", "actor", "critic")


def grads_by_module(agent, loss):
    params = [p for name in MODULES for p in getattr(agent, name).parameters()]
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    out, i = {}, 0
    for name in MODULES:
        n = len(list(getattr(agent, name).parameters()))
        out[name] = sum(0.0 if g is None else g.abs().sum().item() for g in grads[i:i + n])
        i += n
    return out


def backprop_agent(**overrides):
    # zero-initialised heads would pass no gradient back into the features at the start
    return make_agent(VECTOR, CONTINUOUS, off=("zero_init",), actor_grad_cont="backprop", **overrides)


def test_backprop_policy_loss_trains_the_actor_alone_and_the_critic_learns_as_before():
    agent = backprop_agent()
    agent.train_generator.manual_seed(0)
    losses = agent.loss_terms(make_batch(agent))
    policy = grads_by_module(agent, losses["policy"])
    assert policy["actor"] > 0
    assert all(policy[m] == 0 for m in MODULES if m != "actor"), policy
    value = grads_by_module(agent, losses["value"])
    assert value["critic"] > 0 and all(value[m] == 0 for m in MODULES if m != "critic"), value
    # the frozen modules are trainable again afterwards
    assert all(p.requires_grad for p in agent.trained_parameters())


def test_backprop_gradient_is_the_pathwise_derivative_of_the_imagined_objective():
    """Horizon 2 from given start states, recomputed here from the public modules: actions
    a_t = μ + σ·ε drive the prior, R_1 = r_2 + c_2·v_2, R_0 = r_1 + c_1·((1 − λ)·v_1 + λ·R_1),
    loss = −sg(w)·((R − v)/S + η·H) with w = (c_0, c_0·c_1) and the actor fed sg(state)."""
    agent = backprop_agent(horizon=2)
    cfg = agent.cfg
    n = 6
    g = torch.Generator().manual_seed(3)
    deter = torch.randn(n, cfg.deter, generator=g)
    stoch = torch.nn.functional.one_hot(torch.randint(0, cfg.classes, (n, cfg.latents), generator=g),
                                        cfg.classes).float()
    agent.train_generator.manual_seed(11)
    losses, _, _ = agent._imagination_losses(deter, stoch)
    scale = agent.retnorm.scale()

    noise = torch.Generator().manual_seed(11)
    latent_noise = torch.rand((2, n, cfg.latents, 1), generator=noise)
    action_noise = [torch.randn((n, 2), generator=noise) for _ in range(2)]
    d, s = deter, stoch
    feats, entropies = [agent.rssm.features(d, s)], []
    for t in range(2):
        params = agent.actor(feats[-1].detach())
        mean, std = params.chunk(2, -1)
        d, s = agent.rssm.img_step(d, s, mean + std * action_noise[t], latent_noise[t])
        feats.append(agent.rssm.features(d, s))
        entropies.append(agent.actor.entropy(params))
    r = [agent.reward(f).pred() for f in feats]
    c = [agent.cont(f).pred() for f in feats]
    v = [agent.critic(f).pred() for f in feats]
    lam = cfg.return_lambda
    ret1 = r[2] + c[2] * v[2]
    ret0 = r[1] + c[1] * ((1 - lam) * v[1] + lam * ret1)
    weights = [c[0].detach(), (c[0] * c[1]).detach()]
    mine = [-weights[t] * ((ret - v[t]) / scale + cfg.actor_entropy * entropies[t])
            for t, ret in enumerate((ret0, ret1))]
    expected = torch.stack(mine, 1)

    actor = list(agent.actor.parameters())
    assert torch.allclose(losses["policy"], expected, rtol=1e-5, atol=1e-6)
    got = torch.autograd.grad(losses["policy"].mean(), actor, retain_graph=True)
    want = torch.autograd.grad(expected.mean(), actor)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    assert sum(x.abs().sum() for x in got) > 0


def test_switching_to_backprop_changes_the_policy_term_only():
    batch = make_batch(make_agent(VECTOR, CONTINUOUS))
    terms = {}
    for grad in ("reinforce", "backprop"):
        agent = make_agent(VECTOR, CONTINUOUS, off=("zero_init",), actor_grad_cont=grad)
        agent.train_generator.manual_seed(0)
        terms[grad] = agent.loss_terms({k: v.clone() for k, v in batch.items()})
    a, b = terms["reinforce"], terms["backprop"]
    assert set(a) == set(b)
    for k in a:
        if k != "policy":
            assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7), k
    assert not torch.allclose(a["policy"], b["policy"])
    # and REINFORCE stays the continuous actor's default
    assert not make_agent(VECTOR, CONTINUOUS, off=("zero_init",)).backprop_actor


def test_a_discrete_actor_keeps_reinforce():
    batch = make_batch(make_agent(VECTOR, DISCRETE))
    terms = []
    for grad in ("reinforce", "backprop"):
        agent = make_agent(VECTOR, DISCRETE, actor_grad_cont=grad)
        assert not agent.backprop_actor
        agent.train_generator.manual_seed(0)
        terms.append(agent.loss_terms({k: v.clone() for k, v in batch.items()}))
    assert all(torch.equal(terms[0][k], terms[1][k]) for k in terms[0])


def test_backprop_agent_trains_and_restores():
    agent = backprop_agent()
    train_and_check(agent)  # finite losses, every module moved
    batch = make_batch(agent)
    other = backprop_agent()
    other.restore(agent.checkpoint())
    theirs = other.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in agent.state_dict().items())
    # the restored agent continues exactly as the original (parameters, moments, generators)
    agent.train(batch)
    other.train(batch)
    theirs = other.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in agent.state_dict().items())
    with pytest.raises(ValueError, match="actor_grad_cont"):
        make_agent(VECTOR, CONTINUOUS).restore(agent.checkpoint())


def test_bad_value_names_the_choices():
    with pytest.raises(ConfigError, match="reinforce, backprop"):
        make_config("debug", overrides={"actor_grad_cont": "pathwise"})
    out = cli("bench", "--size", "debug", "--set", "actor_grad_cont=pathwise")
    assert out.returncode == 2 and "reinforce, backprop" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_actor_gradient_is_part_of_a_run_s_identity():
    # (Runs of 0.1.0, recorded before the field existed, kept their identity through a shim; since
    # the version is part of every identity and 0.2.0 refuses to resume 0.1.0 runs, the shim went.)
    task = {"env": "dmc_walker_walk", "steps": 100}
    new = make_config("debug").to_dict()
    versions = {"versions": {"dreamer_bench": "0"}}
    backprop = make_config("debug", overrides={"actor_grad_cont": "backprop"}).to_dict()
    assert identity_hash(task, backprop, "0") != identity_hash(task, new, "0")
    diff = config_differences({"task": task, "agent": new, **versions}, {"task": task, "agent": backprop, **versions})
    assert diff == ["agent.actor_grad_cont ('reinforce' → 'backprop')"]
