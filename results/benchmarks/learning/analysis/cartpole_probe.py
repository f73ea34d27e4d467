"""What does a finished CartPole run's world model believe near the end of its episodes?

Rolls out the run's final policy (20 episodes) and, at every step, reads the posterior's continue
probability, the critic's value and the decoder's reconstruction of the observation. Prints, as
JSON: the continue probability and value at the terminal steps and k steps before them, and the
decoded against the true cart position per band of |x| (CartPole terminates at |x| > 2.4).

Usage: python cartpole_probe.py RUN_DIR [RUN_DIR ...] [--episodes N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dreamer_bench.agent import Agent
from dreamer_bench.agent.config import AgentConfig
from dreamer_bench.agent.functional import symexp
from dreamer_bench.envs import make_env
from dreamer_bench.runner.run import latest_checkpoint


def load_agent(run: Path, env) -> Agent:
    config = json.loads((run / "config.json").read_text())
    fields = {k: v for k, v in config["agent"].items() if k in AgentConfig.__dataclass_fields__}
    agent = Agent(env.obs_space, env.act_space, AgentConfig(**{**fields, "compile": False, "device": "cpu"}))
    agent.restore(torch.load(latest_checkpoint(run) / "agent.pt", map_location="cpu", weights_only=False))
    return agent


def probe(run: Path, episodes: int, seed: int = 777) -> dict:
    env = make_env("gym_CartPole-v1", seed=seed)
    agent = load_agent(run, env)
    terminal, cont, value, true_x, decoded_x = [], [], [], [], []
    tr, state, done = env.step(None), None, 0
    while done < episodes:
        obs = {"vector": tr.obs["vector"][None], "is_first": np.array([tr.obs["is_first"]])}
        state, action = agent.policy(state, obs)
        with torch.no_grad():
            feat = agent.rssm.features(state["deter"], state["stoch"])
            cont.append(agent.cont.prob(agent.cont(feat)).item())
            value.append(agent.critic.pred(agent.critic(feat)).item())
            decoded = agent.decoder(feat)["vector"][0]
            decoded_x.append(float((symexp(decoded) if agent.cfg.on("symlog") else decoded)[0]))
        terminal.append(bool(tr.obs["is_terminal"]))
        true_x.append(float(tr.obs["vector"][0]))
        if tr.obs["is_last"]:
            done += 1
            tr = env.step(None)
        else:
            tr = env.step(action[0])
    terminal, cont, value = np.array(terminal), np.array(cont), np.array(value)
    true_x, decoded_x = np.abs(true_x), np.abs(decoded_x)
    ends = np.where(terminal)[0]
    before = {}
    for k in (0, 1, 5, 10, 20, 50):
        at = ends - k
        at = at[at >= 0]
        before[k] = {"continue": round(float(cont[at].mean()), 4), "value": round(float(value[at].mean()), 1),
                     "|x|": round(float(true_x[at].mean()), 2)}
    bands = {}
    for lo, hi in ((0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2), (2, 2.5)):
        sel = (true_x >= lo) & (true_x < hi)
        if sel.any():
            bands[f"{lo}-{hi}"] = {"steps": int(sel.sum()), "true |x|": round(float(true_x[sel].mean()), 2),
                                   "decoded |x|": round(float(decoded_x[sel].mean()), 2)}
    return {"run": str(run), "steps": int(len(cont)), "terminals": int(terminal.sum()),
            "steps before terminal": before, "cart position by band": bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        print(json.dumps(probe(run, args.episodes)))


if __name__ == "__main__":
    main()
