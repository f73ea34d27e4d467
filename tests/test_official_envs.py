"""Our environment adapters against the official wrappers (danijar/dreamerv3 at e3f0224).

tests/fixtures/official/envs/ holds trajectories of the official ``DMC`` and ``Atari`` classes
behind the official ``wrap_env`` (tools/official/export_envs.py, run with the official code and
the same mujoco and ale-py versions as here): a fixed action sequence of 1,100 policy steps,
resets after every episode end, and the observations, rewards and episode flags each step gave.
Each test steps our adapter with the same actions and the same seed (and, for Atari, the same
no-op counts) and compares every step, except where the README names a deliberate difference:

- Atari: the official wrapper marks the frame cap as a terminal (``is_terminal = is_last``); ours
  reports it as a truncation (``is_last`` only), unless ``terminal_at_cap`` is set, which the
  last test checks against the official flags.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest

from dreamer_bench.envs import make_env

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "official" / "envs"


def load(case):
    with np.load(FIXTURES / f"{case}.npz") as f:
        data = {k: f[k] for k in f.files}
    return data, json.loads(str(data.pop("meta")))


class ForcedNoops:
    """Our Atari adapter's no-op generator, replaced to give the counts the official run used."""

    def __init__(self, counts):
        self.counts, self.used = list(counts), 0

    def integers(self, *args, **kwargs):
        value = self.counts[self.used % len(self.counts)]
        self.used += 1
        return value


def our_env(case, meta, **settings):
    s = meta["settings"]
    if case.startswith("dmc_"):
        env = make_env(f"dmc_{s['domain']}_{s['task']}", seed=s["seed"], action_repeat=s["repeat"], obs=s["obs"],
                       **settings)
    else:
        env = make_env(f"atari_{s['game']}", seed=s["seed"], action_repeat=s["repeat"], frame_cap=s["frame_cap"],
                       **settings)
        env.rng = ForcedNoops(s["noops"])
    return env


def rollout(env, actions):
    out = {k: [] for k in ("reward", "is_first", "is_last", "is_terminal", "sha1", "image")}
    for a in actions:
        obs = env.step(a).obs
        for k in ("reward", "is_first", "is_last", "is_terminal"):
            out[k].append(obs[k])
        for k in env.obs_space:
            if k != "image":
                out.setdefault(f"obs/{k}", []).append(obs[k])
        if "image" in obs:
            image = np.ascontiguousarray(obs["image"], np.uint8)
            out["image"].append(image)
            out["sha1"].append(hashlib.sha1(image.tobytes()).hexdigest())
    env.close()
    return out


def assert_same_trajectory(ours, fx, terminal_expected=None):
    steps = len(fx["reward"])
    for k in ("is_first", "is_last"):
        np.testing.assert_array_equal(np.asarray(ours[k], bool), fx[k], err_msg=k)
    terminal = fx["is_terminal"] if terminal_expected is None else terminal_expected
    np.testing.assert_array_equal(np.asarray(ours["is_terminal"], bool), terminal, err_msg="is_terminal")
    np.testing.assert_allclose(np.asarray(ours["reward"], np.float32), fx["reward"], rtol=0, atol=0)
    official_keys = sorted(k for k in fx if k.startswith("obs/"))
    assert sorted(k for k in ours if k.startswith("obs/")) == official_keys  # one key per official key
    for k in official_keys:  # the official keeps a scalar as shape (); ours as (1,)
        theirs = fx[k].reshape(len(fx[k]), -1)
        assert ours[k][0].dtype == theirs.dtype, k
        np.testing.assert_array_equal(np.stack(ours[k]), theirs, err_msg=k)
    if "sha1" in fx:
        differ = [t for t in range(steps) if ours["sha1"][t] != fx["sha1"][t]]
        if differ:
            t = differ[0]
            detail = ""
            if t in list(fx["frame_steps"]):
                frame = fx["frames"][list(fx["frame_steps"]).index(t)]
                detail = f", max pixel difference {np.abs(ours['image'][t].astype(int) - frame).max()}"
            raise AssertionError(f"{len(differ)} of {steps} frames differ, first at step {t}{detail}")


def test_the_fixtures_span_resets_and_time_limits():
    for case in ("dmc_walker_walk_proprio", "dmc_cartpole_swingup_vision", "atari_pong"):
        fx, meta = load(case)
        assert len(fx["reward"]) >= 1000
        assert fx["is_first"].sum() >= 2 and fx["is_last"].sum() >= 2, case


@pytest.mark.parametrize("case", ["dmc_walker_walk_proprio", "dmc_cartpole_swingup_vision"])
def test_dmc_gives_what_the_official_wrapper_gives(case):
    fx, meta = load(case)
    ours = rollout(our_env(case, meta), fx["actions"])
    assert_same_trajectory(ours, fx)
    assert not fx["is_terminal"].any()  # DMC's time limit is a truncation on both sides


def capped_ends(fx, meta):
    """The steps at which an episode reached the frame cap (no-op frames do not count)."""
    s = meta["settings"]
    capped = np.zeros_like(fx["is_last"])
    start = 0
    for t in range(len(capped)):
        if fx["is_first"][t]:
            start = t
        if fx["is_last"][t] and (t - start) * s["repeat"] >= s["frame_cap"]:
            capped[t] = True
    return capped


def test_atari_gives_what_the_official_wrapper_gives_but_the_cap_is_a_truncation():
    fx, meta = load("atari_pong")
    ours = rollout(our_env("atari_pong", meta), fx["actions"])
    capped = capped_ends(fx, meta)
    assert capped.any() and fx["is_terminal"][capped].all()  # official: the cap is a terminal
    assert_same_trajectory(ours, fx, terminal_expected=fx["is_terminal"] & ~capped)


def test_atari_terminal_at_cap_restores_the_official_flags():
    fx, meta = load("atari_pong")
    ours = rollout(our_env("atari_pong", meta, terminal_at_cap=True), fx["actions"])
    assert_same_trajectory(ours, fx)
