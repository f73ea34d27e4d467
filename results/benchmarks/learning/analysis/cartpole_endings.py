"""Why do CartPole episodes end? Roll out the final policy of finished runs and record the cause.

CartPole-v1 terminates when |x| > 2.4 (the cart leaves the track) or |θ| > 12° (the pole falls),
and truncates at 500 steps. A critic that has not learned values far beyond the 15-step
imagination horizon cannot see a slow drift of the cart coming, only a falling pole; so if the
agent is limited by its critic, its failures should be the cart leaving the track.

Usage: python cartpole_endings.py RUN_DIR [RUN_DIR ...] [--episodes N]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from dreamer_bench.agent import Agent
from dreamer_bench.agent.config import AgentConfig
from dreamer_bench.envs import make_env
from dreamer_bench.runner.run import latest_checkpoint


def endings(run: Path, episodes: int, seed: int = 12345) -> dict:
    config = json.loads((run / "config.json").read_text())
    fields = {k: v for k, v in config["agent"].items() if k in AgentConfig.__dataclass_fields__}
    cfg = AgentConfig(**{**fields, "compile": False, "device": "cpu"})
    env = make_env(config["run"]["task"], seed=seed)
    agent = Agent(env.obs_space, env.act_space, cfg)
    state = torch.load(latest_checkpoint(run) / "agent.pt", map_location="cpu", weights_only=False)
    agent.restore(state)
    causes = {"cart": 0, "pole": 0, "both": 0, "time limit": 0}
    lengths = []
    tr = env.step(None)
    policy_state = None
    length = 0
    while len(lengths) < episodes:
        obs = {k: tr.obs[k][None] for k in env.obs_space}
        obs["is_first"] = np.array([tr.obs["is_first"]])
        policy_state, action = agent.policy(policy_state, obs)
        tr = env.step(action[0])
        length += 1
        if tr.obs["is_last"]:
            x, _, theta, _ = tr.obs["vector"]
            cart, pole = abs(x) > 2.4, abs(theta) > 12 * 2 * math.pi / 360
            if not tr.obs["is_terminal"]:
                causes["time limit"] += 1
            else:
                causes["both" if cart and pole else "cart" if cart else "pole"] += 1
            lengths.append(length)
            length = 0
            tr = env.step(None)
    return {"run": str(run), "episodes": episodes, "mean length": float(np.mean(lengths)), "endings": causes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        print(json.dumps(endings(run, args.episodes)))


if __name__ == "__main__":
    main()
