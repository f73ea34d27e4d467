"""Replay buffer: one ring buffer per environment stream, uniform 65-step windows, online queue.

Each stored step holds the observation (images as uint8), the action taken at it, the reward that
arrived with it, the flags, and the posterior latent of the step (the replay context): written by
the policy while acting, overwritten by every training update for the steps it trained on.

Sampling is vectorised: a batch of windows is one numpy gather over precomputed index arrays, with
no per-sample loop over stored data. A window is ``length + 1`` consecutive steps of one stream (a
context step and ``length`` trained steps) at any offset; it may cross episode boundaries: its
first step counts as ``is_first``, and a step followed by an ``is_first`` counts as ``is_last``.
Online queue: every fresh window (trained steps not overlapping the previous fresh window of its
stream) is sampled once, before uniform draws fill the rest of the batch.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Mapping

import numpy as np

FLAGS = ("is_first", "is_last", "is_terminal")


class Replay:
    def __init__(self, obs_space: Mapping[str, tuple], act_size: int, deter: int, latents: int,
                 streams: int, capacity: int, length: int, seed: int = 0):
        """capacity: steps kept per stream (oldest dropped first); length: trained steps per window."""
        self.length = length
        self.window = length + 1
        self.streams = streams
        self.capacity = int(capacity)
        if self.capacity < self.window:
            raise ValueError(f"replay capacity {capacity} is smaller than a window of {self.window} steps")
        spec = {k: (tuple(s), np.uint8 if len(s) == 3 else np.float32) for k, s in obs_space.items()}
        spec.update(action=((act_size,), np.float32), reward=((), np.float32),
                    is_first=((), bool), is_last=((), bool), is_terminal=((), bool),
                    deter=((deter,), np.float16), stoch=((latents,), np.int16))
        self.spec = spec
        self.data = {k: np.zeros((streams, self.capacity, *shape), dtype) for k, (shape, dtype) in spec.items()}
        self.count = np.zeros(streams, np.int64)  # steps ever added per stream (logical length)
        self.online_next = np.zeros(streams, np.int64)  # start of the next fresh window per stream
        self.online = collections.deque()  # (stream, logical start) of fresh windows not yet sampled
        self.rng = np.random.default_rng(seed)

    # ---- adding ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Steps currently stored over all streams."""
        return int(np.minimum(self.count, self.capacity).sum())

    def add(self, stream: int, step: Mapping[str, np.ndarray]) -> None:
        """Append one step to a stream: observation keys, action, reward, flags, deter, stoch
        (class indices per latent)."""
        pos = self.count[stream] % self.capacity
        for key, array in self.data.items():
            array[stream, pos] = step[key]
        self.count[stream] += 1
        n = self.count[stream]
        while self.online_next[stream] + self.window <= n:
            self.online.append((stream, int(self.online_next[stream])))
            self.online_next[stream] += self.length

    # ---- sampling ----------------------------------------------------------------------------

    def _valid_starts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stream: the first and one-past-last logical window start still fully stored."""
        lo = np.maximum(self.count - self.capacity, 0)
        hi = np.maximum(self.count - self.window + 1, lo)
        return lo, hi

    def can_sample(self) -> bool:
        lo, hi = self._valid_starts()
        return bool((hi > lo).any())

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        """A batch of ``batch`` windows, fresh ones first. Keys as stored plus ``stream`` (B,) and
        ``start`` (B,) logical starts, for ``write_context``."""
        lo, hi = self._valid_starts()
        streams, starts = [], []
        while self.online and len(streams) < batch:
            s, start = self.online.popleft()
            if start >= lo[s]:  # a fresh window already evicted is skipped
                streams.append(s)
                starts.append(start)
        need = batch - len(streams)
        if need:
            sizes = (hi - lo).astype(np.float64)
            if sizes.sum() <= 0:
                raise ValueError("replay holds no complete window yet")
            chosen = self.rng.choice(self.streams, size=need, p=sizes / sizes.sum())
            offsets = np.floor(self.rng.random(need) * sizes[chosen]).astype(np.int64)
            streams += chosen.tolist()
            starts += (lo[chosen] + offsets).tolist()
        return self._gather(np.asarray(streams), np.asarray(starts))

    def _gather(self, streams: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
        logical = starts[:, None] + np.arange(self.window)[None]  # (B, T+1)
        pos = logical % self.capacity
        rows = streams[:, None]
        out = {k: v[rows, pos] for k, v in self.data.items()}
        is_first = out["is_first"].copy()
        is_first[:, 0] = True  # a window's first step starts its sequence
        is_last = out["is_last"].copy()
        is_last[:, :-1] |= is_first[:, 1:]  # a step followed by a first step ends an episode
        out["is_first"], out["is_last"] = is_first, is_last
        out["stream"], out["start"] = streams, starts
        return out

    def write_context(self, streams: np.ndarray, starts: np.ndarray, deter: np.ndarray, stoch: np.ndarray) -> None:
        """Overwrite the stored latents of the trained steps (window steps 1..T) of a batch."""
        lo, _ = self._valid_starts()
        keep = starts >= lo[streams]  # never write into steps evicted since the batch was drawn
        logical = starts[keep, None] + np.arange(1, self.window)[None]
        pos = logical % self.capacity
        rows = streams[keep, None]
        self.data["deter"][rows, pos] = deter[keep]
        self.data["stoch"][rows, pos] = stoch[keep]

    # ---- persistence -------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the buffer into ``directory`` (the caller makes the checkpoint atomic)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        filled = int(min(self.count.max(), self.capacity))
        for key, array in self.data.items():
            np.save(directory / f"{key}.npy", array[:, :filled])
        meta = {"count": self.count.tolist(), "online_next": self.online_next.tolist(),
                "online": [list(x) for x in self.online], "capacity": self.capacity,
                "length": self.length, "rng": self.rng.bit_generator.state}
        (directory / "meta.json").write_text(json.dumps(meta))

    def load(self, directory: Path) -> None:
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        if meta["capacity"] != self.capacity or meta["length"] != self.length:
            raise ValueError("replay on disk was made with another capacity or window length")
        for key, array in self.data.items():
            stored = np.load(directory / f"{key}.npy")
            array[:, : stored.shape[1]] = stored
        self.count = np.asarray(meta["count"], np.int64)
        self.online_next = np.asarray(meta["online_next"], np.int64)
        self.online = collections.deque(tuple(x) for x in meta["online"])
        self.rng.bit_generator.state = meta["rng"]
