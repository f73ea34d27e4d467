"""Crafter: 64×64 RGB, 17 discrete actions, its own reward; the achievements unlocked in each
episode are recorded when it ends. Death is a terminal; the 10,000-step length limit is a
truncation."""

from __future__ import annotations

import numpy as np

from ..spaces import ActSpace
from .base import Env, EnvError

ACHIEVEMENTS = (
    "collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
    "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
    "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
    "place_furnace", "place_plant", "place_stone", "place_table", "wake_up",
)


class CrafterEnv(Env):
    def __init__(self, seed: int = 0, action_repeat: int = 1, size=(64, 64), length: int = 10_000):
        super().__init__()
        try:
            import crafter
        except ImportError:
            raise EnvError("Crafter needs the crafter package; install it with: pip install 'dreamer-bench[crafter]'") from None
        self.env = crafter.Env(size=tuple(size), reward=True, length=length, seed=seed)
        self.action_repeat = action_repeat
        self.obs_space = {"image": (*tuple(size), 3)}
        self.act_space = ActSpace(True, int(self.env.action_space.n))

    def _reset(self):
        return {"image": np.asarray(self.env.reset(), np.uint8)}

    def _step(self, action):
        total, done, info = 0.0, False, {}
        for _ in range(self.action_repeat):
            image, reward, done, info = self.env.step(action)
            total += float(reward)
            if done:
                break
        terminated = bool(done and info.get("discount", 1.0) == 0)
        truncated = bool(done and not terminated)
        extras = {}
        if done:
            unlocked = info.get("achievements", {})
            extras["achievements"] = {k: int(unlocked.get(k, 0)) for k in ACHIEVEMENTS}
        return {"image": np.asarray(image, np.uint8)}, total, terminated, truncated, extras
