"""``dreamer-bench predict RUN_DIR``: what a run's world model imagines, open loop.

From the run's latest checkpoint, the agent plays a few fresh episodes on the run's own task
(environment seeds apart from those it trained and evaluated on; the replay may be gone). For each
episode, a window of ``window`` steps from its start: the first ``context`` steps go through the
posterior (the model sees them), then
the model imagines the rest with its prior under the actions that were really taken, and decodes
observations, reward and continue from what it imagines. Written into ``RUN_DIR/predictions/``:

- image observations: ``episode_<i>_<key>.png``, rows true / imagined / |difference| at a dozen
  steps of the window, and ``episode_<i>_<key>.gif``, the three side by side at every step;
- vector observations: ``episode_<i>.png``, each observation dimension true against imagined
  (in observation space), then reward and continue (the continue head's target is γ·(1 − terminal));
- ``predictions.json``: the settings, the checkpoint's update count, per episode the window,
  and per step the mean squared error of each observation key and the reward's absolute error.

The report embeds the PNG files of runs that have them (it reads the files, never a model).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..results import atomic_write_json, read_config


class PredictError(ValueError):
    """A run folder that cannot be predicted from (one line)."""


def load_agent(run: Path, device: str = "cpu"):
    """The run's agent from its latest checkpoint, and its task settings."""
    import torch

    from ..agent import Agent, AgentConfig
    from ..agent.config import FIELDS, canonical
    from ..envs import make_env
    from .run import latest_checkpoint

    config = read_config(run)
    if config is None:
        raise PredictError(f"{run} is not a run folder (no valid config.json)")
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise PredictError(f"{run} has no checkpoint yet (a run checkpoints every --checkpoint-minutes and at its end)")
    if config.get("plugins"):  # the users' techniques it was trained with, from where they were
        from ..agent.plugins import PluginError, load

        try:
            for ref in config["plugins"].values():
                load(ref)
        except PluginError as e:
            raise PredictError(f"{run} was trained with a plug-in that cannot be loaded here: {e}") from None
    fields = {k: v for k, v in canonical(config["agent"]).items() if k in FIELDS}
    fields.update(off=tuple(fields.get("off", ())), device=device, compile=False)
    cfg = AgentConfig(**fields)
    task = config["run"]["task"]
    settings = config["task"]
    env_settings = {"action_repeat": settings.get("action_repeat", 1), **settings.get("env", {})}
    probe = make_env(task, seed=0, **env_settings)
    try:
        agent = Agent(probe.obs_space, probe.act_space, cfg)
    finally:
        probe.close()
    agent.restore(torch.load(ckpt / "agent.pt", map_location=agent.device, weights_only=False))
    return agent, task, env_settings, config


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of ``predict``'s episode: from a stream apart from training's
    (``run.env_seed``) and evaluation's (``evaluate.round_seed``), so that its episodes are not
    ones the run trained on (tests/test_predict.py checks the three apart)."""
    return (seed * 1_000_003 + 3_333_331 + 104_723 * episode) % (2**31)


def collect(agent, task: str, env_settings: dict, episodes: int, max_steps: int, seed: int) -> list[dict]:
    """Episodes of the agent's policy (sampled actions, a generator of their own): per step the
    observation, the world-model action taken after it, reward, is_first and is_terminal."""
    import torch

    from ..envs import make_env
    from .evaluate import play

    out = []
    generator = torch.Generator(agent.device).manual_seed(seed)
    for e in range(episodes):
        env = make_env(task, seed=episode_seed(seed, e), **env_settings)
        keys = list(env.obs_space)
        steps = {k: [] for k in (*keys, "action", "reward", "is_first", "is_terminal")}
        try:
            for tr, state, action in play(agent, env, generator):
                for k in keys:
                    steps[k].append(np.asarray(tr.obs[k]))
                # the world-model action taken after this step (none after the last one)
                steps["action"].append(np.zeros(agent.act_space.size, np.float32) if action is None
                                       else state["action"][0].cpu().numpy())
                steps["reward"].append(float(tr.obs["reward"]))
                steps["is_first"].append(bool(tr.obs["is_first"]))
                steps["is_terminal"].append(bool(tr.obs["is_terminal"]))
                if len(steps["reward"]) >= max_steps:
                    break
        finally:
            env.close()
        out.append({k: np.stack(v) for k, v in steps.items()})
    return out


def open_loop(agent, episode: dict, context: int, window: int, seed: int) -> dict:
    """The model's open-loop predictions over the first ``window`` steps of an episode: the
    posterior for ``context`` steps, then the prior under the recorded actions. Returns the true
    and predicted observations (observation space), reward and continue, (T, ...) each."""
    import torch

    from ..agent.functional import symexp
    from ..agent.nets import split_keys

    cfg = agent.cfg
    steps = min(window, len(episode["reward"]))
    context = min(context, steps)
    generator = torch.Generator(agent.device).manual_seed(seed)
    keys = [k for k in agent.obs_space]
    image_keys, vector_keys = split_keys(agent.obs_space)
    feats = []
    with torch.no_grad(), agent.autocast():
        deter, stoch = agent.rssm.initial(1, agent.device)
        action = torch.zeros(1, agent.act_space.size, device=agent.device)
        for t in range(steps):
            uniform = torch.rand(agent.rssm.latent_noise_shape(1), device=agent.device, generator=generator)
            if t < context:
                obs = {k: torch.as_tensor(np.stack([episode[k][t]]), device=agent.device) for k in keys}
                embed = agent.encoder(obs)
                first = torch.tensor([bool(episode["is_first"][t])], device=agent.device)
                deter, stoch, _ = agent.rssm.obs_step(deter, stoch, action, embed, first, uniform)
            else:
                deter, stoch = agent.rssm.img_step(deter, stoch, action, uniform)
            feats.append(agent.rssm.features(deter, stoch))
            action = torch.as_tensor(episode["action"][t][None], device=agent.device).float()
        feat = torch.cat(feats).float()
        decoded = agent.decoder(feat)
        reward = agent.reward(feat).pred().float().cpu().numpy()
        cont = agent.cont(feat).pred().float().cpu().numpy()
    pred = {}
    for k in image_keys:
        pred[k] = (decoded[k].float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    for k in vector_keys:
        v = decoded[k].float()
        pred[k] = (symexp(v) if cfg.on("symlog") else v).cpu().numpy()
    return {"steps": steps, "context": context, "true": {k: episode[k][:steps] for k in keys}, "pred": pred,
            "reward": (episode["reward"][:steps], reward),
            "cont": (cfg.discount * (1.0 - episode["is_terminal"][:steps].astype(float)), cont)}


def image_strip(true: np.ndarray, pred: np.ndarray, context: int, path: Path, columns: int = 12) -> None:
    """Rows true / imagined / |difference| at ``columns`` steps spread over the window."""
    from PIL import Image, ImageDraw

    steps = len(true)
    picks = sorted(set(np.linspace(0, steps - 1, min(columns, steps)).round().astype(int).tolist()))
    diff = np.abs(true.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
    h, w = true.shape[1:3]
    label = 14
    canvas = Image.new("RGB", (len(picks) * (w + 2), 3 * (h + 2) + label), "white")
    draw = ImageDraw.Draw(canvas)
    for col, t in enumerate(picks):
        x = col * (w + 2)
        draw.text((x + 2, 1), f"{t}{'*' if t < context else ''}", fill="black")
        for row, frames in enumerate((true, pred, diff)):
            canvas.paste(Image.fromarray(_rgb(frames[t])), (x, label + row * (h + 2)))
    canvas.save(path)


def image_gif(true: np.ndarray, pred: np.ndarray, path: Path, ms: int = 120) -> None:
    from PIL import Image

    diff = np.abs(true.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
    frames = [Image.fromarray(np.concatenate([_rgb(true[t]), _rgb(pred[t]), _rgb(diff[t])], 1))
              for t in range(len(true))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0)


def _rgb(frame: np.ndarray) -> np.ndarray:
    return np.repeat(frame, 3, -1) if frame.shape[-1] == 1 else frame[..., :3]


def vector_figure(result: dict, keys: list[str], path: Path, title: str) -> None:
    """True (solid) against imagined (dashed) over the window for every observation dimension,
    then reward and continue; the shaded span is the context the model saw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"{k}[{d}]", result["true"][k][:, d], result["pred"][k][:, d]) for k in keys
              for d in range(result["true"][k].shape[1])]
    panels += [("reward", *result["reward"]), ("continue", *result["cont"])]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.1 * rows), squeeze=False)
    t = np.arange(result["steps"])
    for ax, (name, true, pred) in zip(axes.flat, panels):
        ax.axvspan(-0.5, result["context"] - 0.5, color="0.9")
        ax.plot(t, true, color="black", linewidth=1.2, label="true")
        ax.plot(t, pred, color="tab:red", linestyle="--", linewidth=1.2, label="imagined")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predict(run: Path, episodes: int = 3, context: int = 5, window: int = 50, seed: int = 0,
            device: str = "cpu") -> dict:
    """Write the run's open-loop predictions into ``run/predictions/``; returns predictions.json."""
    from ..agent.nets import split_keys

    started = time.time()
    run = Path(run)
    agent, task, env_settings, config = load_agent(run, device)
    loaded = time.time()
    played = collect(agent, task, env_settings, episodes, max_steps=max(window, 1), seed=seed)
    collected = time.time()
    out = run / "predictions"
    out.mkdir(exist_ok=True)
    image_keys, vector_keys = split_keys(agent.obs_space)
    summary = []
    for i, episode in enumerate(played):
        result = open_loop(agent, episode, context, window, seed + i)
        files = []
        for k in image_keys:
            image_strip(result["true"][k], result["pred"][k], result["context"], out / f"episode_{i}_{k}.png")
            image_gif(result["true"][k], result["pred"][k], out / f"episode_{i}_{k}.gif")
            files += [f"episode_{i}_{k}.png", f"episode_{i}_{k}.gif"]
        if vector_keys:
            vector_figure(result, vector_keys, out / f"episode_{i}.png",
                          f"{task}, episode {i}: {result['context']} context steps, then imagined")
            files.append(f"episode_{i}.png")
        errors = {k: np.mean((result["true"][k].astype(float) - result["pred"][k].astype(float)) ** 2,
                             axis=tuple(range(1, result["true"][k].ndim))).round(6).tolist() for k in result["true"]}
        errors["reward"] = ((result["reward"][0] - result["reward"][1]) ** 2).round(6).tolist()
        summary.append({"episode": i, "steps": result["steps"], "context": result["context"], "files": files,
                        "squared_error_per_step": errors})
    record = {"task": task, "run": config.get("run"), "updates": agent.updates, "context": context, "window": window,
              "seed": seed, "episodes": summary,
              "seconds": {"load": round(loaded - started, 2), "collect": round(collected - loaded, 2),
                          "predict_and_draw": round(time.time() - collected, 2)}}
    atomic_write_json(out / "predictions.json", record)
    return record
