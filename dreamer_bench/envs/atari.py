"""Atari through ale-py, with the protocol of DreamerV3's Atari 100k (spec §4):

64×64 RGB; action repeat 4 with a max-pool of the last two frames of each repeat (before the
Pillow bilinear resize); no sticky actions; the minimal action set; 0–30 random no-ops at reset
(inclusive, not counted as steps); no life-loss signal; no reward clipping; episodes capped at
108,000 frames (no-op frames not counted, as in the official wrapper), reported as a truncation
and never as a terminal (``terminal_at_cap=True``, a suite ``env:`` setting, marks it terminal as
the official wrapper does). The first observation of an episode is the real current frame (never
black, never the previous episode's last frame); the last one pools the last two frames of its
own step (the official wrapper pools stale frames when a game ends before its step's last two).

``sticky`` sets the ALE's repeat_action_probability (default 0, as the atari100k config asks;
the official wrapper at e3f0224 sets it after loading the ROM, too late to take effect, so its
runs have the ALE default 0.25: ``env: {sticky: 0.25}`` reproduces that in distribution).

Differences from gymnasium's ``AtariPreprocessing``: no-ops 0–30 rather than 1–30, Pillow
bilinear rather than OpenCV area resize, and the last frame of an episode is pooled too.
"""

from __future__ import annotations

import numpy as np

from ..spaces import ActSpace
from .base import Env, EnvError, image_size, resize_image, whole


def game_id(name: str) -> str:
    """``kung_fu_master`` → ``KungFuMaster`` (the ALE's ROM naming; ``games`` knows the exceptions)."""
    return "".join(part.capitalize() for part in name.split("_"))


def games(gym) -> dict[str, str]:
    """Every game gymnasium has an ``ALE/<Game>-v5`` environment for, by our name (ale-py's ROM
    id, e.g. ``tic_tac_toe_3d``) → that environment id (``ALE/TicTacToe3D-v5``). ale-py ships a
    few ROMs without such an environment; they are not games here."""
    from ale_py.roms import get_all_rom_ids

    ids = {eid[4:-3].lower(): eid for eid in gym.registry if eid.startswith("ALE/") and eid.endswith("-v5")}
    return {rom: ids[rom.replace("_", "")] for rom in sorted(get_all_rom_ids()) if rom.replace("_", "") in ids}


def _load_ale():
    try:
        import ale_py
        import gymnasium
    except ImportError:
        raise EnvError("Atari needs ale-py; install it with: pip install 'dreamer-bench[atari]'") from None
    gymnasium.register_envs(ale_py)
    return gymnasium


class AtariEnv(Env):
    def __init__(self, game: str, seed: int = 0, action_repeat: int = 4, noops: int = 30,
                 frame_cap: int = 108_000, size=(64, 64), full_action_space: bool = False,
                 terminal_at_cap: bool = False, sticky: float = 0.0):
        super().__init__()
        action_repeat, noops = whole("action_repeat", action_repeat, 1), whole("noops", noops, 0)
        frame_cap, size = whole("frame_cap", frame_cap, 1), image_size(size)
        gym = _load_ale()
        known = games(gym)
        if game not in known:
            raise EnvError(f"unknown Atari game {game!r}; valid: {', '.join(known)}")
        env_id = known[game]
        try:
            # the cap is counted here, without the no-op frames, as the official wrapper counts it;
            # the ALE's own limit (which counts them) is set beyond it
            if not 0.0 <= sticky < 1.0:
                raise EnvError(f"sticky (the ALE's repeat_action_probability) must be in [0, 1), got {sticky}")
            self.env = gym.make(env_id, frameskip=1, repeat_action_probability=float(sticky),
                                full_action_space=full_action_space,
                                max_num_frames_per_episode=frame_cap + noops + action_repeat, obs_type="rgb")
        except gym.error.Error as e:  # a known game that still failed: say what gymnasium said
            raise EnvError(f"Atari game {game!r} ({env_id}) failed to load: {e}") from None
        self.action_repeat = action_repeat
        self.noops = noops
        self.frame_cap = frame_cap
        self.terminal_at_cap = bool(terminal_at_cap)
        self._frames = 0  # frames of this episode, no-ops not counted
        self.size = tuple(size)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._seeded = False
        self.obs_space = {"image": (*self.size, 3)}
        self.act_space = ActSpace(True, int(self.env.action_space.n))

    def _reset(self):
        while True:
            if not self._seeded:
                frame, _ = self.env.reset(seed=self.seed)
                self._seeded = True
            else:
                frame, _ = self.env.reset()
            ended = False
            for _ in range(int(self.rng.integers(0, self.noops + 1))):
                frame, _, terminated, truncated, _ = self.env.step(0)
                if terminated or truncated:
                    ended = True
                    break
            if not ended:
                self._frames = 0
                return {"image": resize_image(frame, self.size)}

    def _step(self, action):
        total, terminated, truncated = 0.0, False, False
        frames = []
        for _ in range(self.action_repeat):
            frame, reward, terminated, truncated, _ = self.env.step(action)
            self._frames += 1
            total += float(reward)
            frames.append(frame)
            if self._frames >= self.frame_cap:
                truncated = True
            if terminated or truncated:
                break
        if truncated and not terminated and self.terminal_at_cap:
            terminated = True  # the official wrapper's convention (is_terminal = is_last)
        pooled = np.maximum(frames[-2], frames[-1]) if len(frames) >= 2 else frames[-1]
        return {"image": resize_image(pooled, self.size)}, total, bool(terminated), bool(truncated), {}

    def close(self):
        self.env.close()
