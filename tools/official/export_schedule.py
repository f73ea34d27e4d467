"""Export the official training schedule for tests/test_official_schedule.py.

Run with the official environment's Python (tools/official/setup.sh):

    $VENV/bin/python tools/official/export_schedule.py --out tests/fixtures/official/schedule [CASE ...]

Each case runs the official training loop itself (commit e3f0224's ``embodied.run.train`` with
the official ``make_replay``, ``make_stream``, ``make_logger`` and configuration: size1m,
batch 16×64, one replay context step, the online queue on) on CartPole-v1 through our harness
adapter, with a stand-in for the agent: it acts uniformly at random and its ``train`` computes
nothing. What the loop decides does not depend on the agent's numbers, so the record is the
official schedule: the policy step of every ``train`` call, and for every batch the replay
sampled (through the agent's ``Prefetch`` stream, as the official agent does) the policy step at
which it was drawn, the windows stored and queued then, and the logical start of each of its 16
windows in the worker's stream. The stand-in's ``train`` sleeps 20 ms, so that the prefetch
thread draws the next batch while the update "runs", as it does beside a real update.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
import threading
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# name: (train ratio, policy steps)
CASES = {
    "cartpole_ratio128": (128.0, 2400),  # the learning suite's CartPole-v1 ratio: 1/8 update per step
    "dmc_ratio512": (512.0, 1600),  # the learning suite's DMC ratio: 1/2 update per step
    "ratio2048": (2048.0, 1300),  # two updates per step
}
SEED = 0


class StandIn:
    """The methods ``embodied.run.train`` calls on an agent, with no model behind them."""

    def __init__(self, act_space, record, step):
        import embodied

        self.embodied = embodied
        self.act_space = act_space
        self.rng = np.random.default_rng(SEED)
        self.record, self.step = record, step

    def init_policy(self, batch_size):
        return ()

    def init_train(self, batch_size):
        return ()

    def init_report(self, batch_size):
        return ()

    def policy(self, carry, obs, mode="train"):
        n = len(obs["is_first"])
        acts = {"action": self.rng.integers(0, int(self.act_space["action"].high), n).astype(np.int32)}
        return carry, acts, {}

    def train(self, carry, batch):
        self.record["train_steps"].append(int(self.step))
        time.sleep(0.02)
        return carry, {}, {}

    def report(self, carry, batch):
        return carry, {}

    def stream(self, source):
        return self.embodied.streams.Prefetch(source, lambda x: x)

    def save(self):
        return {}

    def load(self, data):
        pass


def export(name, out_dir):
    import elements
    import embodied
    import ruamel.yaml as yaml
    from dreamerv3 import main as official_main

    import official_envs

    ratio, steps = CASES[name]
    folder = pathlib.Path(official_main.__file__).parent
    configs = yaml.YAML(typ="safe").load((folder / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"]).update(configs["size1m"])
    logdir = tempfile.mkdtemp(prefix="official-schedule-")
    config = elements.Flags(config).parse([
        "--task", "gym_CartPole-v1", "--seed", str(SEED), "--logdir", logdir,
        "--run.envs", "1", "--run.eval_envs", "0", "--run.train_ratio", str(ratio),
        "--run.steps", str(steps), "--logger.outputs", "jsonl", "--run.log_every", "1e9",
        "--run.report_every", "1e9", "--run.save_every", "1e9",
    ])
    record = {"train_steps": [], "samples": []}
    held = {}

    def make_replay():
        replay = official_main.make_replay(config, "replay")
        inner = replay.sample
        lock = threading.Lock()

        def sample(batch, mode="train"):
            with lock:
                before = {"step": int(held["logger"].step), "items": len(replay.items),
                          "queued": len(replay.queue) if mode == "train" else 0}
            data = inner(batch, mode)
            if mode == "train":
                ids = data["stepid"][:, 0]  # each window's first step
                before["ids"] = [bytes(x).hex() for x in ids]
                record["samples"].append(before)
            return data

        replay.sample = sample
        held["replay"] = replay
        return replay

    def make_agent():  # called first by embodied.run.train; the stand-in reads the logger's counter
        held["logger"] = official_main.make_logger(config)
        env = make_env(0)
        act_space = env.act_space
        env.close()
        return StandIn({k: v for k, v in act_space.items() if k != "reset"}, record, held["logger"].step)

    def make_env(index, **overrides):
        return official_main.wrap_env(official_envs.make("gym_CartPole-v1", SEED, 1), config)

    args = elements.Config(
        **config.run, replica=config.replica, replicas=config.replicas, logdir=config.logdir,
        batch_size=config.batch_size, batch_length=config.batch_length,
        report_length=config.report_length, consec_train=config.consec_train,
        consec_report=config.consec_report, replay_context=config.replay_context)
    embodied.run.train(make_agent, make_replay, make_env,
                       lambda replay, mode: official_main.make_stream(config, replay, mode),
                       lambda: held["logger"], args)

    # logical position of a step id: chunks of the one worker in creation order
    replay = held["replay"]
    offsets, total = {}, 0
    for uuid, chunk in replay.chunks.items():
        offsets[bytes(uuid).hex()] = total
        total += chunk.length
    for s in record["samples"]:
        starts = []
        for h in s.pop("ids"):
            raw = bytes.fromhex(h)
            starts.append(offsets[raw[:-4].hex()] + int.from_bytes(raw[-4:], "big"))
        s["starts"] = starts
    meta = dict(case=name, train_ratio=ratio, policy_steps=steps, batch_size=int(config.batch_size),
                batch_length=int(config.batch_length), replay_context=int(config.replay_context),
                online=bool(config.replay.online), stored_steps=total,
                official_commit="e3f02248693a79dc8b0ebd62c93683888ddaccfe")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, **record}))
    print(f"{name}: {len(record['train_steps'])} updates, {len(record['samples'])} batches, "
          f"first update at step {record['train_steps'][0] if record['train_steps'] else None}", file=sys.stderr)


def main(argv=None):
    import official_envs

    official_envs.quiet_agent_options()
    official_envs.export_main(__doc__, CASES, export, argv)


if __name__ == "__main__":
    main()
