"""Any gymnasium environment as a task: by id (``gym_CartPole-v1``) or entry point
(``my_package.module:MyEnv``).

Observations: a 1-D Box becomes ``vector``; an (H, W, C) uint8 Box (C ≤ 4; grayscale (H, W) too)
becomes ``image``, resized to 64×64 with its channels kept, never flattened into a vector; a
Discrete observation becomes a one-hot ``vector``; a Dict is split into one image and one vector
of its other keys concatenated in sorted key order. Actions: Discrete → index;
Box → [−1, 1] rescaled to the bounds. ``terminated`` is a terminal, ``truncated`` only ends it.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..spaces import ActSpace
from .base import Env, EnvError, rescale_action, resize_image


def _gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise EnvError("gymnasium is not installed; run: pip install gymnasium") from None
    return gymnasium


def load_entry_point(entry: str):
    """Import ``module:attribute`` and return the attribute, or raise a one-line EnvError."""
    module_name, _, attr = entry.partition(":")
    if not module_name or not attr:
        raise EnvError(f"entry point {entry!r} must look like 'package.module:EnvClass'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # any import failure is the user's module, say so in one line
        raise EnvError(f"cannot import {module_name!r} for entry point {entry!r}: {type(e).__name__}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise EnvError(f"module {module_name!r} has no attribute {attr!r} (entry point {entry!r})") from None


class GymEnv(Env):
    def __init__(self, env_id: str | None = None, entry_point: str | None = None, seed: int = 0,
                 action_repeat: int = 1, kwargs: dict | None = None):
        super().__init__()
        gym = _gymnasium()
        kwargs = dict(kwargs or {})
        if entry_point:
            factory = load_entry_point(entry_point)
            try:
                self.env = factory(**kwargs)
            except Exception as e:
                raise EnvError(f"entry point {entry_point!r} failed to build: {type(e).__name__}: {e}") from None
        else:
            try:
                self.env = gym.make(env_id, **kwargs)
            except gym.error.Error as e:
                raise EnvError(f"gymnasium cannot make {env_id!r}: {e}") from None
        self.seed = seed
        self.action_repeat = action_repeat
        self._seeded = False
        self._describe_spaces(gym.spaces)

    def _describe_spaces(self, spaces):
        space = self.env.observation_space
        self._image_key = None
        self._vector_keys: list[str] = []
        self._spaces: dict = {}
        self._onehot: dict[str, tuple[int, int]] = {}  # Discrete observation keys: (n, start)
        if isinstance(space, spaces.Dict):
            items = dict(space.spaces)
        else:
            items = {"obs": space}
        for key in sorted(items):
            s = items[key]
            if isinstance(s, spaces.Box) and s.dtype == np.uint8 and len(s.shape) in (2, 3) and min(s.shape[:2]) >= 8 \
                    and (len(s.shape) == 2 or s.shape[-1] <= 4):  # an image, grayscale or with channels
                if self._image_key is not None:
                    raise EnvError(f"observation has two images ({self._image_key!r}, {key!r}); only one is supported")
                self._image_key = key
            elif isinstance(s, (spaces.Box, spaces.Discrete, spaces.MultiBinary)):
                self._vector_keys.append(key)
                if isinstance(s, spaces.Discrete):
                    self._onehot[key] = (int(s.n), int(s.start))
            else:
                raise EnvError(f"unsupported observation space for key {key!r}: {s}")
            self._spaces[key] = s
        self.obs_space = {}
        if self._image_key is not None:
            shape = self._spaces[self._image_key].shape
            self.obs_space["image"] = (64, 64, shape[2] if len(shape) == 3 else 1)  # channels kept
        if self._vector_keys:
            width = sum(self._onehot[k][0] if k in self._onehot else int(np.prod(self._spaces[k].shape))
                        for k in self._vector_keys)
            self.obs_space["vector"] = (width,)
        act = self.env.action_space
        if isinstance(act, spaces.Discrete):
            self.act_space = ActSpace(True, int(act.n))
            self._act_offset = int(getattr(act, "start", 0))
        elif isinstance(act, spaces.Box):
            self.act_space = ActSpace(False, int(np.prod(act.shape)))
            self._low = act.low.astype(np.float64).reshape(-1)
            self._high = act.high.astype(np.float64).reshape(-1)
            if not (np.all(np.isfinite(self._low)) and np.all(np.isfinite(self._high))):
                raise EnvError("continuous actions need finite bounds to rescale [−1, 1] to")
        else:
            raise EnvError(f"unsupported action space {act}")

    def _arrays(self, raw) -> dict[str, np.ndarray]:
        items = raw if isinstance(raw, dict) else {"obs": raw}
        out = {}
        if self._image_key is not None:
            frame = np.asarray(items[self._image_key])
            out["image"] = resize_image(frame if frame.ndim == 3 else frame[..., None])
        if self._vector_keys:
            parts = []
            for key in self._vector_keys:
                if key in self._onehot:
                    n, start = self._onehot[key]
                    onehot = np.zeros(n, np.float32)
                    onehot[int(items[key]) - start] = 1.0
                    parts.append(onehot)
                else:
                    parts.append(np.asarray(items[key], np.float32).reshape(-1))
            out["vector"] = np.concatenate(parts).astype(np.float32)
        return out

    def _reset(self):
        if not self._seeded:
            raw, _ = self.env.reset(seed=self.seed)
            self.env.action_space.seed(self.seed)
            self._seeded = True
        else:
            raw, _ = self.env.reset()
        return self._arrays(raw)

    def _step(self, action):
        if self.act_space.discrete:
            action = action + self._act_offset
        else:
            action = rescale_action(action, self._low, self._high).astype(self.env.action_space.dtype)
            action = action.reshape(self.env.action_space.shape)
        total, terminated, truncated = 0.0, False, False
        for _ in range(self.action_repeat):
            raw, reward, terminated, truncated, _ = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return self._arrays(raw), total, bool(terminated), bool(truncated), {}

    def close(self):
        self.env.close()
