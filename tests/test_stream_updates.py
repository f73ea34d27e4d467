"""tools/official/stream_updates.py: the windows it replays and the context it keeps.

The probe trains both implementations on one recorded stream; what it feeds them must be what a
run on that stream would have drawn (the official schedule with the prefetching stream), and each
batch's context must be the latents as they stood when the batch was drawn, not later."""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tools" / "official"))
import stream_updates as su  # noqa: E402

WALKER = su.TASKS["dmc_walker_walk"]
CARTPOLE = su.TASKS["gym_CartPole-v1"]


def write_our_store(run: pathlib.Path, steps: int, cuts=(700, 1500)) -> dict:
    """A run folder whose checkpoint store holds ``steps`` walker steps in append-only chunks;
    episodes of 501 steps, as DMC's with action repeat 2."""
    rng = np.random.default_rng(0)
    first = np.zeros(steps, bool)
    first[::501] = True
    last = np.roll(first, -1)
    last[-1] = False
    data = {k: rng.normal(size=(steps, *shape)).astype(np.float32) for k, shape in WALKER.obs.items()}
    data.update(action=rng.normal(size=(steps, WALKER.act)).astype(np.float32),
                reward=rng.uniform(0, 1, steps).astype(np.float32), is_first=first, is_last=last,
                is_terminal=np.zeros(steps, bool))
    store = run / "checkpoint" / "replay"
    store.mkdir(parents=True)
    bounds = [0, *cuts, steps]
    for a, b in zip(bounds[:-1], bounds[1:]):
        np.savez(store / f"stream0-{a:012d}-{b:012d}.npz", **{k: v[a:b] for k, v in data.items()})
    return data


def test_prepare_draws_what_a_run_on_the_stream_would_draw(tmp_path):
    data = write_our_store(tmp_path / "run", 2000)
    su.prepare(tmp_path / "run", 20, tmp_path / "probe", seed=3, task_name="dmc_walker_walk")
    with np.load(tmp_path / "probe" / "stream.npz") as f:
        steps = len(f["reward"])
        assert all(np.array_equal(f[k], data[k][:steps]) for k in WALKER.step_keys)  # the chunks in order
    starts, drawn_after = su.load(tmp_path / "probe")[1:]
    # training starts at policy step 1,088 and then runs one update per two policy steps
    assert steps == 1088 + 2 * 19 + 1 and starts.shape == (20, su.B)
    # the prefetching stream: batch 0 drawn long before training (its first window the first
    # fresh one, steps 1-65), batch 1 just before update 0 ran, batch k before update k - 1
    assert list(drawn_after) == [0, 0, *range(1, 19)]
    assert starts[0][0] == 1 and (starts[0][1:] + su.L <= 66).all()
    # batch 1 takes the 15 fresh windows queued since (66, 131, …, 976: 1,041 is not complete at
    # step 1,088) and one uniform draw
    assert list(starts[1][:15]) == list(66 + 65 * np.arange(15)) and starts[1][15] + su.L <= 1088
    # no window reaches past the steps stored when it was drawn (update k runs at step 1088 + 2k)
    assert (starts[2:] + su.L <= (1088 + 2 * np.arange(1, 19))[:, None]).all()


def test_a_cartpole_probe_draws_one_batch_per_eight_policy_steps(tmp_path):
    # CartPole-v1 at the suite's protocol: train ratio 128, so one update per 16·64/128 = 8
    # policy steps (= env steps, repeat 1), from policy step 1,088 on as walker's
    rng = np.random.default_rng(2)
    steps = 1400
    first = np.zeros(steps, bool)
    first[::23] = True  # short episodes, as an untrained CartPole agent's
    data = {"vector": rng.normal(size=(steps, 4)).astype(np.float32),
            "action": np.eye(2, dtype=np.float32)[rng.integers(0, 2, steps)],
            "reward": np.ones(steps, np.float32), "is_first": first, "is_last": np.roll(first, -1),
            "is_terminal": np.roll(first, -1)}
    store = tmp_path / "run" / "checkpoint" / "replay"
    store.mkdir(parents=True)
    np.savez(store / f"stream0-{0:012d}-{steps:012d}.npz", **data)
    su.prepare(tmp_path / "run", 30, tmp_path / "probe", seed=0, task_name="gym_CartPole-v1")
    stream, starts, drawn_after = su.load(tmp_path / "probe")
    assert len(stream["reward"]) == 1088 + 8 * 29 + 1 and starts.shape == (30, su.B)
    assert list(drawn_after) == [0, 0, *range(1, 29)]
    assert (starts[2:] + su.L <= (1088 + 8 * np.arange(1, 29))[:, None]).all()
    assert su.task_of(tmp_path / "probe") is CARTPOLE  # the task travels in meta.json
    # update k starts at env step 1,088 + 8(k − 1)
    assert su.env_steps(1, CARTPOLE) == 1088 and su.env_steps(52, CARTPOLE) == 1496
    batch = su.window_batch(stream, starts[5], CARTPOLE)
    assert batch["vector"].shape == (su.B, su.L, 4) and batch["action"].shape == (su.B, su.L, 2)


def write_official_replay(logdir: pathlib.Path, lengths, broken_after=None, task=WALKER, restart_first=False) -> None:
    """An official replay folder: chunks <time>-<uuid>-<successor>-<length>.npz, each naming
    the next; with ``broken_after``, the chunk after that one names no stored successor, as where
    a run was stopped (``restart_first``: the next chunk starts an episode, as a resumed run's
    does). The official agent's layout: walker's height a scalar, a discrete action its index."""
    rng = np.random.default_rng(1)
    (logdir / "replay").mkdir(parents=True)
    ids = [f"U{i:021d}" for i in range(len(lengths) + 1)]
    for i, n in enumerate(lengths):
        data = {k: rng.normal(size=(n, *shape)).astype(np.float32) for k, shape in task.official_shapes.items()}
        action = np.full(n, i % task.act, np.int32) if task.discrete else np.full((n, task.act), i, np.float32)
        data.update(action=action, reward=np.zeros(n, np.float32),
                    is_first=np.zeros(n, bool), is_last=np.zeros(n, bool), is_terminal=np.zeros(n, bool))
        data["is_first"][0] = restart_first and broken_after is not None and i == broken_after + 1
        succ = "Xmissing" if broken_after is not None and i == broken_after else ids[i + 1]
        np.savez(logdir / "replay" / f"20261205T0{i}0000F000000-{ids[i]}-{succ}-{n}.npz", **data)


def test_an_official_replay_is_read_along_its_chain(tmp_path):
    write_official_replay(tmp_path / "run", [100, 60, 80])
    stream = su.read_stream(tmp_path / "run", 200, WALKER)
    assert stream["height"].shape == (200, 1)
    assert list(np.unique(stream["action"][:, 0], return_counts=True)[1]) == [100, 60, 40]
    # a resumed run: its chunks start a new chain with a new episode, read on in time order
    write_official_replay(tmp_path / "resumed", [100, 60, 80], broken_after=0, restart_first=True)
    stream = su.read_stream(tmp_path / "resumed", 200, WALKER)
    assert list(np.unique(stream["action"][:, 0], return_counts=True)[1]) == [100, 60, 40]
    assert np.flatnonzero(stream["is_first"]).tolist() == [100]
    with pytest.raises(SystemExit, match="only 240 policy steps"):
        su.read_stream(tmp_path / "resumed", 300, WALKER)
    # a chain that starts mid-episode is not a resumed run's: refused, not joined
    write_official_replay(tmp_path / "broken", [100, 60, 80], broken_after=0)
    with pytest.raises(SystemExit, match="does not start an episode"):
        su.read_stream(tmp_path / "broken", 200, WALKER)


def test_an_official_cartpole_replay_is_read_in_our_layout(tmp_path):
    write_official_replay(tmp_path / "run", [30, 20], task=CARTPOLE)  # action indices 0, then 1
    stream = su.read_stream(tmp_path / "run", 50, CARTPOLE)
    assert stream["vector"].shape == (50, 4) and stream["action"].shape == (50, 2)
    assert (stream["action"][:30] == [1, 0]).all() and (stream["action"][30:] == [0, 1]).all()


def test_a_store_with_a_gap_or_too_few_steps_is_refused(tmp_path):
    write_our_store(tmp_path / "run", 2000)
    (tmp_path / "run" / "checkpoint" / "replay" / f"stream0-{700:012d}-{1500:012d}.npz").unlink()
    with pytest.raises(SystemExit, match="not contiguous"):
        su.read_stream(tmp_path / "run", 1800, WALKER)
    write_our_store(tmp_path / "short", 1000, cuts=(500,))
    with pytest.raises(SystemExit, match="only 1000 policy steps"):
        su.read_stream(tmp_path / "short", 1200, WALKER)


def test_window_flags_as_the_replay_sets_them():
    stream = {k: np.zeros((300, *WALKER.obs.get(k, ()))) for k in WALKER.step_keys}
    stream["is_first"] = np.zeros(300, bool)
    stream["is_first"][[0, 120]] = True
    stream["is_last"] = np.zeros(300, bool)
    batch = su.window_batch(stream, np.array([100, 60, 0]), WALKER)
    assert batch["is_first"][:, 0].all()  # a window's first step starts its sequence
    assert batch["is_first"][0, 20] and batch["is_last"][0, 19]  # step 119 ends the episode step 120 starts
    assert batch["is_last"][1, 59] and batch["is_last"].sum() == 2
    assert not stream["is_first"][100]  # the stream itself is not changed


def test_each_batch_gets_the_context_as_it_stood_when_drawn():
    starts = np.array([[0, 5], [10, 20], [70, 5], [80, 0]])
    drawn_after = np.array([0, 0, 1, 2])  # prefetching: batch k drawn before update k - 1 ran
    ctx = su.Context(200, deter=2, stoch=1, classes=2, starts=starts, drawn_after=drawn_after)
    deter0, _ = ctx.before_update(0)
    assert (deter0 == 0).all()  # nothing written yet: zeros
    ctx.write(0, np.full((2, su.T, 2), 1.0), np.zeros((2, su.T, 1, 2)))  # update 0 trains steps 1-64 and 6-69
    deter1, _ = ctx.before_update(1)
    assert (deter1 == 0).all()  # batch 1 was drawn before update 0 wrote its latents
    ctx.write(1, np.full((2, su.T, 2), 2.0), np.zeros((2, su.T, 1, 2)))  # steps 11-74 and 21-84
    deter2, _ = ctx.before_update(2)
    assert deter2[:, 0].tolist() == [0.0, 1.0]  # drawn after update 0: step 70 unwritten then, step 5 its
    ctx.write(2, np.full((2, su.T, 2), 3.0), np.zeros((2, su.T, 1, 2)))  # steps 71-134 and 6-69
    deter3, _ = ctx.before_update(3)
    assert deter3[:, 0].tolist() == [2.0, 0.0]  # drawn after update 1 (not update 2's 3.0); step 0 never trained


def table_row(text: str, quantity: str, side: str) -> str:
    """The row of ``side`` in the table of ``quantity`` of compare's output."""
    lines = text.splitlines()
    start = lines.index(quantity)
    return next(line for line in lines[start:] if line.startswith(f"| {side} |"))


def test_compare_bins_each_side_by_the_env_steps_of_its_updates(tmp_path):
    # update k runs at policy step 1,088 + 2(k − 1), two env steps each
    assert su.env_steps(1, WALKER) == 2176 and su.env_steps(82, WALKER) == 2500 and su.env_steps(83, WALKER) == 2504
    probe = tmp_path / "stream_a"
    probe.mkdir()  # no meta.json: a probe made before --task, walker_walk's
    rows = [{"update": k, **{c: 0.0 for c in su.columns(WALKER)}} for k in range(1, 400)]
    for r in rows:
        r["imag/value"] = 1.0 if r["update"] <= 82 else 3.0 if su.env_steps(r["update"], WALKER) <= 3500 else 10.0
    su.write_rows(probe / "ours_seed0.csv", rows, WALKER)
    assert table_row(su.compare([probe]), "imag/value", "stream_a, ours_seed0") == \
        "| stream_a, ours_seed0 | 1 | 3 | 10 | – | – |"
    # a CSV from before the gradient norm was recorded: its column reads "–", the rest as before
    old = tmp_path / "stream_b"
    old.mkdir()
    with open(old / "ours_seed0.csv", "w") as f:
        f.write("update,imag/value\n1,2.0\n")
    text = su.compare([old])
    assert table_row(text, "grad_norm", "stream_b, ours_seed0") == "| stream_b, ours_seed0 | – | – | – | – | – |"
    assert table_row(text, "imag/value", "stream_b, ours_seed0") == "| stream_b, ours_seed0 | 2 | – | – | – | – |"
    # bins of one's own: (0, 3K], (3K, 4K]
    wide = su.compare([probe], (3000, 4000))
    assert "| stream, side | (0K, 3K] | (3K, 4K] |" in wide
    late = [su.env_steps(k, WALKER) for k in range(1, 400)]
    in_second = [1.0 if k <= 82 else 3.0 if x <= 3500 else 10.0 for k, x in zip(range(1, 400), late) if 3000 < x <= 4000]
    assert table_row(wide, "imag/value", "stream_a, ours_seed0") == \
        f"| stream_a, ours_seed0 | {np.mean([1.0] * 82 + [3.0] * (sum(x <= 3000 for x in late) - 82)):.4g} | {np.mean(in_second):.4g} |"


@pytest.mark.parametrize("case", ["debug_vector_discrete", "debug_proprio_continuous"])
def test_our_parameters_in_the_official_layout_map_back_to_ours(case):
    """export: our own initial draw as the official agent's arrays (for ``official --params``).
    Mapped back by to_ours (how load_official reads official arrays) it must be our draw value
    for value; arrays no parameter of ours maps to keep the reference's values."""
    import torch
    from test_official_equivalence import load, obs_space, official_params, settings

    from dreamer_bench.agent import ActSpace, Agent, make_config
    from dreamer_bench.agent.official import to_ours

    fx, meta = load(case)
    reference = official_params(fx)
    reference["opt/step/value"] = np.array(7, np.int32)  # an official array that is not a parameter
    base_off, fields = settings(meta)
    cfg = make_config(meta["preset"], overrides={**fields, "seed": 3}, off=base_off)
    agent = Agent(obs_space(meta), ActSpace(meta["act"] == "discrete", meta["actions"]), cfg)
    out = su.in_official_layout(agent, reference)
    assert set(out) == set(reference)
    assert all(out[k].shape == reference[k].shape and out[k].dtype == reference[k].dtype for k in out)
    back = to_ours(out, cfg, agent.obs_space, agent.act_space.discrete)
    state = agent.state_dict()
    assert back and all(np.array_equal(np.asarray(v), state[k].numpy()) for k, v in back.items())
    assert out["opt/step/value"] == 7
    # not the reference's values: a different draw (seed 3) where the reference is random
    kernel = next(k for k in reference if k.endswith("kernel") and np.std(reference[k]) > 0)
    assert not np.array_equal(out[kernel], reference[kernel])
    with torch.no_grad():  # a changed parameter of ours moves exactly its official array
        agent.encoder.mlp[0].linear.weight.add_(1.0)
    moved = su.in_official_layout(agent, reference)
    assert sorted(k for k in out if not np.array_equal(out[k], moved[k])) == ["enc/mlp0/kernel"]


def test_the_official_init_plugin_starts_our_agent_from_the_official_draw(tmp_path):
    """tools/official/official_init.py: at the first update, before any gradient, the official
    arrays replace every parameter of ours (the slow critic's too); after it, nothing."""
    import torch
    from test_official_equivalence import load, obs_space, official_params, settings

    from dreamer_bench.agent import ActSpace, Agent, make_config, plugins
    from dreamer_bench.agent.official import to_ours

    fx, meta = load("debug_proprio_continuous")
    arrays = official_params(fx)
    np.savez(tmp_path / "draw.npz", **arrays)
    plugins.load(str(pathlib.Path(su.__file__).with_name("official_init.py")))
    base_off, fields = settings(meta)

    def agent_from(path):
        cfg = make_config(meta["preset"], off=base_off, overrides={
            **fields, "plugins": ("official_init",), "plugin_settings": {"official_init.params": str(path)}})
        return Agent(obs_space(meta), ActSpace(False, meta["actions"]), cfg)

    agent = agent_from(tmp_path / "draw.npz")
    expected = to_ours(arrays, agent.cfg, agent.obs_space, False)
    assert any(k.startswith("slow_critic.") for k in expected)

    def same(name):
        return np.array_equal(agent.state_dict()[name].numpy(), np.asarray(expected[name]))

    assert not all(same(k) for k in expected)  # built with a draw of its own
    batch = {"reward": torch.zeros(2)}
    assert agent.plugins["official_init"].transform_batch(batch, agent) is batch
    assert all(same(k) for k in expected)
    with torch.no_grad():  # what an update would do; after one, the plug-in leaves the parameters be
        agent.encoder.mlp[0].linear.weight.add_(1.0)
    agent.updates = 1
    agent.plugins["official_init"].transform_batch(batch, agent)
    assert not same("encoder.mlp.0.linear.weight") and same("rssm.core.in_deter.linear.weight")
    with pytest.raises(plugins.PluginError, match="official_init.params=FILE.npz"):
        agent_from(tmp_path / "missing.npz")
