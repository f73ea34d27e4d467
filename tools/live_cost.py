"""What --log tensorboard / --log wandb cost a run: the time to open and close each logger, the
time per metrics row and per episode sent, and the disk per 1,000 of each, measured with the real
libraries on synthetic rows shaped like a debug-preset CartPole run's.

    python tools/live_cost.py [--rows 200] [--episodes 2000] [--repeats 3]

Prints one line per logger (best of the repeats). The loop sends rows every 5 s, so the per-row
cost is paid a few times a minute, not per update.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from dreamer_bench.runner.live import LiveLog

METRIC_KEYS = ["loss/con", "loss/dyn", "loss/policy", "loss/rec_vector", "loss/rep", "loss/repval", "loss/rew",
               "loss/total", "loss/value", "imag/entropy", "imag/return", "imag/return_scale", "imag/value",
               "imag/weight", "grad_norm", "lr", "wm/post_entropy", "wm/prior_entropy", "updates_per_s",
               "env_steps_per_s", "updates", "policy_steps"]


def rows(n_metrics: int, n_episodes: int):
    metrics = [{"env_steps": 100 * (i + 1), "time": time.time(), **{k: 0.1 * i for k in METRIC_KEYS}}
               for i in range(n_metrics)]
    episodes = [{"env_steps": 10 * (i + 1), "return": float(i % 500), "length": i % 500, "time": time.time()}
                for i in range(n_episodes)]
    return metrics, episodes


def measure(name: str, n_metrics: int, n_episodes: int) -> dict:
    config = {"run": {"suite": "bench", "variant": "full", "task": "gym_CartPole-v1", "seed": 0},
              "task": {"steps": 1000, "preset": "debug"}, "agent": {"deter": 256, "units": 64}}
    metrics, episodes = rows(n_metrics, n_episodes)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        log = LiveLog(Path(folder), (name,), config, 0, [], [])
        t1 = time.perf_counter()
        # as the loop sends them: a batch of new rows at a time
        step = 10
        for i in range(0, max(n_metrics, n_episodes), step):
            log.send(episodes[: i + step], metrics[: i + step])
        t2 = time.perf_counter()
        log.close()
        t3 = time.perf_counter()
        disk = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file() and f.name != "live.json")
    sent = n_metrics * (len(METRIC_KEYS)) + 2 * n_episodes
    return {"logger": name, "open_s": t1 - t0, "close_s": t3 - t2, "send_s": t2 - t1,
            "us_per_value": 1e6 * (t2 - t1) / sent, "kb_per_1000_rows": disk / 1024 / ((n_metrics + n_episodes) / 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="metrics rows")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    for name in ("tensorboard", "wandb"):
        runs = [measure(name, args.rows, args.episodes) for _ in range(args.repeats)]
        best = {k: min(r[k] for r in runs) if k != "logger" else name for k in runs[0]}
        best["first_open_s"] = runs[0]["open_s"]  # with the library's import
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in best.items()}))


if __name__ == "__main__":
    main()
