"""Shared helpers: small agents of the debug preset on the observation/action kinds."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports dm_control

import pytest
import torch

from dreamer_bench.agent import ActSpace, Agent, make_config
from dreamer_bench.agent.synthetic import random_batch

torch.set_num_threads(min(2, os.cpu_count() or 1))

VECTOR = {"vector": (5,)}
IMAGE = {"image": (64, 64, 3)}
BOTH = {"image": (64, 64, 3), "vector": (3,)}
DISCRETE = ActSpace(True, 3)
CONTINUOUS = ActSpace(False, 2)


def make_agent(obs=VECTOR, act=DISCRETE, off=(), preset="debug", **overrides) -> Agent:
    return Agent(obs, act, make_config(preset, overrides=overrides, off=off))


def make_batch(agent: Agent, seed: int = 0, **kwargs) -> dict:
    return random_batch(agent.obs_space, agent.act_space, agent.cfg, seed=seed, **kwargs)


@pytest.fixture
def agent_and_batch():
    agent = make_agent()
    return agent, make_batch(agent)
