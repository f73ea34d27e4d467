"""Returns of the untrained agent in closed loop, ours or the official one: one walker_walk episode
(action repeat 2) per seed with a freshly initialised size1m agent, no update.

    python evidence/learning/analysis/first_episodes.py ours --seeds 0 20 [--episodes 2]
    $VENV/bin/python evidence/learning/analysis/first_episodes.py official --seeds 0 20   # from its clone

Seed s builds the environment with seed s (our adapter, or tools/official/official_envs.py behind
the official ``wrap_env``) and the agent with seed s, and prints the episode's return; then the
mean and standard deviation over the seeds. With ``--episodes N`` (ours) each seed plays N
consecutive episodes, as a run's first ones, and the share of the variance that lies between
seeds says how far a run's first episodes are one draw rather than N. It asks whether the first episodes of the runs,
acted before any update, differ by more than chance (evidence/learning/README.md).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

TASK = "dmc_walker_walk"


def ours(seed: int, episodes: int = 1) -> list[float]:
    import torch

    from dreamer_bench.agent import Agent, make_config
    from dreamer_bench.envs import make_env

    torch.set_num_threads(1)
    env = make_env(TASK, seed=seed, action_repeat=2)
    agent = Agent(env.obs_space, env.act_space, make_config("size1m", overrides=dict(actor_unimix=0.0, seed=seed)))
    obs, state, totals = env.step(np.zeros(env.act_space.size)).obs, None, [0.0]
    while True:
        batch = {k: np.asarray(obs[k])[None] for k in env.obs_space}
        batch["is_first"] = np.array([bool(obs["is_first"])])
        state, action = agent.policy(state, batch)
        obs = env.step(action[0]).obs
        if obs["is_first"]:  # the environment reset itself after the last step: a new episode
            totals.append(0.0)
        totals[-1] += float(obs["reward"])
        if obs["is_last"] and len(totals) == episodes:
            return totals


def official(seed: int) -> float:
    import elements
    import jax
    import jax.numpy as jnp
    import ninjax as nj

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "official"))
    import export_fixtures as ef
    import official_envs
    from dreamerv3 import agent as official_agent
    from dreamerv3 import main as official_main

    official_envs.quiet_agent_options()
    config, _ = ef.build_config("size1m", ["--task", TASK], (16, 64))
    env = official_main.wrap_env(official_envs.make(TASK, seed=seed, repeat=2), config)
    obs_space = {k: v for k, v in env.obs_space.items() if not k.startswith("log/")}
    act_space = {k: v for k, v in env.act_space.items() if k != "reset"}
    agent_config = dict(**config.agent, logdir="/tmp/dreamer-bench-first-episodes", seed=seed, jax=config.jax,
                        batch_size=16, batch_length=64, replay_context=config.replay_context,
                        report_length=config.report_length, replica=0, replicas=1)
    agent = official_agent.Agent(obs_space, act_space, elements.Config(agent_config))
    jax.config.update("jax_transfer_guard", "allow")
    model = agent.model

    def step(carry, obs):
        carry, act, _ = model.policy(carry, obs, mode="train")
        return carry, act

    pure = jax.jit(nj.pure(step))
    _, carry = nj.pure(model.init_policy)(dict(agent.params), 1, seed=jnp.array([seed, 0], jnp.uint32))
    params = dict(agent.params)
    obs = env.step({"action": np.zeros(act_space["action"].shape, np.float32), "reset": True})
    total, t = 0.0, 0
    while True:
        batch = {k: jnp.asarray(np.asarray(v)[None]) for k, v in obs.items() if k in obs_space}
        params, (carry, act) = pure(params, carry, batch, seed=jnp.array([seed, t + 1], jnp.uint32))
        obs = env.step({"action": np.asarray(act["action"])[0], "reset": False})
        total, t = total + float(obs["reward"]), t + 1
        if obs["is_last"]:
            return total


def between_seed_share(returns: np.ndarray) -> float:
    """The share of the returns' variance that lies between seeds (one-way ANOVA intraclass
    correlation; rows are seeds, columns consecutive episodes of one untrained agent)."""
    k = returns.shape[1]
    between = k * returns.mean(1).var(ddof=1)  # mean square between seeds
    within = returns.var(1, ddof=1).mean()  # mean square within
    return float((between - within) / (between + (k - 1) * within))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("side", choices=["ours", "official"])
    p.add_argument("--seeds", type=int, nargs=2, default=[0, 20], metavar=("FIRST", "END"))
    p.add_argument("--episodes", type=int, default=1,
                   help="ours: consecutive episodes per seed, as a run's first ones (one agent, one environment)")
    args = p.parse_args(argv)
    if args.episodes < 1 or (args.side == "official" and args.episodes != 1):
        p.error("--episodes must be at least 1, and 1 for the official side")
    os.environ.setdefault("MUJOCO_GL", "egl")
    returns = []
    for seed in range(*args.seeds):
        returns.append(ours(seed, args.episodes) if args.side == "ours" else [official(seed)])
        print(f"seed {seed}: " + " ".join(f"{r:.1f}" for r in returns[-1]), flush=True)
    r = np.array(returns)
    print(f"{args.side}, untrained, {r.size} episodes: mean {r.mean():.1f}, sd {r.std(ddof=1) if r.size > 1 else 0:.1f}")
    if args.episodes > 1 and len(r) > 1:
        print(f"share of the variance between seeds (intraclass correlation): {between_seed_share(r):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
