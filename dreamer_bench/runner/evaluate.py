"""Evaluation episodes, apart from training (``--eval-every N --eval-episodes K [--eval-mode]``).

Every N env steps of training, and once more at the end of the run, the current policy plays K
episodes on an environment instance of its own, with its own random generator:

- round r (the r-th evaluation of the run, from 0) builds a fresh environment seeded from the
  run's seed and r, and a torch generator seeded likewise, so that a round's episodes depend only
  on the agent's parameters and r: a resumed run evaluates as an uninterrupted one would;
- evaluation steps never count towards the budget, the episodes' ``xs`` or the replay, and they
  draw nothing from training's generators;
- ``mode: sample`` (default) samples actions as the official agent's policy does in evaluation;
  ``mode: mode`` takes the actor's most likely action (its mean for continuous actions).

``eval.jsonl`` has one line per evaluation episode: ``env_steps`` (training's env steps when the
round ran: the x), ``round``, ``episode``, ``return``, ``length``, ``mode``, ``time``;
``eval_scores.json`` holds the episodes in the official ``{task, method, seed, xs, ys}`` format,
which ``report --episodes eval`` reads. Evaluation settings are not part of a run's identity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

MODES = ("sample", "mode")


@dataclass(frozen=True)
class EvalSettings:
    every: int = 0  # env steps between evaluations (0: none)
    episodes: int = 10  # episodes per evaluation
    mode: str = "sample"  # sample | mode

    def check(self) -> None:
        if self.every < 0:
            raise ValueError(f"--eval-every must be ≥ 0 env steps (0: no evaluation), got {self.every}")
        if self.episodes < 1:
            raise ValueError(f"--eval-episodes must be ≥ 1, got {self.episodes}")
        if self.mode not in MODES:
            raise ValueError(f"unknown --eval-mode {self.mode!r}; valid: {', '.join(MODES)}")

    def due(self, env_steps: int, done_rounds: int) -> bool:
        """Whether training at ``env_steps`` has passed the next evaluation point."""
        return self.every > 0 and env_steps >= (done_rounds + 1) * self.every


def round_seed(run_seed: int, round_: int) -> int:
    return (run_seed * 1_000_003 + 7_777_777 + 104_729 * round_) % (2**31)


def play(agent, env, generator, mode: bool = False):
    """One episode of the agent's policy on ``env`` with draws from ``generator``: yields
    (transition, policy state, env action) for every step from the reset step on; the episode's
    last transition comes with the state before it and action None (nothing acts on it)."""
    import torch

    keys = list(env.obs_space)
    transition, state = env.step(None), None
    while not transition.obs["is_last"]:
        obs = {k: np.stack([transition.obs[k]]) for k in keys}  # a copy: env arrays may be read-only
        obs["is_first"] = np.array([transition.obs["is_first"]])
        with torch.no_grad():
            state, action = agent.policy(state, obs, generator=generator, mode=mode)
        yield transition, state, action
        transition = env.step(action[0])
    yield transition, state, None


def evaluate(agent, task: str, env_settings: dict, settings: EvalSettings, run_seed: int, round_: int,
             train_env_steps: int) -> list[dict]:
    """Play ``settings.episodes`` episodes with the agent's current policy; the rows of eval.jsonl."""
    import torch

    from ..envs import make_env

    env = make_env(task, seed=round_seed(run_seed, round_), **env_settings)
    generator = torch.Generator(agent.device).manual_seed(round_seed(run_seed, round_))
    rows = []
    try:
        for episode in range(settings.episodes):
            ret, length = 0.0, 0
            for transition, _, _ in play(agent, env, generator, mode=settings.mode == "mode"):
                ret += float(transition.obs["reward"])  # the reset step's reward is 0
                length += 0 if transition.obs["is_first"] else 1
            rows.append({"env_steps": train_env_steps, "round": round_, "episode": episode, "return": ret,
                         "length": length, "mode": settings.mode, "time": time.time()})
    finally:
        env.close()
    return rows
