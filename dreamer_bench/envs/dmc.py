"""DeepMind Control Suite: proprioceptive vectors or 64×64 renders.

Vector observations: one observation key per dm_control key, each flattened to a float32 vector
(a scalar such as walker's ``height`` becomes shape (1,)), as the official agent sees them: the
encoder concatenates them in sorted key order and the decoder predicts each through its own
output layer (so adaptive gradient clipping sees one tensor per key).
Images: rendered offscreen from camera 0 (quadruped: camera 2). Rendering uses ``MUJOCO_GL``:
if unset it defaults to ``egl`` (headless, works with Mesa's software EGL on CPU and with the
NVIDIA driver on a GPU); ``MUJOCO_GL=osmesa`` selects OSMesa (Debian's ``libosmesa6``). A time
limit (dm_env's last step with discount 1) is a truncation; discount 0 is a terminal.
"""

from __future__ import annotations

import os

import numpy as np

from ..spaces import ActSpace
from .base import Env, EnvError, image_size, rescale_action, whole

ALIASES = {"cup_catch": ("ball_in_cup", "catch")}  # the 2023 files' name


def _suite():
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from dm_control import suite
    except ImportError:
        raise EnvError("DMC needs dm_control and mujoco<4; install them with: pip install 'dreamer-bench[dmc]'") from None
    return suite


def split_task(name: str, suite) -> tuple[str, str]:
    """``ball_in_cup_catch`` → (``ball_in_cup``, ``catch``) using dm_control's own task list."""
    if name in ALIASES:
        return ALIASES[name]
    for domain, task in suite.ALL_TASKS:
        if f"{domain}_{task}" == name:
            return domain, task
    valid = ", ".join(sorted(f"{d}_{t}" for d, t in suite.ALL_TASKS))
    raise EnvError(f"unknown DMC task {name!r}; valid: {valid}")


class DMCEnv(Env):
    def __init__(self, task: str, seed: int = 0, action_repeat: int = 1, obs: str = "vector",
                 size=(64, 64), camera: int | None = None):
        super().__init__()
        action_repeat, size = whole("action_repeat", action_repeat, 1), image_size(size)
        suite = _suite()
        domain, task_name = split_task(task, suite)
        self.env = suite.load(domain, task_name, task_kwargs={"random": seed})
        self.action_repeat = action_repeat
        if obs not in ("vector", "image"):
            raise EnvError(f"DMC observation must be 'vector' or 'image', got {obs!r}")
        self.kind = obs
        self.size = tuple(size)
        self.camera = camera if camera is not None else (2 if domain == "quadruped" else 0)
        spec = self.env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.act_space = ActSpace(False, int(np.prod(spec.shape)))
        if obs == "vector":
            spec = self.env.observation_spec()
            self.obs_space = {k: (max(1, int(np.prod(spec[k].shape))),) for k in sorted(spec)}
        else:
            self.obs_space = {"image": (*self.size, 3)}

    def _arrays(self, timestep):
        if self.kind == "vector":
            obs = timestep.observation
            return {k: np.asarray(obs[k], np.float32).reshape(-1) for k in self.obs_space}
        image = self.env.physics.render(*self.size, camera_id=self.camera)
        return {"image": np.ascontiguousarray(image, dtype=np.uint8)}

    def _reset(self):
        return self._arrays(self.env.reset())

    def _step(self, action):
        action = rescale_action(action, self._low, self._high)
        total = 0.0
        for _ in range(self.action_repeat):
            timestep = self.env.step(action)
            total += float(np.float32(timestep.reward or 0.0))  # as the official: each step's reward in float32
            if timestep.last():
                break
        terminated = timestep.last() and timestep.discount == 0
        truncated = timestep.last() and not terminated
        return self._arrays(timestep), total, bool(terminated), bool(truncated), {}

    def close(self):
        self.env.close()
