"""Train the official DreamerV3 on one of our tasks, at the settings of a dreamer-bench suite.

Run with the official environment's Python (tools/official/setup.sh):

    $VENV/bin/python tools/official/train.py --task gym_CartPole-v1 --seed 0 --steps 30000 \
        --train-ratio 128 --logdir DIR

--steps is the budget in env steps (as in our suite files); the official loop counts policy steps,
so it is given steps / repeat. Everything else is the official configuration named by --preset
(size1m by default) with one environment, no evaluation environments, fp32 on CPU, and its JSONL
logger. The official script resumes by itself from DIR/ckpt: rerun the same command after a stop.
DIR/harness.jsonl records each start's settings, the official commit and the CPU in words (model,
family, instruction sets); scores.py turns DIR/scores.jsonl into score records.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
COMMIT = "e3f02248693a79dc8b0ebd62c93683888ddaccfe"


def cpu_name() -> str:
    """The CPU in words: model, family and instruction sets (dreamer_bench/machine.py, plain Python,
    loaded by its path: this venv does not have the package). Never stops a run from starting:
    without that file, the model name as /proc/cpuinfo gives it."""
    try:
        spec = importlib.util.spec_from_file_location("dreamer_bench_machine",
                                                      HERE.parents[1] / "dreamer_bench" / "machine.py")
        machine = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(machine)
        return machine.cpu_description()
    except Exception:  # noqa: BLE001 - a record, not a reason to fail
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help="our task name: gym_<id> or dmc_<domain>_<task>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, required=True, help="budget in env steps")
    p.add_argument("--repeat", type=int, default=1, help="action repeat")
    p.add_argument("--train-ratio", type=float, required=True, help="replayed steps per policy step")
    p.add_argument("--preset", default="size1m", help="official size config (size1m, size12m, debug, ...)")
    p.add_argument("--logdir", required=True)
    p.add_argument("--save-every", type=int, default=300,
                   help="seconds between checkpoints (a DMC checkpoint is about 8 MB; a kill loses what came after the last)")
    p.add_argument("official", nargs="*", help="extra official flags after --, e.g. --agent.opt.lr 1e-4")
    args = p.parse_args(argv)
    if args.steps <= 0 or args.repeat < 1 or not args.train_ratio > 0:
        p.error("--steps, --repeat and --train-ratio must be positive")
    if args.steps % args.repeat:
        p.error(f"--steps ({args.steps}) must be a multiple of --repeat ({args.repeat})")
    suite = args.task.split("_", 1)[0]
    if suite not in ("gym", "dmc"):
        p.error(f"unsupported task {args.task!r}; valid: gym_<id>, dmc_<domain>_<task>")
    if suite == "gym" and args.repeat != 1:
        p.error("gym tasks run at --repeat 1 (the official logger scales x by the DMC repeat only)")
    return args


def official_argv(args) -> list[str]:
    flags = [
        "--configs", args.preset,
        "--task", args.task,
        "--seed", str(args.seed),
        "--logdir", str(args.logdir),
        "--jax.platform", "cpu",
        "--jax.compute_dtype", "float32",
        "--jax.prealloc", "False",
        "--run.envs", "1",
        "--run.eval_envs", "0",
        "--run.train_ratio", str(args.train_ratio),
        "--run.steps", str(args.steps // args.repeat),
        "--run.save_every", str(args.save_every),
        "--logger.outputs", "jsonl",
        "--env.dmc.repeat", str(args.repeat),
    ]
    return flags + list(args.official)


def main(argv=None):
    args = parse(argv)
    logdir = pathlib.Path(args.logdir).expanduser().resolve()
    logdir.mkdir(parents=True, exist_ok=True)
    args.logdir = logdir
    os.environ.setdefault("MUJOCO_GL", "egl")

    import elements  # noqa: F401  (the official environment)
    from dreamerv3 import main as official_main
    import official_envs

    official_envs.quiet_agent_options()

    def make_env(config, index, **overrides):
        env = official_envs.make(config.task, seed=hash((config.seed, index)) % (2**31 - 1), repeat=args.repeat)
        return official_main.wrap_env(env, config)

    official_main.make_env = make_env
    try:
        clone = subprocess.run(["git", "-C", str(pathlib.Path(official_main.__file__).parents[1]), "rev-parse", "HEAD"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        clone = "unknown"
    record = {
        "method": "official",
        "task": args.task,
        "seed": args.seed,
        "steps": args.steps,
        "action_repeat": args.repeat,
        "train_ratio": args.train_ratio,
        "preset": args.preset,
        "envs": 1,
        "official_commit": clone,
        "official_argv": official_argv(args),
        "cpu": cpu_name(),
        "threads_visible": len(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # e.g. the XLA CPU runtime chosen (same program)
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if clone != COMMIT:
        print(f"warning: the official clone is at {clone}, not {COMMIT}", file=sys.stderr)
    starts = logdir / "harness.jsonl"  # one line per (re)start
    with open(starts, "a") as f:
        f.write(json.dumps(record) + "\n")
    official_main.main(official_argv(args))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
