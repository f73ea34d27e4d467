"""Export fixtures of the official DreamerV3 policy step for tests/test_official_policy.py.

Run with the official environment's Python (tools/official/setup.sh), from its clone:

    $VENV/bin/python tools/official/export_policy.py --out tests/fixtures/official/policy [CASE ...]

For each case (see CASES) it builds the official agent (commit e3f0224) for a synthetic task and
steps its ``policy`` (the acting path: encoder, posterior step with episode resets, actor, the
sample) through S steps of N environments whose episodes start at different steps, on random
observations. It records, in one compressed .npz (tools/official/fixture_format.py):

- ``param/<name>``: the official initial parameters (debug preset: small);
- ``obs/<key>`` (S, N, ...) and ``is_first`` (S, N): what the policy saw;
- ``post`` (S, N, L): the posterior samples it drew (indices), ``deter`` (S, N, D): its deter;
- ``act`` (S, N) indices or (S, N, A) values: the actions it sampled (unclipped);
- discrete: ``logits`` (S, N, A) of its actor; continuous: ``mean``, ``std`` (S, N, A) and
  ``noise`` (S, N, A) = (act − mean)/std in float64, the standard normal draws it used;
- ``meta``: a JSON string with the case, shapes and versions.

The samples are recorded, not injected: the test gives them to our ``Agent.policy`` (``draws``).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from fixture_format import save  # noqa: E402

# name: (preset, obs kind, action kind)
CASES = {
    "debug_vector_discrete": ("debug", "vector", "discrete"),
    "debug_proprio_continuous": ("debug", "proprio", "continuous"),
}
N, S = 3, 20  # environments, steps
STARTS = {0: [0, 1, 2], 6: [1], 11: [0, 2], 15: [1]}  # step: environments whose episode starts there


def observations(rng, obs_kind):
    """One step of N environments' observations, at the scales of export_fixtures.make_batch."""
    import export_fixtures as ef

    if obs_kind == "vector":
        vec = rng.normal(0, 1.0, (N, ef.VECTOR_DIM)) * np.array([0.3, 1.0, 4.0, 20.0, 150.0])
        return {"vector": vec.astype(np.float32)}
    return {k: rng.normal(0, scale, (N, *shape)).astype(np.float32) for k, (shape, scale) in ef.PROPRIO.items()}


def export(name, out_dir):
    import elements
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    import export_fixtures as ef
    import official_envs
    from dreamerv3 import agent as official_agent

    preset, obs_kind, act_kind = CASES[name]
    config, overrides = ef.build_config(preset, [], (N, 8))  # the training batch: unused here
    obs_space, act_space = ef.spaces(obs_kind, act_kind)
    agent_config = dict(
        **config.agent, logdir="/tmp/dreamer-bench-fixture", seed=0, jax=config.jax, batch_size=N,
        batch_length=8, replay_context=config.replay_context, report_length=config.report_length,
        replica=0, replicas=1)
    official_envs.quiet_agent_options()
    agent = official_agent.Agent(obs_space, act_space, elements.Config(agent_config))
    jax.config.update("jax_transfer_guard", "allow")
    model = agent.model
    captured = {}
    orig_sample = official_agent.sample

    def sample(policy):
        pol = policy["action"]
        pol = getattr(pol, "output", pol)  # continuous: Agg(Normal) summed over dims
        if act_kind == "discrete":
            captured["logits"] = pol.logits
        else:
            captured["mean"], captured["std"] = pol.mean, pol.stddev
        return orig_sample(policy)

    official_agent.sample = sample

    def step(carry, obs):
        captured.clear()
        carry, act, out = model.policy(carry, obs, mode="train")
        return carry, act, out, dict(captured)

    pure = jax.jit(nj.pure(step))
    _, carry = nj.pure(model.init_policy)(dict(agent.params), N, seed=jnp.array([0, 0], jnp.uint32))
    state = dict(agent.params)
    rng = np.random.default_rng(len(name))
    record = {f"param/{k}": np.asarray(v) for k, v in state.items()}
    rows = {k: [] for k in ("is_first", "post", "deter", "act", "logits", "mean", "std", "noise")}
    obs_rows = {}
    for s in range(S):
        first = np.zeros(N, bool)
        first[STARTS.get(s, [])] = True
        obs = observations(rng, obs_kind)
        obs.update(reward=np.zeros(N, np.float32), is_first=first, is_last=np.zeros(N, bool),
                   is_terminal=np.zeros(N, bool))
        for k, v in obs.items():
            if k not in ("reward", "is_first", "is_last", "is_terminal"):
                obs_rows.setdefault(k, []).append(v)
        state, (carry, act, out, cap) = pure(state, carry, {k: jnp.asarray(v) for k, v in obs.items()},
                                             seed=jnp.array([s, 3], jnp.uint32))
        rows["is_first"].append(first)
        rows["post"].append(np.asarray(out["dyn/stoch"]).argmax(-1).astype(np.int8))
        rows["deter"].append(np.asarray(out["dyn/deter"]))
        a = np.asarray(act["action"])
        rows["act"].append(a)
        if act_kind == "discrete":
            rows["logits"].append(np.asarray(cap["logits"]))
        else:
            mean, std = np.asarray(cap["mean"], np.float64), np.asarray(cap["std"], np.float64)
            rows["mean"].append(mean)
            rows["std"].append(std)
            rows["noise"].append((a.astype(np.float64) - mean) / std)
    official_agent.sample = orig_sample
    record.update({k: np.stack(v) for k, v in rows.items() if v})
    record.update({f"obs/{k}": np.stack(v) for k, v in obs_rows.items()})
    meta = {"case": name, "preset": preset, "obs": obs_kind, "act": act_kind, "envs": N, "steps": S,
            "official_flags": overrides, "official_commit": "e3f02248693a79dc8b0ebd62c93683888ddaccfe",
            "jax": jax.__version__, "rssm": dict(config.agent.dyn.rssm), "vector_dim": ef.VECTOR_DIM,
            "actions": ef.ACTIONS,
            "vector_keys": {k: list(shape) for k, (shape, _) in ef.PROPRIO.items()} if obs_kind == "proprio" else None}
    record["meta"] = np.array(json.dumps(meta))
    save(record, out_dir, name)


def main(argv=None):
    import official_envs

    official_envs.export_main(__doc__, CASES, export, argv, environ=official_envs.AGENT_ENVIRON)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    main()
