"""Training smoke over the full agent and every single-off variant; checkpoints; determinism."""

import io
import re
from pathlib import Path

import pytest
import torch

from dreamer_bench.agent import techniques
from dreamer_bench.agent.functional import symlog

from conftest import BOTH, CONTINUOUS, DISCRETE, IMAGE, VECTOR, make_agent, make_batch

COMBOS = {
    "image-discrete": (IMAGE, DISCRETE),
    "vector-continuous": (VECTOR, CONTINUOUS),
    "image-continuous": (IMAGE, CONTINUOUS),
    "vector-discrete": (VECTOR, DISCRETE),
}


def train_and_check(agent, updates=2):
    before = {k: v.detach().clone() for k, v in agent.named_parameters()}
    batch = make_batch(agent)
    for _ in range(updates):
        metrics = agent.train(batch)
        losses = {k: v for k, v in metrics.items() if k.startswith("loss/")}
        assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    moved = [k for k, v in agent.named_parameters() if not torch.equal(v, before[k])]
    assert len(moved) > len(before) // 2, f"only {len(moved)} of {len(before)} tensors moved"
    for module in ("encoder", "rssm", "decoder", "reward", "cont", "actor", "critic"):
        assert any(k.startswith(module + ".") for k in moved), f"{module} did not move"
    return metrics


@pytest.mark.parametrize("combo", COMBOS)
def test_full_agent_trains(combo):
    obs, act = COMBOS[combo]
    train_and_check(make_agent(obs, act))


@pytest.mark.parametrize("name", techniques.NAMES)
@pytest.mark.parametrize("combo", ["image-discrete", "vector-continuous"])
def test_every_single_off_variant_trains(name, combo):
    obs, act = COMBOS[combo]
    metrics = train_and_check(make_agent(obs, act, off=(name,)))
    assert ("loss/repval" in metrics) == (name != "repval")


def test_dict_observation_with_image_and_vector_trains():
    train_and_check(make_agent(BOTH, CONTINUOUS))


def test_all_techniques_off_at_once_trains():
    train_and_check(make_agent(BOTH, DISCRETE, off=techniques.NAMES))


def test_policy_acts_on_a_batch_of_environments():
    for act in (DISCRETE, CONTINUOUS):
        agent = make_agent(BOTH, act)
        obs = {"image": torch.randint(0, 255, (5, 64, 64, 3), dtype=torch.uint8),
               "vector": torch.randn(5, 3), "is_first": torch.ones(5, dtype=torch.bool)}
        state, action = agent.policy(None, obs)
        assert state["deter"].shape == (5, agent.cfg.deter)
        assert state["stoch"].shape == (5, agent.cfg.latents, agent.cfg.classes)
        if act.discrete:
            assert action.shape == (5,) and action.min() >= 0 and action.max() < act.size
            assert torch.equal(state["action"].argmax(-1), torch.as_tensor(action))
        else:
            assert action.shape == (5, act.size) and abs(action).max() <= 1.0
        obs["is_first"][:] = False
        deter = state["deter"].clone()
        state, action = agent.policy(state, obs)
        assert state["deter"].shape == deter.shape and not torch.equal(state["deter"], deter)  # the step went on


def params_of(agent):
    return {k: v.detach().clone() for k, v in agent.state_dict().items()}


def test_checkpoint_resume_is_bit_identical():
    n, m = 3, 2
    straight = make_agent(BOTH, DISCRETE)
    batches = [make_batch(straight, seed=i) for i in range(n + m)]
    for b in batches:
        straight.train(dict(b))

    first = make_agent(BOTH, DISCRETE)
    for b in batches[:n]:
        first.train(dict(b))
    buffer = io.BytesIO()
    torch.save(first.checkpoint(), buffer)
    del first
    buffer.seek(0)
    resumed = make_agent(BOTH, DISCRETE, seed=123)  # a different seed: everything must come from the file
    with pytest.raises(ValueError, match="seed"):
        resumed.restore(torch.load(buffer, weights_only=False))
    buffer.seek(0)
    resumed = make_agent(BOTH, DISCRETE)
    with torch.no_grad():  # make sure nothing of the fresh agent survives the restore
        for p in resumed.parameters():
            p.add_(1.0)
    resumed.restore(torch.load(buffer, weights_only=False))
    for b in batches[n:]:
        resumed.train(dict(b))

    a, b = params_of(straight), params_of(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.updates == straight.updates == n + m
    assert resumed.optimizer.step_count == n + m
    assert torch.equal(resumed.retnorm.high, straight.retnorm.high)
    assert torch.equal(resumed.train_generator.get_state(), straight.train_generator.get_state())


def test_same_seed_same_result_on_cpu():
    a, b = make_agent(BOTH, CONTINUOUS, seed=7), make_agent(BOTH, CONTINUOUS, seed=7)
    batch = make_batch(a)
    ma, mb = a.train(dict(batch)), b.train(dict(batch))
    assert ma == mb
    pa, pb = params_of(a), params_of(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    c = make_agent(BOTH, CONTINUOUS, seed=8)
    assert c.train(dict(batch))["loss/total"] != ma["loss/total"]


def test_bf16_autocast_path_trains_and_agrees_with_fp32():
    full = make_agent(BOTH, DISCRETE)
    half = make_agent(BOTH, DISCRETE, precision="bf16")
    batch = make_batch(full)
    lf, lh = full.loss_terms(batch), half.loss_terms(batch)
    for k in ("rec_image", "rec_vector", "rew", "con", "dyn", "rep"):
        assert lh[k].item() == pytest.approx(lf[k].item(), rel=0.05), k
    train_and_check(make_agent(BOTH, DISCRETE, precision="bf16"))


def test_bf16_warns_where_the_device_has_no_native_bf16_products():
    import warnings

    from dreamer_bench.agent.runtime import native_bf16

    def warned(precision):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_agent(BOTH, DISCRETE, precision=precision)
        return any("no native bf16" in str(w.message) for w in caught)

    # bf16 products in hardware: AVX-512 BF16 or AMX, as /proc/cpuinfo says, not as the code under test says
    flags = set()
    if Path("/proc/cpuinfo").exists():
        found = re.search(r"^flags\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
        flags = set(found.group(1).split()) if found else set()
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert native_bf16("cpu")
    elif flags and "avx512f" not in flags:  # (oneDNN may emulate bf16 with plain AVX-512: not judged)
        assert not native_bf16("cpu")
    assert warned("bf16") == (not native_bf16("cpu"))
    assert not warned("fp32")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trains():
    for precision in ("fp32", "bf16"):
        train_and_check(make_agent(BOTH, DISCRETE, device="cuda", precision=precision))


@pytest.mark.parametrize("act", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_the_compiled_step_trains_as_the_eager_one(act):
    """compile: true (the learning suite's setting; the README's speeds) compiles the update's
    pieces with torch.compile. From the same seed, the first update's gradients equal the eager
    step's to float rounding, tensor by tensor in norm, and two updates give its losses and, in
    norm over the whole model, its parameters. (In norm: LaProp's ε of 1e-20 turns a gradient at
    rounding level into a full step, whose sign a compiled kernel may flip.) The checks have power:
    an eager agent whose learning rate differs by 10% is far outside them. The reward and critic
    heads start away from their zero initialisation: with nearly uniform bins the two-hot
    expectation is the rounding its fused pairs leave (heads.twohot_mean), which follows the last
    bit of every probability, and a compiled softmax rounds some of them the other way."""
    import warnings

    import torch._dynamo.utils

    def away_from_uniform(agent):
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for head in (agent.reward, agent.critic):
                fan_in = head.out.weight.shape[1]
                head.out.weight.copy_(torch.randn(head.out.weight.shape, generator=gen) / fan_in**0.5)
                head.out.bias.copy_(-2.0 * symlog(head.bins).abs())  # the tails improbable, as once trained
            agent.slow_critic.load_state_dict(agent.critic.state_dict())
        return agent

    def trained(**overrides):
        agent = away_from_uniform(make_agent(BOTH, act, seed=3, warmup=0, **overrides))
        batch = make_batch(agent)
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics = [agent.train(dict(batch))]
            grads = {k: v.grad.detach().clone() for k, v in agent.named_parameters() if v.grad is not None}
            metrics.append(agent.train(dict(batch)))
        if overrides.get("compile"):  # really compiled: graphs were made and nothing fell back
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs
            assert not [w for w in caught if "torch.compile failed" in str(w.message)]
        return metrics, grads, {k: v.detach().clone() for k, v in agent.named_parameters()}

    def norm(tensors) -> float:
        return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)))

    start = {k: v.detach() for k, v in away_from_uniform(make_agent(BOTH, act, seed=3, warmup=0)).named_parameters()}
    (compiled, gc, c), (eager, ge, e), (_, _, other) = trained(compile=True), trained(), trained(lr=4.4e-5)
    for mc, me in zip(compiled, eager):
        for key in ("loss/total", "loss/policy", "loss/value", "loss/repval", "grad_norm", "imag/return"):
            assert mc[key] == pytest.approx(me[key], rel=1e-5, abs=1e-7), key
    assert gc.keys() == ge.keys() and len(ge) > 50
    for k in ge:
        assert norm([gc[k] - ge[k]]) <= 1e-4 * norm([ge[k]]) + 1e-12, k
    moved = norm(e[k] - start[k] for k in e)
    assert moved > 1e-5 and norm(c[k] - e[k] for k in e) < 1e-3 * moved
    assert norm(other[k] - e[k] for k in e) > 3e-2 * moved


def test_a_failing_compiler_falls_back_to_the_eager_step(monkeypatch):
    """A platform where torch.compile cannot build kernels still trains, with one warning per piece."""
    import warnings

    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("no C++ compiler here")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend=broken_backend, **kw))
    agent = make_agent(VECTOR, DISCRETE, compile=True)
    eager = make_agent(VECTOR, DISCRETE)
    batch = make_batch(agent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = agent.train(dict(batch))
    assert any("torch.compile failed" in str(w.message) for w in caught)
    assert metrics["loss/total"] == pytest.approx(eager.train(dict(batch))["loss/total"], rel=1e-5)
