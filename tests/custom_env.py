"""A custom gymnasium environment for the entry-point test: count to 5 by pressing 1."""

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, target: int = 5):
        self.target = target
        self.count = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.count = 0
        return np.array([0.0, self.target], np.float32), {}

    def step(self, action):
        self.count += int(action)
        done = self.count >= self.target
        return np.array([self.count, self.target], np.float32), float(action), done, False, {}


class Broken(gym.Env):
    def __init__(self):
        raise RuntimeError("this environment always fails")


class NanReward(CountingEnv):
    """Pays NaN at step ``nan_at`` (0: never): a broken reward, not a broken agent."""

    def __init__(self, target: int = 5, nan_at: int = 3):
        super().__init__(target)
        self.nan_at = nan_at

    def step(self, action):
        obs, reward, done, truncated, info = super().step(action)
        self.steps = getattr(self, "steps", 0) + 1
        return obs, float("nan") if self.steps == self.nan_at else reward, done, truncated, info


class WrongShape(CountingEnv):
    """Declares 2 numbers, returns 3."""

    def reset(self, seed=None, options=None):
        obs, info = super().reset(seed=seed)
        return np.append(obs, 0.0).astype(np.float32), info


class FailingStep(CountingEnv):
    def step(self, action):
        raise ValueError("no step today")


class Grayscale(gym.Env):
    """84×84×1 uint8 frames, as many Atari-style wrappers give."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 1), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def _frame(self):
        frame = np.zeros((84, 84, 1), np.uint8)
        frame[:, : 42 + self.t] = 200
        return frame

    def step(self, action):
        self.t += 1
        return self._frame(), 1.0, self.t >= 10, False, {}



class KillsItsProcess(CountingEnv):
    """SIGKILLs the process that steps it at its ``at``-th step (after the probe's one step): a
    worker that dies whenever it trains this task, for the Dask fault tests."""

    def __init__(self, target: int = 5, at: int = 50):
        super().__init__(target)
        self.at = at
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.at:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().step(action)
