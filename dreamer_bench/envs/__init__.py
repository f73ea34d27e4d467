"""Environment adapters: one observation and action format for every family.

Task names follow the published score files: ``atari_pong``, ``dmc_walker_walk``, ``crafter``,
``gym_CartPole-v1`` (any gymnasium id), or an entry point ``package.module:EnvClass``.
"""

from __future__ import annotations

import inspect

from .base import Env, EnvError, Transition
from .parallel import EnvGroup

FAMILIES = ("atari", "dmc", "crafter", "gym")


def family(task: str) -> str:
    """The family a task name belongs to; entry points (``module:Class``) are gym tasks."""
    if task.startswith("atari_"):
        return "atari"
    if task.startswith("dmc_"):
        return "dmc"
    if task == "crafter" or task.startswith("crafter_"):
        return "crafter"
    if task.startswith(("gym_", "gym:")) or ":" in task:
        return "gym"
    raise EnvError(f"task {task!r} belongs to no family; names start with atari_, dmc_, crafter, gym_ "
                   f"or are an entry point 'package.module:EnvClass'")


def _adapter(task: str):
    fam = family(task)
    if fam == "atari":
        from .atari import AtariEnv
        return AtariEnv, {"game": task[len("atari_"):]}
    if fam == "dmc":
        from .dmc import DMCEnv
        return DMCEnv, {"task": task[len("dmc_"):]}
    if fam == "crafter":
        from .crafter_env import CrafterEnv
        return CrafterEnv, {}
    from .gym_env import GymEnv
    if task.startswith(("gym_", "gym:")):
        return GymEnv, {"env_id": task[4:]}
    return GymEnv, {"entry_point": task}


def make_env(task: str, seed: int = 0, **settings) -> Env:
    """Build one environment of a task; ``settings`` are the suite's environment settings."""
    cls, fixed = _adapter(task)
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "seed", *fixed)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise EnvError(f"unknown environment setting(s) {', '.join(unknown)} for {task}; valid: {', '.join(valid)}")
    return cls(seed=seed, **fixed, **settings)


def check_task(task: str, settings: dict | None = None) -> None:
    """Build one environment of a task with its settings and close it (no reset, no step): an
    unknown game or DMC task, an unknown setting or a bad value raises EnvError with one line
    naming the valid choices. Nothing is written; about 0.1 s for an Atari or DMC task."""
    env = make_env(task, seed=0, **dict(settings or {}))
    env.close()


def probe(task: str, settings: dict | None = None) -> dict[str, tuple]:
    """Build one environment of a task, reset it and take one step, checking that what it returns
    matches the observation space it declares. Returns that space; raises EnvError with one line
    saying what is wrong. Nothing is written."""
    import numpy as np

    env = make_env(task, seed=0, **dict(settings or {}))
    try:
        space = dict(env.obs_space)
        for what, action in (("reset", None), ("first step", np.zeros(env.act_space.size, np.float32)
                                                if not env.act_space.discrete else 0)):
            try:
                tr = env.step(action)
            except EnvError:
                raise
            except Exception as e:  # the user's environment: one line
                raise EnvError(f"{task}: its {what} failed: {type(e).__name__}: {e}") from None
            for key, shape in space.items():
                got = np.asarray(tr.obs[key])
                if tuple(got.shape) != tuple(shape):
                    raise EnvError(f"{task}: its {what} gave a {key!r} observation of shape {tuple(got.shape)}, "
                                   f"but it declares {tuple(shape)}")
        return space
    finally:
        env.close()


def observation_kinds(task: str, settings: dict | None = None) -> set[str]:
    """The kinds of observation a task gives ("vector", "image"), known without building it where
    the family fixes them; gymnasium and entry-point tasks are built (not reset) to read them."""
    settings = dict(settings or {})
    fam = family(task)
    if fam in ("atari", "crafter"):
        return {"image"}
    if fam == "dmc":
        return {settings.get("obs", "vector")}
    settings.pop("action_repeat", None)
    env = make_env(task, seed=0, **settings)
    try:
        return {"image" if len(shape) == 3 else "vector" for shape in env.obs_space.values()}
    finally:
        env.close()


__all__ = ["Env", "EnvError", "EnvGroup", "FAMILIES", "Transition", "family", "make_env", "observation_kinds", "probe"]
