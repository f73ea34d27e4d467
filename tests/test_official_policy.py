"""The same policy step for the same inputs as the official DreamerV3 (danijar/dreamerv3 at e3f0224).

tests/test_official_equivalence.py compares the update; this compares the acting path that fills
the replay: the encoder, the posterior step with episode resets inside the sequence (a reset
environment starts again from the initial latent state and a zero previous action), the actor and
the action sampled from it. tools/official/export_policy.py stepped the official ``policy`` through
20 steps of 3 environments, whose episodes start at different steps, on random observations, and
recorded what it saw, drew and computed (fixtures in tests/fixtures/official/policy/). Our
``Agent.policy``, with the official initial parameters and the official samples (``draws``), must
give the same deter at every step (rtol 1e-4 of its norm, as the update's forward quantities), the
same actor distribution (log-probabilities, or mean and standard deviation) and the same action.
The test fails when the reset is left out or the previous action is not the one sampled
(``test_a_wrong_acting_path_is_caught``; clipping it to [−1, 1] would not show, as both cores
scale an action beyond ±1 back to ±1 themselves).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest
import torch

from dreamer_bench.agent import ActSpace, Agent, make_config
from dreamer_bench.agent.official import load_official

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "official" / "policy"
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tools" / "official"))
from fixture_format import unpack  # noqa: E402

CASES = sorted(p.stem for p in FIXTURES.glob("*.npz"))
RTOL = 1e-4


def load(case: str) -> tuple[dict, dict]:
    with np.load(FIXTURES / f"{case}.npz") as f:
        data = unpack({k: f[k] for k in f.files})
    return data, json.loads(str(data.pop("meta")))


def build(fx: dict, meta: dict) -> Agent:
    space = {k: (max(1, int(np.prod(shape))),) for k, shape in (meta["vector_keys"] or {}).items()}
    if meta["obs"] == "vector":
        space["vector"] = (meta["vector_dim"],)
    # the official discrete actor is not mixed (README: deliberate choices)
    cfg = make_config(meta["preset"], overrides={"actor_unimix": 0.0})
    agent = Agent(space, ActSpace(meta["act"] == "discrete", meta["actions"]), cfg)
    load_official(agent, {k[len("param/"):]: v for k, v in fx.items() if k.startswith("param/")})
    return agent


def rel_err(ours, theirs) -> float:
    a, b = np.asarray(ours, np.float64).ravel(), np.asarray(theirs, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-6))


def compare(case: str) -> dict[str, float]:
    """Step our policy through the fixture's sequence; {quantity at step: relative error} of every
    quantity beyond tolerance (empty: the same)."""
    fx, meta = load(case)
    agent = build(fx, meta)
    discrete = meta["act"] == "discrete"
    keys = [k[len("obs/"):] for k in fx if k.startswith("obs/")]
    state, bad = None, {}
    for s in range(meta["steps"]):
        obs = {k: fx[f"obs/{k}"][s].reshape(meta["envs"], -1) for k in keys}
        obs["is_first"] = fx["is_first"][s]
        draws = {"post": fx["post"][s], "action": fx["act"][s] if discrete else fx["noise"][s]}
        state, env_action = agent.policy(state, obs, draws=draws)
        if (err := rel_err(state["deter"].numpy(), fx["deter"][s])) > RTOL:
            bad[f"deter at step {s}"] = err
        with torch.no_grad():
            params = agent.actor(agent.rssm.features(state["deter"], state["stoch"])).double()
        if discrete:
            theirs = torch.log_softmax(torch.as_tensor(fx["logits"][s], dtype=torch.float64), -1)
            if (err := rel_err(params.numpy(), theirs.numpy())) > RTOL:
                bad[f"actor log-probabilities at step {s}"] = err
            if not np.array_equal(env_action, fx["act"][s]):
                bad[f"action at step {s}"] = float("inf")
        else:
            mean, std = params.chunk(2, -1)
            for name, ours, theirs in (("mean", mean, fx["mean"][s]), ("std", std, fx["std"][s]),
                                       ("action", state["action"], fx["act"][s])):
                if (err := rel_err(ours.numpy(), theirs)) > RTOL:
                    bad[f"{name} at step {s}"] = err
            if not np.allclose(env_action, np.clip(fx["act"][s], -1, 1), rtol=RTOL, atol=1e-6):
                bad[f"environment action at step {s}"] = float("inf")
    return bad


def test_the_fixtures_cover_both_action_kinds_and_resets_inside_the_sequence():
    assert {"debug_vector_discrete", "debug_proprio_continuous"} <= set(CASES)
    fx, meta = load("debug_proprio_continuous")
    starts = fx["is_first"]
    assert starts[0].all() and starts[1:].any() and not starts[1:].all(1).any()  # resets at different steps
    assert (np.abs(fx["act"]) > 1).any()  # some sampled actions beyond [-1, 1]: stored unclipped


@pytest.mark.parametrize("case", CASES)
def test_our_policy_step_equals_the_official_one(case):
    bad = compare(case)
    assert not bad, "differs from the official policy: " + ", ".join(f"{k} ({v:.2g})" for k, v in sorted(bad.items()))


@pytest.mark.parametrize("change", ["no reset", "previous action halved"])
def test_a_wrong_acting_path_is_caught(monkeypatch, change):
    from dreamer_bench.agent import agent as agent_module

    original = agent_module.Agent.policy

    def policy(self, state, obs, *args, **kwargs):
        obs = dict(obs)
        if change == "no reset" and state is not None:
            obs["is_first"] = np.zeros_like(np.asarray(obs["is_first"]))
        if change == "previous action halved" and state is not None:
            state = dict(state, action=0.5 * state["action"])
        return original(self, state, obs, *args, **kwargs)

    monkeypatch.setattr(agent_module.Agent, "policy", policy)
    assert compare("debug_proprio_continuous")
