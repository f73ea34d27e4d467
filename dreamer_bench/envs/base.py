"""The one environment interface the runner and agent see.

Every environment gives observations as a dict: ``image`` (64, 64, 3) uint8 and/or ``vector``
(D,) float32, plus ``reward``, ``is_first``, ``is_last`` and ``is_terminal``. Actions are an
index (discrete) or a float vector in [−1, 1] (continuous), rescaled by the adapter.

``step`` is one policy step (``action_repeat`` env steps). The first call, and the call after a
step with ``is_last``, resets the environment instead: it ignores the action and returns the
first observation with ``is_first`` and reward 0 — a reset is a step of its own, as in the
official protocol. A time limit ends an episode with ``is_last`` but never ``is_terminal``.
"""

from __future__ import annotations

import math

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spaces import ActSpace

IMAGE_SIZE = (64, 64)


class EnvError(RuntimeError):
    """An environment that cannot be built (unknown task, missing package, bad entry point)."""


def whole(name: str, value, low: int) -> int:
    """An integer setting of at least ``low``; EnvError naming the valid range otherwise (checked
    when the environment is built, so a suite's bad value is refused before a run is written)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < low):
        raise EnvError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    return int(value)


def image_size(size) -> tuple[int, int]:
    """An image size (height, width) of whole numbers ≥ 1; EnvError otherwise."""
    try:
        height, width = size
        return whole("size", height, 1), whole("size", width, 1)
    except (TypeError, ValueError, EnvError):
        raise EnvError(f"size must be two whole numbers ≥ 1 (height, width), got {size!r}") from None


@dataclass
class Transition:
    """What one ``step`` returns: the observation dict and bookkeeping for the runner."""

    obs: dict[str, Any]
    frames: int  # underlying env steps (Atari frames) this policy step counts for
    episode: dict[str, Any] = field(default_factory=dict)  # extras at an episode's end


class Env(ABC):
    obs_space: dict[str, tuple]
    act_space: ActSpace
    action_repeat: int = 1

    def __init__(self):
        self._needs_reset = True

    # -- adapter hooks ----------------------------------------------------------------------

    @abstractmethod
    def _reset(self) -> dict[str, np.ndarray]:
        """Start an episode; return its first observation arrays (image/vector)."""

    @abstractmethod
    def _step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """One policy step with action repeat: observation arrays, summed reward, terminated,
        truncated, extras to record when the episode ends."""

    def close(self) -> None:
        pass

    # -- the interface ----------------------------------------------------------------------

    def step(self, action) -> Transition:
        if self._needs_reset:
            self._needs_reset = False
            arrays = self._reset()
            return Transition(self._pack(arrays, 0.0, first=True, last=False, terminal=False), self.action_repeat)
        arrays, reward, terminated, truncated, extras = self._step(self._convert(action))
        last = bool(terminated or truncated)
        self._needs_reset = last
        obs = self._pack(arrays, reward, first=False, last=last, terminal=bool(terminated))
        return Transition(obs, self.action_repeat, extras if last else {})

    def _convert(self, action):
        if self.act_space.discrete:
            index = int(np.asarray(action).reshape(-1)[0]) if np.ndim(action) else int(action)
            if not 0 <= index < self.act_space.size:
                raise ValueError(f"action {index} out of range [0, {self.act_space.size})")
            return index
        action = np.asarray(action, dtype=np.float64).reshape(self.act_space.size)
        return np.clip(action, -1.0, 1.0)

    def _pack(self, arrays, reward, first, last, terminal) -> dict[str, Any]:
        obs = {k: arrays[k] for k in self.obs_space}
        obs.update(reward=np.float32(reward), is_first=first, is_last=last, is_terminal=terminal)
        return obs


def resize_image(frame: np.ndarray, size=IMAGE_SIZE) -> np.ndarray:
    """Bilinear resize of an (H, W, C) uint8 frame with Pillow, as the official adapters do
    (channel by channel where Pillow has no mode for C channels, e.g. grayscale (H, W, 1))."""
    from PIL import Image

    if frame.shape[:2] == tuple(size):
        return np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim == 3 and frame.shape[-1] == 3:
        image = Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)
    planes = frame.reshape(*frame.shape[:2], -1)
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).resize(
        (size[1], size[0]), Image.BILINEAR), dtype=np.uint8) for c in range(planes.shape[-1])], -1)


def rescale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map an action in [−1, 1] to [low, high] per dimension, in the official wrapper's arithmetic:
    (a + 1) / 2 in float32 (the agent's action dtype), then scaled and shifted in the bounds' dtype.
    (The float32 step rounds a to ~1e-7; doing the same keeps trajectories identical to the
    official ones, tests/test_official_envs.py.)"""
    half = (np.asarray(action, np.float32) + np.float32(1)) / np.float32(2)
    return half * (high - low) + low
