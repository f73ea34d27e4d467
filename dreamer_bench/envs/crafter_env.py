"""Crafter: 64×64 RGB, 17 discrete actions, its own reward; the achievements unlocked in each
episode are recorded when it ends. Death is a terminal; the 10,000-step length limit is a
truncation.

Crafter (1.8.3) keeps each chunk's creatures in a Python set, which iterates in memory-address
order, and picks the creature to despawn by an index its RNG draws into that order: the same seed
and actions gave episodes of 126, 140 and 154 steps. The adapter makes its world keep them in
insertion order instead (``_InsertionOrdered``), so that an episode repeats for a seed; the
creature despawned is still drawn uniformly, so the environment's distribution is unchanged."""

from __future__ import annotations

import collections
import warnings

import numpy as np

from ..spaces import ActSpace
from .base import Env, EnvError, image_size, whole

ACHIEVEMENTS = (
    "collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
    "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
    "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
    "place_furnace", "place_plant", "place_stone", "place_table", "wake_up",
)


class CrafterEnv(Env):
    def __init__(self, seed: int = 0, action_repeat: int = 1, size=(64, 64), length: int = 10_000):
        super().__init__()
        action_repeat, size, length = whole("action_repeat", action_repeat, 1), image_size(size), whole("length", length, 1)
        try:
            import crafter
        except ImportError:
            raise EnvError("Crafter needs the crafter package; install it with: pip install 'dreamer-bench[crafter]'") from None
        self.env = crafter.Env(size=tuple(size), reward=True, length=length, seed=seed)
        _keep_chunks_in_insertion_order(self.env)
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


class _InsertionOrdered:
    """The part of ``set`` crafter's world uses for a chunk's objects (add, remove, iterate), kept
    in insertion order."""

    __slots__ = ("_items",)

    def __init__(self):
        self._items: dict = {}

    def add(self, obj) -> None:
        self._items[obj] = None

    def remove(self, obj) -> None:
        del self._items[obj]

    def discard(self, obj) -> None:
        self._items.pop(obj, None)

    def __contains__(self, obj) -> bool:
        return obj in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _keep_chunks_in_insertion_order(env) -> None:
    """After each reset of the env's world, its chunks hold their objects in insertion order (the
    module's docstring says why). A crafter whose world is not laid out as 1.8's was is left as it
    is, with a warning that its episodes may not repeat for a seed."""
    world = getattr(env, "_world", None)
    if not isinstance(getattr(world, "_chunks", None), collections.defaultdict) or not callable(
            getattr(world, "reset", None)):
        warnings.warn("this crafter version's world is not laid out as 1.8's: its episodes may not repeat for a "
                      "seed", stacklevel=3)
        return
    reset = world.reset

    def ordered_reset(*args, **kwargs):
        reset(*args, **kwargs)
        world._chunks = collections.defaultdict(_InsertionOrdered)  # before the world's objects are added

    world.reset = ordered_reset
    world._chunks = collections.defaultdict(_InsertionOrdered)  # the world is still empty
