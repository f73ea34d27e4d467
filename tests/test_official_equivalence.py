"""The same update for the same inputs as the official DreamerV3 (danijar/dreamerv3 at e3f0224).

The fixtures in tests/fixtures/official/ were made by running the official JAX code
(tools/official/export_fixtures.py; their data may be committed, the code is not copied): its
initial parameters, one replayed batch with context latents, the samples its samplers drew, and
for each of 3 updates with lr warm-up 0 every per-step loss term, every metric, every parameter's
gradient, the update direction (θ_k − θ_0)/lr, LaProp's two moments, the return statistics and
the slow critic. Each test loads the official parameters into our agent through the name map of
``dreamer_bench.agent.official``, injects the official samples, runs our real ``Agent.train`` on
the same batch three times, and compares every quantity. Two cases start from the official initial
state itself (zero-initialised reward and critic outputs, return statistics at 0) and hold one update
and the bins the official heads used: there the two-hot expectation of uniform bins is the rounding
that the official program's fused pairs leave (``heads.twohot_mean``), and the early imagined values,
advantages and policy gradient carry it.

Tolerances are relative to each tensor's norm, ‖ours − official‖ ≤ rtol·‖official‖ (+ a floor of
1e-6 for tensors that are nearly 0):

- forward quantities (loss terms, metrics, return statistics): rtol 1e-4. Both compute in fp32;
  sums over batches and pixels run in different orders in XLA and PyTorch (about 1e-7 each).
  Per-step loss terms also get an absolute floor of 1e-6 per element (RMS): a cross-entropy
  near 0 is the difference of two O(1) numbers, computed in another order on each side.
- gradients: rtol 1e-3: the backward pass of the 64-step posterior rollout and 15-step
  imagination compounds those rounding differences.
- update directions, moments and the slow critic: rtol 1e-3, as the gradients they come from.
  Denormal floats are flushed to zero on our side during the comparison, as XLA does on CPU
  (FLUSH_DENORMALS below): without it, elements whose gradient is below ~3e-18 step differently;
  elements with |g| < 1e-16, or whose gradient the two sides disagree on by more than half, at
  some update (rounding decides their sign; at most 1% of the elements, asserted) are left out
  (FTZ_BOUNDARY, DISAGREE).

A test that fails when a formula is perturbed: ``test_a_perturbed_formula_is_caught`` reruns the
comparison with one formula changed (the free-bits clip, the return scale's percentile, λ, the
replay λ', the slow critic's rate, the continue target's γ, LaProp's β2, the two-hot bins) and
checks that the comparison names the quantities that then differ. (Not the entropy scale: in
these fixtures the advantages are large, by design of the return-scale check, and the entropy
term is below the tolerance unless changed a hundredfold; tests/test_returns.py checks it by hand.)
"""

from __future__ import annotations

import json
import pathlib
import sys
import zlib

import numpy as np
import pytest
import torch

from dreamer_bench.agent import ActSpace, Agent, make_config
from dreamer_bench.agent.official import load_official, to_ours

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "official"
# the fixtures' file layout, shared with the exporter (numpy only; the harness needs no import here)
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tools" / "official"))
from fixture_format import drawn_kernel, unpack  # noqa: E402
CASES = sorted(p.stem for p in FIXTURES.glob("*.npz"))
FORWARD_RTOL = 1e-4
GRAD_RTOL = 1e-3
UPDATE_RTOL = 1e-3
FLOOR = 1e-6
# XLA on CPU flushes denormal floats to zero; PyTorch keeps them. It matters in one place: the
# LaProp second moment (1 − β2)·g² of a gradient below ~3e-18 is denormal, so the official
# update divides by ε = 1e-20 alone (a step of up to ~300·lr), where ours steps by about lr.
# The comparison runs with denormals flushed on our side too, so both compute the same.
FLUSH_DENORMALS = True
# Even so, an element whose gradient is within a few orders of that boundary (|g| < 1e-16, so
# (1 − β2)·g² < 1e-35) can land on either side of it depending on the order of the operations:
# such elements are left out of the direction, first-moment and slow-critic comparisons, and
# they must stay rare (at most 1% of the elements compared).
FTZ_BOUNDARY = 1e-16
# Likewise an element whose own gradient the two implementations disagree on by more than half of
# it (the gradient comparison above bounds such elements' total by the tensor's norm) is rounding
# in both: its sign is arbitrary, and LaProp makes any sign a step of about ±lr. Such elements are
# left out of the same comparisons and count towards the 1%.
DISAGREE = 0.5
MAX_UNRESOLVED = 0.01
# The size1m fixtures store gradients and directions in float16 divided by the tensor's largest
# element; below float16's normal range (6.1e-5 of that) the file keeps too few bits to give an
# element's sign, so those elements (tiny gradients, e.g. of two-hot bins far from any target)
# are left out of the direction comparison too: 4.2% (images) and 5.0% (vector) of the elements,
# each with a gradient under 6.1e-5 of its tensor's largest (the gradient comparison, unmasked,
# still covers them by norm); at most 10%.
FP16_NORMAL = 2.0**-14
MAX_NOT_STORED = 0.10
# Per-step loss terms near 0 (the cross-entropy of a nearly deterministic two-hot prediction is
# the difference of O(1) numbers): an absolute floor of 1e-6 per element (RMS) besides rtol.
LOSS_ATOL = 1e-6

# the official flags of a case that switch a technique off → our technique
OFF_FLAGS = {
    "--agent.dyn.rssm.free_nats": "free_bits",  # 0
    "--agent.dyn.rssm.unimix": "unimix",  # 0 (the official actor is unmixed anyway)
    "--agent.opt.agc": "agc",  # 0
    "--agent.loss_scales.repval": "repval",  # 0: the term is computed, its scale is 0
    "--agent.retnorm.impl": "return_norm",  # none
    "--agent.imag_loss.slowreg": "slow_critic",  # 0 (with repl_loss.slowreg 0)
    "--agent.loss_scales.dyn": "kl_balance",  # 0.55 (with rep 0.55)
    "--agent.dyn.rssm.blocks": "block_gru",  # 1
    "--agent.reward_grad": "reward_grad",  # False (with repval_grad False)
    "--agent.rewhead.output": "twohot",  # mse (with value.output mse)
}


def load(case: str) -> tuple[dict, dict]:
    with np.load(FIXTURES / f"{case}.npz") as f:
        data = unpack({k: f[k] for k in f.files})  # one flat array per dtype (fixture_format.py)
    meta = json.loads(str(data["meta"]))
    for key, (mean, std, shape, seed_name, crc) in meta.get("drawn_kernels", {}).items():
        # size1m: the initial kernels the official agent started from, drawn again, not stored
        drawn = drawn_kernel(seed_name, mean, std, shape)
        assert zlib.crc32(drawn.tobytes()) == crc, f"{case}: {key} drawn unlike the exporter (numpy {np.__version__})"
        name = f"slow0/{key[len('slowval/'):]}" if key.startswith("slowval/") else f"param/{key}"
        data[name] = drawn
    scaled = [k for k in data if k.startswith("scale/")]
    for key in scaled:  # float16 / max|x| (size1m cases)
        name = key[len("scale/"):]
        data[name] = data[name].astype(np.float64) * float(data.pop(key))
    meta = json.loads(str(data.pop("meta")))
    meta["compact"] = bool(scaled)
    return data, meta


def settings(meta: dict) -> tuple[tuple[str, ...], dict]:
    """Our techniques off and config fields for the official settings of a case."""
    flags = meta["official_flags"]
    off = [name for flag, name in OFF_FLAGS.items() if flag in flags]
    B, T = meta["batch"]
    fields = dict(batch_size=B, batch_length=T, warmup=0, lr=meta["lr"],
                  actor_unimix=0.0)  # the official discrete actor is not mixed (README: deliberate choices)
    return tuple(off), fields


def obs_space(meta: dict) -> dict:
    space = {}
    for key, shape in (meta.get("vector_keys") or {}).items():  # DMC-like keys; a scalar is (1,) here
        space[key] = (max(1, int(np.prod(shape))),)
    if meta["obs"] in ("vector", "both"):
        space["vector"] = (meta["vector_dim"],)
    if meta["obs"] in ("image", "both"):
        space["image"] = (64, 64, 3)
    return space


def official_params(fx: dict) -> dict:
    params = {k[len("param/"):]: v for k, v in fx.items() if k.startswith("param/")}
    params.update({f"slowval/{k[len('slow0/'):]}": v for k, v in fx.items() if k.startswith("slow0/")})
    return params


def build(case: str, off=(), **overrides) -> tuple[Agent, dict, dict]:
    fx, meta = load(case)
    base_off, fields = settings(meta)
    cfg = make_config(meta["preset"], overrides={**fields, **overrides}, off=tuple(base_off) + tuple(off))
    agent = Agent(obs_space(meta), ActSpace(meta["act"] == "discrete", meta["actions"]), cfg)
    load_official(agent, official_params(fx))
    if "bins" in fx:  # the cases at the official initial state: the bins the official heads used
        bins = torch.as_tensor(np.asarray(fx["bins"], np.float32))
        for head in (agent.reward, agent.critic, agent.slow_critic):
            head.bins.copy_(bins)
    if "retnorm0" in fx:  # absent when the official return normalisation is off
        lo, hi = fx["retnorm0"]
        agent.retnorm.low.fill_(float(lo))
        agent.retnorm.high.fill_(float(hi))
    return agent, fx, meta


def our_batch(fx: dict, meta: dict) -> dict:
    b = {k[len("batch/"):]: v for k, v in fx.items() if k.startswith("batch/")}
    B, T = meta["batch"]
    batch = {k: b[k].reshape(B, T + 1, *shape) for k, shape in obs_space(meta).items()}
    action = b["action"]
    if meta["act"] == "discrete":
        action = np.eye(meta["actions"], dtype=np.float32)[action]
    batch.update(action=action, reward=b["reward"], is_first=b["is_first"], is_last=b["is_last"],
                 is_terminal=b["is_terminal"], deter=b["dyn/deter"], stoch=b["dyn/stoch"])
    return {k: np.array(v) for k, v in batch.items()}


def draws(fx: dict, meta: dict, k: int) -> dict:
    p = f"u{k}/"
    action = fx[p + "act"].T if meta["act"] == "discrete" else fx[p + "act_noise"].transpose(1, 0, 2)
    return {"post": fx[p + "post"].transpose(1, 0, 2), "prior": fx[p + "prior"].transpose(1, 0, 2),
            "action": np.ascontiguousarray(action)}


def rel_err(ours, theirs, atol=0.0) -> float:
    """‖ours − theirs‖ / (‖theirs‖ + atol·√n): the relative error, with an absolute floor of
    ``atol`` per element (RMS) for tensors near 0."""
    a = np.asarray(ours, np.float64).reshape(-1)
    b = np.asarray(theirs, np.float64).reshape(-1)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b) + atol * np.sqrt(a.size), FLOOR))


def mapped(agent: Agent, arrays: dict) -> dict:
    """Official parameter-shaped arrays (without the module prefix 'slowval') in our layout."""
    return to_ours(arrays, agent.cfg, agent.obs_space, agent.act_space.discrete)


def compare(case: str, off=(), **overrides) -> dict[str, float]:
    """Run 3 updates of our agent on a fixture; return {quantity: relative error} of every
    quantity beyond its tolerance (empty: equal). Denormal floats are flushed to zero meanwhile,
    as XLA does on CPU (see FLUSH_DENORMALS)."""
    torch.set_flush_denormal(FLUSH_DENORMALS)
    try:
        return _compare(case, off, **overrides)
    finally:
        torch.set_flush_denormal(False)


def _compare(case: str, off=(), **overrides) -> dict[str, float]:
    agent, fx, meta = build(case, off, **overrides)
    batch0 = our_batch(fx, meta)
    B, T = meta["batch"]
    names = dict(agent.named_parameters())
    theta0 = {k: v.detach().clone().double() for k, v in names.items()}
    params = official_params(fx)
    param_keys = [k for k in params if not k.startswith("slowval/")]
    index = {id(p): i for i, p in enumerate(agent.optimizer.params)}
    bad: dict[str, float] = {}
    resolved: dict[str, np.ndarray] = {}  # elements whose gradient stayed resolved (FTZ_BOUNDARY, DISAGREE)
    stored: dict[str, np.ndarray] = {}  # size1m: elements the float16 file resolves (FP16_NORMAL)
    masked = [0, 0, 0]  # unresolved, not stored, compared

    def check(name, err, rtol):
        if not err <= rtol:  # also catches NaN
            bad[name] = err

    updates = range(1, meta["updates"] + 1)
    agent.inject_draws([draws(fx, meta, k) for k in updates])
    for k in updates:
        p = f"u{k}/"
        metrics = agent.train({key: v.copy() for key, v in batch0.items()})
        losses = agent.last_losses
        # loss terms, per step
        for term, value in losses.items():
            ours = value.float().cpu().numpy()
            official = term[len("rec_"):] if term.startswith("rec_") else term
            theirs = fx[p + f"loss/{official}"]
            if term in ("policy", "value"):
                ours = ours.mean(1).reshape(B, T)
            check(f"u{k} loss/{term}", rel_err(ours, theirs, atol=LOSS_ATOL / FORWARD_RTOL), FORWARD_RTOL)
        missing = {key[len(p + "loss/"):] for key in fx if key.startswith(p + "loss/")} - {
            t[len("rec_"):] if t.startswith("rec_") else t for t in losses}
        if not agent.cfg.on("repval"):
            missing.discard("repval")  # computed by the official agent with scale 0
        for term in missing:
            bad[f"u{k} loss/{term} (absent)"] = float("inf")
        # metrics defined alike on both sides
        check(f"u{k} grad_norm", rel_err(metrics["grad_norm"], fx[p + "metric/opt/grad_norm"]), FORWARD_RTOL)
        check(f"u{k} imag/entropy", rel_err(metrics["imag/entropy"], fx[p + "metric/ent/action"]), FORWARD_RTOL)
        check(f"u{k} imag/return", rel_err(metrics["imag/return"], fx[p + "ret"].mean()), FORWARD_RTOL)
        # the critic's mean over the imagined states, start included (the official ``val``): what
        # tools/official/compare_metrics.py sets side by side as the imagined value
        check(f"u{k} imag/value", rel_err(metrics["imag/value"], fx[p + "metric/val"], atol=LOSS_ATOL), FORWARD_RTOL)
        check(f"u{k} imag/reward", rel_err(metrics["imag/reward"], fx[p + "metric/rew"], atol=LOSS_ATOL), FORWARD_RTOL)
        # the return scale's view of the imagined returns, as the official agent logs it
        for ours_key, theirs in (("imag/advantage", "adv"), ("imag/advantage_std", "adv_std"),
                                 ("imag/advantage_mag", "adv_mag"), ("imag/return_normed", "ret")):
            check(f"u{k} {ours_key}", rel_err(metrics[ours_key], fx[p + f"metric/{theirs}"], atol=LOSS_ATOL), FORWARD_RTOL)
        # a share of the steps: one return that rounding puts on the other side of |·| = 1 moves it by 1/N
        n_steps = fx[p + "ret"].size
        if abs(metrics["imag/return_rate"] - float(fx[p + "metric/ret_rate"])) > 1.5 / n_steps:
            bad[f"u{k} imag/return_rate"] = abs(metrics["imag/return_rate"] - float(fx[p + "metric/ret_rate"]))
        L = agent.cfg.latents
        check(f"u{k} prior_entropy", rel_err(metrics["wm/prior_entropy"] * L, fx[p + "metric/dyn_ent"]), FORWARD_RTOL)
        check(f"u{k} post_entropy", rel_err(metrics["wm/post_entropy"] * L, fx[p + "metric/rep_ent"]), FORWARD_RTOL)
        # gradients (raw, before AGC)
        for name in names:
            if names[name].grad is not None:
                g = names[name].grad.double().abs().numpy()
                resolved[name] = resolved.get(name, np.ones(g.shape, bool)) & ((g >= FTZ_BOUNDARY) | (g == 0))
        if p + f"grad/{param_keys[0]}" in fx:
            grads = mapped(agent, {key: fx[p + f"grad/{key}"] for key in param_keys})
            for name, g in grads.items():
                ours = names[name].grad.double().numpy()
                check(f"u{k} grad {name}", rel_err(ours, g), GRAD_RTOL)
                if meta["compact"]:  # float16 / max|g|: below its normal range the file has no sign
                    stored[name] = stored.get(name, np.ones(g.shape, bool)) & (
                        (np.abs(g) >= FP16_NORMAL * np.abs(g).max()) | ((g == 0) & (ours == 0)))
                    ok = ~stored[name] | (np.abs(ours - g) <= DISAGREE * np.abs(g))
                else:
                    ok = np.abs(ours - g) <= DISAGREE * np.abs(g)
                resolved[name] &= ok
        # return statistics
        if p + "retnorm" in fx:
            stats = np.array([agent.retnorm.low.item(), agent.retnorm.high.item()])
            check(f"u{k} retnorm", rel_err(stats, fx[p + "retnorm"]), FORWARD_RTOL)
        # update direction and LaProp's moments (where the fixture holds them)
        if p + f"dir/{param_keys[0]}" in fx:
            dirs = mapped(agent, {key: fx[p + f"dir/{key}"] for key in param_keys})
            for name in dirs:
                ours = ((names[name].detach().double() - theta0[name]) / agent.cfg.lr).numpy()
                keep = stored.get(name, np.ones(ours.shape, bool))
                mask = resolved[name] & keep
                masked[0] += int((~resolved[name] & keep).sum())
                masked[1] += int((~keep).sum())
                masked[2] += mask.size
                check(f"u{k} direction {name}", rel_err(ours[mask], dirs[name][mask]), UPDATE_RTOL)
        if p + f"opt/state/1/1/{param_keys[0]}" in fx:
            nus = mapped(agent, {key: fx[p + f"opt/state/1/1/{key}"] for key in param_keys})
            mus = mapped(agent, {key: fx[p + f"opt/state/2/1/{key}"] for key in param_keys})
            for name in nus:
                i = index[id(names[name])]
                mask = resolved[name]
                check(f"u{k} second moment {name}",
                      rel_err(agent.optimizer.second[i].double().numpy(), nus[name]), UPDATE_RTOL)
                check(f"u{k} first moment {name}",
                      rel_err(agent.optimizer.momentum[i].double().numpy()[mask], mus[name][mask]), UPDATE_RTOL)
        slow_keys = [key for key in fx if key.startswith(p + "slow/")]
        if slow_keys and agent.slow_critic is not None:
            arrays = {**params, **{f"slowval/{key[len(p + 'slow/'):]}": fx[key] for key in slow_keys}}
            slow = {n: v for n, v in mapped(agent, arrays).items() if n.startswith("slow_critic.")}
            state = agent.state_dict()
            for name, value in slow.items():
                critic = name.replace("slow_critic.", "critic.", 1)
                mask = resolved[critic] & stored.get(critic, np.ones(resolved[critic].shape, bool))
                check(f"u{k} {name}", rel_err(state[name].double().numpy()[mask], value[mask]), UPDATE_RTOL)
    if masked[2] and masked[0] > MAX_UNRESOLVED * masked[2]:
        bad[f"unresolved elements {masked[0]} of {masked[2]}"] = masked[0] / masked[2]
    if masked[2] and masked[1] > MAX_NOT_STORED * masked[2]:
        bad[f"elements the file does not resolve {masked[1]} of {masked[2]}"] = masked[1] / masked[2]
    return bad


def test_the_fixtures_cover_every_case_the_issue_names():
    assert {"debug_vector_discrete", "debug_vector_continuous", "debug_image_discrete",
            "debug_image_continuous", "size1m_vector_discrete", "size1m_image_continuous",
            "debug_vector_discrete_free_nats0", "debug_vector_discrete_unimix0",
            "debug_vector_continuous_agc0", "debug_proprio_continuous",
            "debug_proprio_continuous_initial", "size1m_proprio_continuous_initial"} <= set(CASES)
    # every technique the official configuration can switch off has a case
    flagged = {flag for case in CASES for flag in load(case)[1]["official_flags"]}
    assert set(OFF_FLAGS) <= flagged, sorted(set(OFF_FLAGS) - flagged)
    fx, meta = load("debug_vector_discrete")
    b = fx["batch/is_first"], fx["batch/is_terminal"], fx["batch/is_last"]
    assert b[0][:, 1:].any() and b[1][:, 1:].any() and (b[2] & ~b[1])[:, 1:].any()  # starts, terminals, time limits
    assert sum(p.stat().st_size for p in FIXTURES.rglob("*.npz")) < 10.5e6  # 9.8 MB (README)


@pytest.mark.parametrize("case", CASES)
def test_our_update_equals_the_official_one(case):
    bad = compare(case)
    assert not bad, "differs from the official update: " + ", ".join(f"{k} ({v:.2g})" for k, v in sorted(bad.items()))


PERTURBED = {
    # name: (config change, a quantity that must then differ)
    "free-bits clip 1.0 → 0.9": (dict(free_nats=0.9), "loss/dyn"),
    "return scale percentile 5 → 6": (dict(retnorm_low=6.0), "retnorm"),
    "λ 0.95 → 0.94": (dict(return_lambda=0.94), "loss/value"),
    "replay λ' 0.95 → 0.94": (dict(replay_lambda=0.94), "loss/repval"),
    "slow critic rate 0.02 → 0.021": (dict(slow_rate=0.021), "slow_critic"),
    "continue target γ 1 − 1/333 → 1 − 1/300": (dict(discount=1 - 1 / 300), "loss/con"),
    "LaProp β2 0.999 → 0.998": (dict(beta2=0.998), "second moment"),
}


@pytest.mark.parametrize("name", list(PERTURBED))
def test_a_perturbed_formula_is_caught(name):
    change, quantity = PERTURBED[name]
    bad = compare("debug_vector_discrete", **change)
    assert any(quantity in k for k in bad), f"{name}: no {quantity} among the differences {sorted(bad)}"


def test_a_perturbed_twohot_summation_is_caught(monkeypatch):
    """A code change rather than a setting: the two-hot prediction summed without the mirrored
    pairing changes the values at the level of rounding only, but a wrong bin does not."""
    from dreamer_bench.agent import heads

    def shifted(logits, bins):
        probs = torch.softmax(logits.float(), -1)
        return probs @ torch.roll(bins, 1)

    monkeypatch.setattr(heads, "twohot_mean", shifted)
    bad = compare("debug_vector_discrete")
    assert any("loss/value" in k or "loss/repval" in k for k in bad), sorted(bad)


@pytest.mark.parametrize("case, quantity", [("size1m_proprio_continuous_initial", "loss/policy"),
                                             ("debug_proprio_continuous_initial", "grad actor.out.weight")])
def test_the_exact_pair_sum_misses_the_official_initial_update(monkeypatch, case, quantity):
    """Summing the mirrored pairs exactly (each pair's probabilities subtracted first, so that
    uniform bins predict exactly 0, as the official code's comment intends) is not what the
    official compiled program computes: at its initial state the imagined values, the advantages,
    the policy loss and (debug) the actor's gradient then differ. The perturbed cases above cannot
    tell: their tail bins hold too little probability for the rounding to show."""
    from dreamer_bench.agent import heads

    def exact(logits, bins):
        probs = torch.softmax(logits.float(), -1)
        m = bins.shape[0] // 2
        return (probs[..., :m] - probs[..., m + 1:].flip(-1)) @ bins[:m]

    monkeypatch.setattr(heads, "twohot_mean", exact)
    bad = compare(case)
    assert any(quantity in k for k in bad) and any("imag/value" in k for k in bad), sorted(bad)
    assert not compare("debug_vector_discrete")


def merged_proprio(case: str = "debug_proprio_continuous") -> tuple[dict, dict]:
    """The DMC-like fixture rewritten for an agent that sees its keys as one concatenated
    ``vector`` (what our DMC adapter gave before 0.2.0): the batch, the decoder's output layers,
    their gradients, directions and moments concatenated in sorted key order, the per-key
    reconstruction losses summed. Mathematically the same model; only AGC, which clips each
    tensor by its own norm, tells the two apart."""
    fx, meta = load(case)
    keys = sorted(meta["vector_keys"])
    B, T = meta["batch"]
    out = {}
    groups: dict[tuple[str, str], list] = {}
    for name, value in fx.items():
        hit = next((k for k in keys if f"dec/vec/{k}/pred/" in name), None)
        if hit is not None:
            groups.setdefault(tuple(name.split(f"dec/vec/{hit}/pred/")), []).append((hit, value))
        elif name.startswith("batch/") and name[len("batch/"):] in keys:
            continue
        elif any(name.endswith(f"loss/{k}") for k in keys):
            total = name[: name.rindex("loss/")] + "loss/vector"
            out[total] = out.get(total, 0) + value
        else:
            out[name] = value
    for (head, tail), parts in groups.items():
        parts = [v for _, v in sorted(parts, key=lambda kv: kv[0])]
        out[f"{head}dec/vec/vector/pred/{tail}"] = np.concatenate(parts, -1)
    out["batch/vector"] = np.concatenate([fx[f"batch/{k}"].reshape(B, T + 1, -1) for k in keys], -1)
    meta = {**meta, "vector_keys": None, "obs": "vector", "vector_dim": out["batch/vector"].shape[-1]}
    return out, meta


def test_dmc_keys_are_clipped_apart_as_the_official_decoder_does(monkeypatch):
    """Why our DMC adapter gives one observation key per dm_control key: with the keys merged,
    the first update's losses and gradients still match (the rewrite is exact), but AGC then
    clips the merged output layer by one norm and the update leaves the official one."""
    fx, meta = merged_proprio()
    monkeypatch.setitem(globals(), "load", lambda case: (dict(fx), dict(meta)))
    bad = compare("debug_proprio_continuous")
    assert not [k for k in bad if k.startswith("u1 loss") or k.startswith("u1 grad ")], sorted(bad)
    assert any("direction decoder.vector_out.vector" in k for k in bad), sorted(bad)
    monkeypatch.undo()
    assert not compare("debug_proprio_continuous")  # per key, as the adapter now gives them


# The output layers the exporter gave random weights (perturb_initial_state in
# tools/official/export_fixtures.py): the official ones start at 0, as ours do (tests/test_init.py).
PERTURBED_HEADS = ("reward.out.", "critic.out.")


def init_differences(case: str) -> list[str]:
    """Our own initial parameters (not loaded from the fixture) against the official agent's
    initial ones, tensor by tensor in our layout: constant tensors (biases, norm scales) must be
    equal; random ones must have the official mean and standard deviation within sampling error
    (both sides are samples: 5/sqrt(n) relative on the std and 6·std/sqrt(n) on the mean, plus
    1% on the std). The size1m fixtures hold the official kernels' mean and std and a kernel
    drawn with them (``drawn_kernels``), which is what is compared here. Returns the tensors that
    differ, empty when ours starts as the official agent does."""
    fx, meta = load(case)
    base_off, fields = settings(meta)
    cfg = make_config(meta["preset"], overrides=fields, off=base_off)
    agent = Agent(obs_space(meta), ActSpace(meta["act"] == "discrete", meta["actions"]), cfg)
    theirs = mapped(agent, {k: v for k, v in official_params(fx).items() if not k.startswith("slowval/")})
    ours = {k: v.detach().double().numpy() for k, v in agent.named_parameters()}
    bad = []
    for name, official in sorted(theirs.items()):
        o, t = ours[name], np.asarray(official, np.float64)
        if name.startswith(PERTURBED_HEADS):
            if np.any(o != 0):
                bad.append(f"{name}: not zero")
            continue
        n = t.size
        if t.std() == 0:
            if not np.array_equal(o, t):
                bad.append(f"{name}: {o.mean():.4g} where the official is constant {t.mean():.4g}")
            continue
        ratio = o.std() / t.std()
        if abs(ratio - 1) > 5 / np.sqrt(n) + 0.01:
            bad.append(f"{name}: std {o.std():.4g} against {t.std():.4g} (n={n})")
        if abs(o.mean() - t.mean()) > 6 * t.std() / np.sqrt(n):
            bad.append(f"{name}: mean {o.mean():.4g} against {t.mean():.4g} (n={n})")
    missing = set(ours) - set(theirs) - {k for k in ours if k.startswith("slow_critic.")}
    bad += [f"{name}: no official counterpart" for name in sorted(missing)]
    return bad


SIZE1M = [c for c in CASES if c.startswith("size1m")]


@pytest.mark.parametrize("case", SIZE1M)
def test_our_initial_parameters_are_distributed_as_the_official_ones(case):
    """The equivalence cases start both agents from the official parameters; a run starts ours
    from its own initialiser. Its scale decides how fast everything learns, so it is compared
    with the official initial parameters of the size1m model (where tensors are large enough
    for their std to be measured to ~1%): every kernel's std and mean, every bias and norm scale."""
    bad = init_differences(case)
    assert not bad, "our initialiser differs from the official one: " + "; ".join(bad)


@pytest.mark.parametrize("change", ["no truncation correction", "fan doubled"])
def test_a_perturbed_initialiser_is_caught(monkeypatch, change):
    from dreamer_bench.agent import functional, nets

    if change == "no truncation correction":  # std 12% low: σ = √(1/fan_in) before truncation
        monkeypatch.setattr(functional, "TRUNC_CORRECTION", 1.0)
    else:  # std 29% low, as a fan-average on a layer twice as wide out as in would give
        init = functional.init_weight_
        monkeypatch.setattr(nets, "init_weight_", lambda w, fan_in, scale=1.0: init(w, 2 * fan_in, scale))
    bad = init_differences(SIZE1M[0])
    assert sum("std" in line for line in bad) >= 20, bad
