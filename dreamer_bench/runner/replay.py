"""Replay buffer: one ring buffer per environment stream, uniform 65-step windows, online queue.

Each stored step holds the observation (images as uint8), the action taken at it, the reward that
arrived with it, the flags, and the posterior latent of the step (the replay context): written by
the policy while acting, overwritten by every training update for the steps it trained on.

Sampling is vectorised: a batch of windows is one numpy gather over precomputed index arrays, with
no per-sample loop over stored data. A window is ``length + 1`` consecutive steps of one stream (a
context step and ``length`` trained steps) at any offset; it may cross episode boundaries: its
first step counts as ``is_first``, and a step followed by an ``is_first`` counts as ``is_last``.
Online queue, as the official replay's: the windows starting at steps 1, 1 + W, 1 + 2W, … of each
stream (W = ``length + 1``: they tile the stream after its first step, context steps included)
are queued as they complete and each is sampled once, before uniform draws fill the rest of a
batch.

On disk (``save``/``load``): a step's observation, action, reward and flags never change once
added, so they are written once, as append-only chunk files (``stream<s>-<start>-<end>.npz``, the
logical steps [start, end) of stream s) in a store shared by the checkpoints; a checkpoint writes
only the steps added since the previous one. The latents, which training rewrites, are saved
whole in each checkpoint with the metadata that lists the chunks it needs. ``prune_store`` removes
chunks that the newest checkpoint no longer lists (evicted, or orphaned by a crash).
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

FLAGS = ("is_first", "is_last", "is_terminal")
LATENTS = ("deter", "stoch")  # rewritten by training: saved whole with each checkpoint


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
        self.online_stride = self.window  # queued windows tile each stream, context steps included
        self.online_next = np.ones(streams, np.int64)  # start of the next queued window per stream
        self.online = collections.deque()  # (stream, logical start) of fresh windows not yet sampled
        self.rng = np.random.default_rng(seed)
        self.persisted = np.zeros(streams, np.int64)  # per stream: steps before this are in chunk files
        self.chunks: list[dict] = []  # chunk files in the store that hold stored steps

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
            self.online_next[stream] += self.online_stride

    # ---- sampling ----------------------------------------------------------------------------

    def _valid_starts(self) -> tuple[np.ndarray, np.ndarray]:
        """Per stream: the first and one-past-last logical window start still fully stored."""
        lo = np.maximum(self.count - self.capacity, 0)
        hi = np.maximum(self.count - self.window + 1, lo)
        return lo, hi

    def can_sample(self) -> bool:
        lo, hi = self._valid_starts()
        return bool((hi > lo).any())

    def windows(self) -> int:
        """Complete windows stored over all streams (the official replay's ``len``)."""
        lo, hi = self._valid_starts()
        return int((hi - lo).sum())

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

    def save(self, directory: Path, store: Path) -> None:
        """Write the steps added since the last save as chunk files into ``store`` (each written
        atomically), then the latents and the metadata into ``directory`` (the caller makes the
        checkpoint directory atomic and calls ``prune_store`` once it is complete)."""
        directory, store = Path(directory), Path(store)
        directory.mkdir(parents=True, exist_ok=True)
        store.mkdir(parents=True, exist_ok=True)
        lo, _ = self._valid_starts()
        fixed = [k for k in self.data if k not in LATENTS]
        for stream in range(self.streams):
            start, end = max(int(self.persisted[stream]), int(lo[stream])), int(self.count[stream])
            if end <= start:
                continue
            name = f"stream{stream}-{start:012d}-{end:012d}.npz"
            pos = np.arange(start, end) % self.capacity
            _atomic_savez(store / name, {k: self.data[k][stream, pos] for k in fixed})
            self.chunks.append({"stream": stream, "start": start, "end": end, "file": name})
            self.persisted[stream] = end
        self.chunks = [c for c in self.chunks if c["end"] > lo[c["stream"]]]  # drop fully evicted ones
        filled = int(min(self.count.max(), self.capacity))
        for key in LATENTS:
            np.save(directory / f"{key}.npy", self.data[key][:, :filled])
        meta = {"count": self.count.tolist(), "online_next": self.online_next.tolist(),
                "online": [list(x) for x in self.online], "capacity": self.capacity,
                "length": self.length, "rng": self.rng.bit_generator.state,
                "persisted": self.persisted.tolist(), "chunks": self.chunks}
        (directory / "meta.json").write_text(json.dumps(meta))

    def load(self, directory: Path, store: Path) -> None:
        """Restore from a checkpoint's replay ``directory`` and the chunk ``store``."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        if meta["capacity"] != self.capacity or meta["length"] != self.length:
            raise ValueError("replay on disk was made with another capacity or window length")
        if "chunks" not in meta:  # only version 0.1.0 wrote whole arrays, and its runs do not resume
            raise ValueError(f"{directory} holds a replay of dreamer-bench 0.1.0, which this version cannot resume")
        self.count = np.asarray(meta["count"], np.int64)
        self.online_next = np.asarray(meta["online_next"], np.int64)
        self.online = collections.deque(tuple(x) for x in meta["online"])
        self.rng.bit_generator.state = meta["rng"]
        for key in LATENTS:
            stored = np.load(directory / f"{key}.npy")
            self.data[key][:, : stored.shape[1]] = stored
        lo, _ = self._valid_starts()
        for chunk in meta["chunks"]:
            stream, start = chunk["stream"], chunk["start"]
            with np.load(Path(store) / chunk["file"]) as arrays:
                first = max(int(lo[stream]) - start, 0)  # steps evicted since are skipped
                pos = np.arange(start + first, chunk["end"]) % self.capacity
                for key in arrays.files:
                    self.data[key][stream, pos] = arrays[key][first:]
        self.persisted = np.asarray(meta["persisted"], np.int64)
        self.chunks = list(meta["chunks"])


def prune_store(store: Path, keep: list[dict]) -> None:
    """Delete the chunk files of ``store`` that ``keep`` (the newest checkpoint's list) omits, and
    any half-written chunk a crash left behind."""
    names = {c["file"] for c in keep}
    for path in Path(store).iterdir():
        if path.name not in names and path.name.endswith((".npz", ".npz.tmp")):
            path.unlink(missing_ok=True)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
