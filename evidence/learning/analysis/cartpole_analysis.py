"""How do a finished CartPole run's episodes end, and what does its world model believe there?

Rolls out the run's final policy and records how each episode ends: CartPole-v1 terminates when
|x| > 2.4 (the cart leaves the track) or |θ| > 12° (the pole falls), and truncates at 500 steps.
At every step it reads the posterior's continue probability, the critic's value and the decoder's
reconstruction of the cart position. Prints one JSON line per run: the endings, the continue
probability and value at the terminal steps and k steps before them, and the decoded against the
true |x| per band of |x|.

Usage: python cartpole_analysis.py RUN_DIR [RUN_DIR ...] [--episodes N]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from dreamer_bench.agent import Agent
from dreamer_bench.agent.config import AgentConfig, canonical
from dreamer_bench.agent.functional import symexp
from dreamer_bench.envs import make_env
from dreamer_bench.runner.run import latest_checkpoint


def load_agent(run: Path, env) -> Agent:
    config = json.loads((run / "config.json").read_text())
    fields = {k: v for k, v in config["agent"].items() if k in AgentConfig.__dataclass_fields__}
    agent = Agent(env.obs_space, env.act_space, AgentConfig(**{**canonical(fields), "compile": False, "device": "cpu"}))
    agent.restore(torch.load(latest_checkpoint(run) / "agent.pt", map_location="cpu", weights_only=False))
    return agent


def probe(run: Path, episodes: int, seed: int = 777) -> dict:
    env = make_env("gym_CartPole-v1", seed=seed)
    agent = load_agent(run, env)
    terminal, cont, value, true_x, decoded_x = [], [], [], [], []
    endings = {"cart": 0, "pole": 0, "both": 0, "time limit": 0}
    lengths, length = [], 0
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
            x, _, theta, _ = tr.obs["vector"]
            cart, pole = abs(x) > 2.4, abs(theta) > 12 * 2 * math.pi / 360
            cause = "time limit" if not tr.obs["is_terminal"] else "both" if cart and pole else "cart" if cart else "pole"
            endings[cause] += 1
            lengths.append(length)
            done, length = done + 1, 0
            tr = env.step(None)
        else:
            tr = env.step(action[0])
            length += 1
    terminal, cont, value = np.array(terminal), np.array(cont), np.array(value)
    true_x, decoded_x = np.abs(true_x), np.abs(decoded_x)
    ends = np.where(terminal)[0]
    before = {}
    for k in (0, 1, 5, 10, 20, 50):
        at = ends - k
        at = at[at >= 0]
        if not len(at):  # no episode ended in a failure
            continue
        before[k] = {"continue": round(float(cont[at].mean()), 4), "value": round(float(value[at].mean()), 1),
                     "|x|": round(float(true_x[at].mean()), 2)}
    bands = {}
    for lo, hi in ((0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2), (2, 2.5)):
        sel = (true_x >= lo) & (true_x < hi)
        if sel.any():
            bands[f"{lo}-{hi}"] = {"steps": int(sel.sum()), "true |x|": round(float(true_x[sel].mean()), 2),
                                   "decoded |x|": round(float(decoded_x[sel].mean()), 2)}
    return {"run": str(run), "episodes": episodes, "mean length": float(np.mean(lengths)), "endings": endings,
            "steps": int(len(cont)), "terminals": int(terminal.sum()),
            "steps before terminal": before, "cart position by band": bands}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        print(json.dumps(probe(run, args.episodes)))


if __name__ == "__main__":
    main()
