"""Export trajectories of the official environment wrappers for tests/test_official_envs.py.

Run with the official environment's Python (tools/official/setup.sh):

    $VENV/bin/python tools/official/export_envs.py --out tests/fixtures/official/envs [CASE ...]

Each case steps one official environment (commit e3f0224's ``embodied.envs.dmc.DMC`` or
``embodied.envs.atari.Atari`` behind the official ``wrap_env`` wrappers) for STEPS policy steps
with a fixed random action sequence, resetting after every ``is_last`` as the official driver
does, and records the actions, rewards, ``is_first``/``is_last``/``is_terminal``, vector
observations in full (one array per official key, in its own dtype and shape) and images as a SHA-1 per step plus every 50th frame in full. Settings:

- ``dmc_walker_walk`` proprio and ``dmc_cartpole_swingup`` vision (camera 0, 64×64) at action
  repeat 2, dm_control seeded with ``task_kwargs={'random': SEED}`` on both sides (the official
  class is handed the loaded environment; it seeds nothing itself);
- ``atari_pong`` at the official ``atari100k`` settings (64×64 RGB, repeat 4, no sticky
  actions, the minimal action set, max-pool of the last 2 frames, Pillow resize) with a frame
  cap of 2,000 frames instead of 108,000 so that the cap is reached, and the no-op count of each
  reset forced to the values in NOOPS (the official wrapper draws 0–30 from its own generator).
  ale-py 0.12 (which ships its ROMs, so the official ``roms.get_rom_path`` finds them) takes
  setting names as str where the official wrapper passes bytes: the harness converts them. The
  wrapper sets ``repeat_action_probability`` after loading the ROM, too late for the ALE to use
  it (its runs have sticky actions at the ALE default 0.25); the harness reloads the ROM so
  that the configured 0 takes effect.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys

import numpy as np

STEPS = 1100
SEED = 3
NOOPS = [7, 0, 30, 12, 3, 25, 1, 18]
ATARI_CAP = 2000
FULL_EVERY = 50
CASES = ("dmc_walker_walk_proprio", "dmc_cartpole_swingup_vision", "atari_pong")


class ForcedNoops:
    """Stands in for the official Atari wrapper's generator: integers() returns NOOPS in turn."""

    def __init__(self, counts):
        self.counts = list(counts)
        self.used = []

    def integers(self, *args, **kwargs):
        value = self.counts[len(self.used) % len(self.counts)]
        self.used.append(value)
        return value


def make(case):
    from dreamerv3 import main as official_main

    if case.startswith("dmc_"):
        from dm_control import suite
        from embodied.envs.dmc import DMC

        domain, task = {"dmc_walker_walk_proprio": ("walker", "walk"),
                        "dmc_cartpole_swingup_vision": ("cartpole", "swingup")}[case]
        vision = case.endswith("vision")
        dmenv = suite.load(domain, task, task_kwargs={"random": SEED})
        env = DMC(dmenv, repeat=2, size=(64, 64), proprio=not vision, image=vision, camera=0)
        settings = dict(domain=domain, task=task, repeat=2, seed=SEED, obs="image" if vision else "vector")
    else:
        import ale_py
        from embodied.envs.atari import Atari

        class ALEInterface(ale_py.ALEInterface):
            """ale-py 0.12 takes setting names as str; the official wrapper passes bytes."""

            def setInt(self, key, value):
                super().setInt(key.decode() if isinstance(key, bytes) else key, int(value))

        ale_py.ALEInterface = ALEInterface

        env = Atari("pong", repeat=4, size=(64, 64), gray=False, noops=30, lives="unused", sticky=False,
                    actions="needed", length=ATARI_CAP, pooling=2, aggregate="max", resize="pillow",
                    autostart=False, clip_reward=False, seed=SEED)
        # The wrapper sets repeat_action_probability after loadROM, where the ALE no longer reads
        # it: its runs keep the ALE default 0.25 (sticky actions) although the atari100k config
        # says sticky: False (with the ROM reloaded, trajectories no longer depend on the ALE
        # seed). Reloading the ROM applies the settings the config asks for.
        import ale_py.roms

        env.ale.loadROM(ale_py.roms.get_rom_path("pong"))
        env.rng = ForcedNoops(NOOPS)
        settings = dict(game="pong", repeat=4, frame_cap=ATARI_CAP, noops=NOOPS, seed=SEED, obs="image")
    return official_main.wrap_env(env, None), settings


def export(case, out_dir):
    env, settings = make(case)
    space = env.act_space["action"]
    rng = np.random.default_rng(SEED)
    if space.discrete:
        actions = rng.integers(0, int(space.high), STEPS).astype(np.int32)
    else:  # some beyond [-1, 1]: both sides clip
        actions = rng.uniform(-1.2, 1.2, (STEPS, *space.shape)).astype(np.float32)
    rec = {k: [] for k in ("reward", "is_first", "is_last", "is_terminal", "sha1")}
    vectors = {}  # proprio: one array per official observation key, as the agent sees them
    frames, frame_steps = [], []
    reset = True
    for t in range(STEPS):
        obs = env.step({"action": actions[t], "reset": reset})
        reset = bool(obs["is_last"])
        for key in ("reward", "is_first", "is_last", "is_terminal"):
            rec[key].append(obs[key])
        if "image" in obs:
            image = np.ascontiguousarray(obs["image"], np.uint8)
            rec["sha1"].append(hashlib.sha1(image.tobytes()).hexdigest())
            if t % FULL_EVERY == 0 or obs["is_first"] or obs["is_last"]:
                frames.append(image)
                frame_steps.append(t)
        else:
            for k in obs:
                if k not in ("reward", "is_first", "is_last", "is_terminal") and not k.startswith("log/"):
                    vectors.setdefault(k, []).append(np.asarray(obs[k]))
    out = {"actions": actions, "reward": np.asarray(rec["reward"], np.float32)}
    for key in ("is_first", "is_last", "is_terminal"):
        out[key] = np.asarray(rec[key], bool)
    for k, values in vectors.items():
        out[f"obs/{k}"] = np.stack(values)  # the official dtype and shape (a scalar key stays ())
    if rec["sha1"]:
        out["sha1"] = np.asarray(rec["sha1"])
        out["frames"] = np.stack(frames)
        out["frame_steps"] = np.asarray(frame_steps)
    import mujoco
    import ale_py
    meta = dict(case=case, steps=STEPS, settings=settings, mujoco=mujoco.__version__, ale_py=ale_py.__version__,
                official_commit="e3f02248693a79dc8b0ebd62c93683888ddaccfe", mujoco_gl=os.environ.get("MUJOCO_GL"))
    out["meta"] = np.array(json.dumps(meta))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{case}.npz"
    np.savez_compressed(path, **out)
    print(f"{case}: {path.stat().st_size / 1e6:.2f} MB, {int(out['is_first'].sum())} resets, "
          f"{int(out['is_last'].sum())} ends, {int(out['is_terminal'].sum())} terminals", file=sys.stderr)


def main(argv=None):
    import official_envs

    os.environ.setdefault("MUJOCO_GL", "egl")
    official_envs.export_main(__doc__, CASES, export, argv)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    main()
