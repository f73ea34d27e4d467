"""The replay buffer: windows, the online queue, episode boundaries, context write-back, resume."""

import numpy as np
import pytest

from dreamer_bench.runner.replay import Replay


def make(streams=1, capacity=100, length=4, seed=0):
    return Replay({"vector": (2,), "image": (64, 64, 3)}, act_size=3, deter=5, latents=2,
                  streams=streams, capacity=capacity, length=length, seed=seed)


def step(i, first=False):
    return {"vector": np.array([i, -i], np.float32), "image": np.full((64, 64, 3), i % 256, np.uint8),
            "action": np.eye(3, dtype=np.float32)[i % 3], "reward": np.float32(i), "is_first": first,
            "is_last": False, "is_terminal": False, "deter": np.full(5, i / 100, np.float16),
            "stoch": np.array([i % 4, 0], np.int16)}


def fill(replay, n, stream=0, first_every=None):
    for i in range(n):
        replay.add(stream, step(i, first=(i == 0) or (first_every and i % first_every == 0)))


def test_images_are_stored_as_uint8_and_windows_are_consecutive():
    r = make()
    fill(r, 30)
    assert r.data["image"].dtype == np.uint8
    r.online.clear()
    b = r.sample(8)
    assert b["vector"].shape == (8, 5, 2) and b["image"].shape == (8, 5, 64, 64, 3)
    for row in b["vector"][:, :, 0]:
        assert np.array_equal(np.diff(row), np.ones(4))  # 5 consecutive steps
    assert np.array_equal(b["start"], b["vector"][:, 0, 0].astype(int))


def test_uniform_over_all_windows_of_all_streams():
    r = make(streams=2, capacity=1000)
    fill(r, 105, stream=0)
    fill(r, 25, stream=1)
    r.online.clear()
    b = r.sample(20000)
    windows0, windows1 = 105 - 4, 25 - 4
    assert abs((b["stream"] == 1).mean() - windows1 / (windows0 + windows1)) < 0.01
    starts = b["start"][b["stream"] == 0]
    assert starts.min() == 0 and starts.max() == windows0 - 1
    counts = np.bincount(starts, minlength=windows0)
    assert counts.min() > 0.6 * counts.mean()


def test_online_queue_gives_every_fresh_window_once_before_uniform_draws():
    """As the official replay: 5-step windows starting at 1, 6, 11, … (tiling the stream after its
    first step), each queued as it completes."""
    r = make()
    fill(r, 16)  # steps 0..15: windows [1, 6), [6, 11), [11, 16)
    assert list(r.online) == [(0, 1), (0, 6), (0, 11)]
    b = r.sample(2)
    assert b["start"].tolist() == [1, 6]
    b = r.sample(3)
    assert b["start"][0] == 11 and len(r.online) == 0
    for i in range(16, 20):
        r.add(0, step(i))
    assert not r.online  # [16, 21) is not complete yet
    r.add(0, step(20))
    assert list(r.online) == [(0, 16)]
    assert r.windows() == 21 - 5 + 1


def test_window_flags_first_step_and_last_before_a_first():
    r = make(length=4)
    fill(r, 12, first_every=6)  # episodes start at 0 and 6
    b = r._gather(np.array([0]), np.array([3]))  # steps 3..7, a new episode at 6
    assert b["is_first"][0].tolist() == [True, False, False, True, False]
    assert b["is_last"][0].tolist() == [False, False, True, False, False]


def test_capacity_drops_the_oldest_steps():
    r = make(capacity=20)
    fill(r, 50)
    assert len(r) == 20
    r.online.clear()
    b = r.sample(500)
    assert b["start"].min() >= 30 and b["start"].max() <= 50 - 5
    assert np.all(b["vector"][:, :, 0] >= 30)


def test_write_context_overwrites_the_trained_steps_only():
    r = make()
    fill(r, 20)
    b = r._gather(np.array([0, 0]), np.array([2, 10]))
    deter = np.full((2, 4, 5), 7.0, np.float16)
    stoch = np.full((2, 4, 2), 3, np.int16)
    r.write_context(b["stream"], b["start"], deter, stoch)
    assert np.all(r.data["deter"][0, 3:7] == 7.0) and np.all(r.data["deter"][0, 11:15] == 7.0)
    assert r.data["deter"][0, 2, 0] == np.float16(0.02)  # the context step is kept
    assert r.data["deter"][0, 7, 0] == np.float16(0.07)


def test_save_and_load_restore_everything(tmp_path):
    r = make(streams=2, capacity=30)
    fill(r, 40, stream=0)
    fill(r, 9, stream=1)
    r.sample(3)
    r.save(tmp_path / "ckpt" / "replay", tmp_path / "store")
    other = make(streams=2, capacity=30, seed=99)
    other.load(tmp_path / "ckpt" / "replay", tmp_path / "store")
    for k in r.data:
        assert np.array_equal(r.data[k], other.data[k]), k
    assert list(r.online) == list(other.online)
    a, b = r.sample(6), other.sample(6)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_each_step_is_written_once_and_evicted_chunks_are_pruned(tmp_path):
    """Saves are incremental: a second save writes only the new steps; steps evicted by the ring
    are skipped on load, and chunks wholly evicted leave the list and the store."""
    store = tmp_path / "store"
    r = make(streams=1, capacity=30)
    fill(r, 25)
    r.save(tmp_path / "c1", store)
    assert [(c["start"], c["end"]) for c in r.chunks] == [(0, 25)]
    for i in range(25, 50):
        r.add(0, step(i))
    r.write_context(np.array([0]), np.array([30]), np.full((1, 4, 5), 7, np.float16), np.ones((1, 4, 2), np.int16))
    r.save(tmp_path / "c2", store)
    # the first chunk (steps 0-24) still holds steps 20-24 of the 30 kept (20-49): it stays listed
    assert [(c["start"], c["end"]) for c in r.chunks] == [(0, 25), (25, 50)]
    with np.load(store / r.chunks[1]["file"]) as second:
        assert second["reward"].tolist() == list(range(25, 50))  # only the new steps
    other = make(streams=1, capacity=30)
    other.load(tmp_path / "c2", store)
    for k in r.data:
        assert np.array_equal(r.data[k], other.data[k]), k  # latents rewritten since c1 included
    for i in range(50, 75):  # keeps 45-74: the first chunk is wholly evicted, the second partly
        r.add(0, step(i))
    r.save(tmp_path / "c3", store)
    assert [(c["start"], c["end"]) for c in r.chunks] == [(25, 50), (50, 75)]
    from dreamer_bench.runner.replay import prune_store

    prune_store(store, r.chunks)
    assert sorted(p.name for p in store.glob("*.npz")) == sorted(c["file"] for c in r.chunks)
    third = make(streams=1, capacity=30)
    third.load(tmp_path / "c3", store)
    assert all(np.array_equal(r.data[k], third.data[k]) for k in r.data)


def test_too_small_capacity_is_refused():
    with pytest.raises(ValueError, match="smaller than a window"):
        make(capacity=3)


def test_a_crash_between_chunk_and_checkpoint_leaves_the_old_checkpoint_whole(tmp_path):
    """Chunks of a checkpoint that never completed are orphans: the previous checkpoint still loads
    exactly, and the next complete checkpoint's prune removes them."""
    from dreamer_bench.runner.replay import prune_store

    store = tmp_path / "store"
    r = make(streams=1, capacity=50)
    fill(r, 20)
    r.save(tmp_path / "c1", store)
    snapshot = {k: v.copy() for k, v in r.data.items()}
    for i in range(20, 33):
        r.add(0, step(i))
    r.save(tmp_path / "c2-never-completed", store)  # its chunk is written, then the process dies
    resumed = make(streams=1, capacity=50)
    resumed.load(tmp_path / "c1", store)
    assert all(np.array_equal(resumed.data[k], snapshot[k]) for k in snapshot)
    for i in range(20, 27):
        resumed.add(0, step(i + 100))
    resumed.save(tmp_path / "c2", store)
    (store / ".stream0-000000000033-000000000040.npz.tmp").write_bytes(b"half a chunk")  # killed mid-write
    prune_store(store, resumed.chunks)
    assert not list(store.glob(".*.tmp"))
    assert sorted(p.name for p in store.glob("*.npz")) == sorted(c["file"] for c in resumed.chunks)
    again = make(streams=1, capacity=50)
    again.load(tmp_path / "c2", store)
    assert again.data["reward"][0, :27].tolist() == list(range(20)) + list(range(120, 127))
