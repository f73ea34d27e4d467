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
    """Pays NaN at the third step: a broken reward, not a broken agent."""

    def step(self, action):
        obs, reward, done, truncated, info = super().step(action)
        self.steps = getattr(self, "steps", 0) + 1
        return obs, float("nan") if self.steps == 3 else reward, done, truncated, info
