"""Task adapters that give the official DreamerV3 our tasks with our episode signals.

Runs inside the official environment (tools/official/setup.sh), never inside dreamer_bench.
Each adapter is an ``embodied.Env``: every reset is a step of its own (``is_first``, reward 0,
the action ignored), a time limit ends an episode with ``is_last`` and is *not* a terminal,
and a real termination sets both. Tasks use dreamer-bench's names:

- ``gym_<id>`` (e.g. ``gym_CartPole-v1``): a gymnasium environment (the official ``from_gym``
  adapter expects the old gym API). Vector observations under the key ``vector``; a Discrete
  action space becomes an int32 action with its number of classes; a Box is passed through
  (the official ``NormalizeAction`` wrapper rescales it to [-1, 1]).
- ``dmc_<domain>_<task>``: dm_control proprio, built from the official ``FromDM`` and
  ``ActionRepeat`` pieces without the ``log/image`` frame the official ``DMC`` class renders on
  every step (~30 ms with software GL); the agent's observations are the same.
"""

from __future__ import annotations

import functools

import elements
import embodied
import numpy as np


class Gymnasium(embodied.Env):
    def __init__(self, env_id: str, seed: int = 0, repeat: int = 1):
        import gymnasium

        self._env = gymnasium.make(env_id)
        self._seed = seed
        self._seeded = False
        self._repeat = repeat
        self._done = True

    @functools.cached_property
    def obs_space(self):
        space = self._env.observation_space
        return {
            "vector": elements.Space(np.float32, space.shape),
            "reward": elements.Space(np.float32),
            "is_first": elements.Space(bool),
            "is_last": elements.Space(bool),
            "is_terminal": elements.Space(bool),
        }

    @functools.cached_property
    def act_space(self):
        space = self._env.action_space
        if hasattr(space, "n"):
            action = elements.Space(np.int32, (), 0, int(space.n))
        else:
            action = elements.Space(np.float32, space.shape, space.low, space.high)
        return {"action": action, "reset": elements.Space(bool)}

    def step(self, action):
        if action["reset"] or self._done:
            if self._seeded:
                raw, _ = self._env.reset()
            else:
                raw, _ = self._env.reset(seed=self._seed)
                self._env.action_space.seed(self._seed)
                self._seeded = True
            self._done = False
            return self._obs(raw, 0.0, first=True)
        act = action["action"]
        act = int(act) if hasattr(self._env.action_space, "n") else np.asarray(act, np.float32)
        total, terminated, truncated = 0.0, False, False
        for _ in range(self._repeat):
            raw, reward, terminated, truncated, _ = self._env.step(act)
            total += float(reward)
            if terminated or truncated:
                break
        self._done = terminated or truncated
        return self._obs(raw, total, last=self._done, terminal=terminated)

    def _obs(self, raw, reward, first=False, last=False, terminal=False):
        return {
            "vector": np.asarray(raw, np.float32),
            "reward": np.float32(reward),
            "is_first": first,
            "is_last": bool(last),
            "is_terminal": bool(terminal),
        }

    def close(self):
        self._env.close()


class DMCProprio(embodied.Env):
    """dm_control proprio from the official FromDM and ActionRepeat, without a rendered frame."""

    def __init__(self, task: str, seed: int = 0, repeat: int = 1):
        from dm_control import suite
        from embodied.envs import from_dm

        domain, name = task.split("_", 1)
        if domain == "cup":
            domain = "ball_in_cup"
        if domain == "ball" and name.startswith("in_cup_"):
            domain, name = "ball_in_cup", name[len("in_cup_"):]
        self._dmenv = suite.load(domain, name, task_kwargs={"random": seed})
        self._env = embodied.wrappers.ActionRepeat(from_dm.FromDM(self._dmenv), repeat)

    @property
    def obs_space(self):
        return self._env.obs_space

    @property
    def act_space(self):
        return self._env.act_space

    def step(self, action):
        return self._env.step(action)

    def close(self):
        self._env.close()


def make(task: str, seed: int, repeat: int) -> embodied.Env:
    """The adapter for one of our task names."""
    suite, name = task.split("_", 1)
    if suite == "gym":
        return Gymnasium(name, seed=seed, repeat=repeat)
    if suite == "dmc":
        return DMCProprio(name, seed=seed, repeat=repeat)
    raise SystemExit(f"error: unsupported task {task!r}; valid: gym_<gymnasium id>, dmc_<domain>_<task>")


def quiet_agent_options() -> None:
    """Switch off the official agent's profiler trace (around update 100) and its start-up
    compilation of the report function: neither is part of training."""
    import embodied.jax.agent as jax_agent

    names = list(jax_agent.Options.__dataclass_fields__)
    defaults = list(jax_agent.Options.__init__.__defaults__)
    defaults[names.index("profiler")] = False
    defaults[names.index("precompile")] = False
    jax_agent.Options.__init__.__defaults__ = tuple(defaults)


# what the exporters of the official agent's computations set unless the caller has: one host device
AGENT_ENVIRON = {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def export_main(doc: str, cases, export, argv=None, environ=None) -> None:
    """The command line of the export scripts: ``[CASE ...] --out DIR`` (default: every case).
    ``environ``: variables set unless already set (before the cases import JAX)."""
    import argparse
    import os
    import pathlib

    for key, value in (environ or {}).items():
        os.environ.setdefault(key, value)

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("cases", nargs="*", help=f"cases to export (default all): {', '.join(cases)}")
    p.add_argument("--out", type=pathlib.Path, required=True)
    args = p.parse_args(argv)
    unknown = [c for c in args.cases if c not in cases]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(cases)}")
    for name in args.cases or list(cases):
        export(name, args.out)
