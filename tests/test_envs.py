"""The environment adapters, on the real environments."""

import subprocess
import sys

import numpy as np
import pytest

from dreamer_bench.envs import EnvError, EnvGroup, family, make_env
from dreamer_bench.envs.base import resize_image
from dreamer_bench.envs.crafter_env import ACHIEVEMENTS


def run_until_last(env, policy, limit=100_000):
    tr = env.step(None)
    steps = 0
    while not tr.obs["is_last"]:
        tr = env.step(policy())
        steps += 1
        assert steps < limit
    return tr, steps


# ---------------------------------------------------------------- Atari

def raw_pong():
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    return gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0, full_action_space=False)


def test_atari_shapes_minimal_action_set_and_first_frame():
    env = make_env("atari_pong", seed=3)
    assert env.obs_space == {"image": (64, 64, 3)}
    ale = env.env.unwrapped.ale
    assert env.act_space.discrete and env.act_space.size == len(ale.getMinimalActionSet()) == 6 < 18
    tr = env.step(None)
    assert tr.obs["is_first"] and tr.obs["reward"] == 0 and tr.frames == 4
    assert tr.obs["image"].shape == (64, 64, 3) and tr.obs["image"].dtype == np.uint8
    assert tr.obs["image"].mean() > 10  # a real frame, not black
    assert np.array_equal(tr.obs["image"], resize_image(ale.getScreenRGB()))
    assert "lives" not in tr.obs  # no life-loss signal


def test_atari_action_repeat_max_pools_the_last_two_frames():
    env = make_env("atari_pong", seed=0, noops=0)
    raw = raw_pong()
    first = env.step(None).obs["image"]
    frame, _ = raw.reset(seed=0)
    assert np.array_equal(first, resize_image(frame))
    rng = np.random.default_rng(0)
    for _ in range(40):
        action = int(rng.integers(6))
        frames, total = [], 0.0
        for _ in range(4):
            frame, reward, *_ = raw.step(action)
            frames.append(frame)
            total += reward
        tr = env.step(action)
        assert np.array_equal(tr.obs["image"], resize_image(np.maximum(frames[2], frames[3])))
        assert tr.obs["reward"] == total


def test_atari_noops_are_random_in_zero_to_thirty_and_not_counted():
    env = make_env("atari_pong", seed=1, noops=30)
    counts = []
    for _ in range(12):
        env._reset()
        counts.append(env.env.unwrapped.ale.getEpisodeFrameNumber())
    assert all(0 <= c <= 30 for c in counts) and len(set(counts)) > 3
    assert make_env("atari_pong", seed=1, noops=30).step(None).frames == 4  # the reset step only


def test_atari_frame_cap_is_a_truncation_and_the_next_episode_starts_on_a_real_frame():
    env = make_env("atari_pong", seed=0, frame_cap=400, noops=0)
    tr, steps = run_until_last(env, lambda: 0)
    assert tr.obs["is_last"] and not tr.obs["is_terminal"]
    assert steps == 100  # 400 frames at 4 per policy step
    first = env.step(0)
    assert first.obs["is_first"]
    assert np.array_equal(first.obs["image"], resize_image(env.env.unwrapped.ale.getScreenRGB()))
    assert not np.array_equal(first.obs["image"], tr.obs["image"])


# ---------------------------------------------------------------- DMC

def test_dmc_proprio_gives_one_float32_vector_per_key_and_time_limit_is_truncation():
    from dm_control import suite

    env = make_env("dmc_walker_walk", seed=4, action_repeat=2)
    raw = suite.load("walker", "walk", task_kwargs={"random": 4})
    ts = raw.reset()
    tr = env.step(None)
    # as the official agent sees them: one key each, the scalar height as shape (1,)
    assert env.obs_space == {"height": (1,), "orientations": (14,), "velocity": (9,)}
    assert not env.act_space.discrete and env.act_space.size == 6
    for key in ("height", "orientations", "velocity"):
        assert tr.obs[key].dtype == np.float32
        np.testing.assert_array_equal(tr.obs[key], np.asarray(ts.observation[key], np.float32).reshape(-1))
    tr, steps = run_until_last(make_env("dmc_walker_walk", seed=4, action_repeat=2), lambda: np.zeros(6))
    assert steps == 500 and not tr.obs["is_terminal"]  # 1000 env steps at action repeat 2


def test_dmc_vision_renders_64x64_images():
    env = make_env("dmc_cartpole_swingup", seed=0, obs="image")
    first = env.step(None).obs["image"]
    second = env.step(np.ones(1)).obs["image"]
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8 and first.std() > 5
    assert not np.array_equal(first, second)
    assert make_env("dmc_quadruped_walk", seed=0, obs="image").camera == 2


def test_atari_games_are_the_roms_gymnasium_has_an_environment_for():
    # a name whose ROM id does not capitalise into the environment's: tic_tac_toe_3d → TicTacToe3D
    env = make_env("atari_tic_tac_toe_3d")
    env.close()
    # ale-py ships a few ROMs without an ALE/…-v5 environment: refused, and not offered as valid
    with pytest.raises(EnvError, match="unknown Atari game 'combat'; valid: adventure") as info:
        make_env("atari_combat")
    assert "combat" not in str(info.value).split("valid: ")[1].split(", ")


def test_dmc_accepts_the_2023_cup_catch_name_and_rejects_unknown_tasks():
    from dm_control import suite

    env = make_env("dmc_cup_catch", seed=3)  # the 2023 files' name of ball_in_cup catch
    raw = suite.load("ball_in_cup", "catch", task_kwargs={"random": 3}).reset()
    assert env.obs_space == {k: v.shape for k, v in raw.observation.items()} == {"position": (4,), "velocity": (4,)}
    first = env.step(None).obs
    for key, value in raw.observation.items():
        np.testing.assert_array_equal(first[key], value.astype(np.float32))
    with pytest.raises(EnvError, match="walker_walk"):
        make_env("dmc_walker_fly")


# ---------------------------------------------------------------- Crafter

def test_crafter_records_achievements_at_episode_end():
    env = make_env("crafter", seed=0, length=60)
    rng = np.random.default_rng(0)
    tr = env.step(None)
    assert env.obs_space == {"image": (64, 64, 3)} and env.act_space.size == 17
    episode = None
    for _ in range(61):
        tr = env.step(int(rng.integers(17)))
        assert not tr.episode or tr.obs["is_last"]
        if tr.obs["is_last"]:
            episode = tr.episode
            break
    assert episode is not None and set(episode["achievements"]) == set(ACHIEVEMENTS) and len(ACHIEVEMENTS) == 22
    assert all(isinstance(v, int) and v >= 0 for v in episode["achievements"].values())


def test_crafter_repeats_its_episodes_for_a_seed():
    """Crafter itself does not (its creatures sit in sets iterated in address order: three
    crafter.Env(seed=0) given the same actions ended after 126, 140 and 154 steps); the adapter's
    world keeps them in insertion order. Two episodes of 400 random actions, three environments."""
    actions = np.random.default_rng(0).integers(17, size=800).tolist()

    def play():
        env = make_env("crafter", seed=0, length=400)
        trace = [env.step(None).obs["image"].sum()]
        for a in actions:
            tr = env.step(a)
            trace.append(int(tr.obs["image"].sum()))
            if tr.episode:
                trace.append(tuple(sorted(tr.episode["achievements"].items())))
        env.close()
        return trace

    first = play()
    assert sum(isinstance(x, tuple) for x in first) >= 2  # both episodes ended inside the actions
    assert play() == first and play() == first


# ---------------------------------------------------------------- classic control and custom

def test_cartpole_falling_is_a_terminal():
    env = make_env("gym_CartPole-v1", seed=0)
    tr, steps = run_until_last(env, lambda: 0)
    assert tr.obs["is_terminal"] and steps < 100
    assert env.obs_space == {"vector": (4,)} and env.act_space.discrete and env.act_space.size == 2


def test_pendulum_actions_are_rescaled_and_its_time_limit_is_a_truncation():
    env = make_env("gym_Pendulum-v1", seed=0)
    env.step(None)
    for action, torque in ((1.0, 2.0), (-1.0, -2.0), (0.0, 0.0), (0.5, 1.0), (7.0, 2.0)):
        env.step(np.array([action]))
        assert env.env.unwrapped.last_u == pytest.approx(torque)
    tr, steps = run_until_last(make_env("gym_Pendulum-v1", seed=0), lambda: np.zeros(1))
    assert steps == 200
    assert not tr.obs["is_terminal"]


def test_custom_environment_by_entry_point():
    env = make_env("custom_env:CountingEnv", seed=0, kwargs={"target": 3})
    assert family("custom_env:CountingEnv") == "gym"
    tr, steps = run_until_last(env, lambda: 1)
    assert steps == 3 and tr.obs["is_terminal"] and tr.obs["vector"].tolist() == [3.0, 3.0]


@pytest.mark.parametrize("entry, needle", [
    ("no_such_module_xyz:Env", "cannot import 'no_such_module_xyz'"),
    ("custom_env:Missing", "has no attribute 'Missing'"),
    ("custom_env:Broken", "always fails"),
    ("custom_env", "belongs to no family"),
])
def test_custom_entry_point_failures_are_one_line(entry, needle):
    with pytest.raises(EnvError) as e:
        make_env(entry)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_environment_setting_names_the_valid_ones():
    with pytest.raises(EnvError, match="unknown environment setting.*valid: action_repeat, noops"):
        make_env("atari_pong", stiky=0.25)


def test_missing_family_package_names_the_extra():
    code = ("import sys; sys.modules['ale_py'] = None\n"
            "from dreamer_bench.envs import make_env, EnvError\n"
            "try:\n    make_env('atari_pong')\nexcept EnvError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'dreamer-bench[atari]'" in out.stdout, out


# ---------------------------------------------------------------- parallel environments

def test_parallel_group_matches_serial_stepping():
    seeds = [0, 1]
    serial = EnvGroup("gym_CartPole-v1", seeds, parallel=False)
    parallel = EnvGroup("gym_CartPole-v1", seeds, parallel=True)
    try:
        assert parallel.parallel and len(parallel) == 2 and parallel.obs_space == serial.obs_space
        rng = np.random.default_rng(0)
        for _ in range(60):
            actions = [int(a) for a in rng.integers(0, 2, size=2)]
            a, b = serial.step(actions), parallel.step(actions)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x.obs["vector"], y.obs["vector"])
                assert x.obs["is_last"] == y.obs["is_last"]
        assert not np.array_equal(a[0].obs["vector"], a[1].obs["vector"])  # different seeds
    finally:
        serial.close()
        parallel.close()


def test_parallel_group_reports_a_worker_that_fails_to_build():
    with pytest.raises(EnvError, match="always fails"):
        EnvGroup("custom_env:Broken", [0, 1], parallel=True)


def _frames_of_a_parallel_group() -> tuple[bool, np.ndarray]:
    group = EnvGroup("gym_CartPole-v1", [0, 1], parallel=True)
    try:
        return group.parallel, np.stack([np.stack([t.obs["vector"] for t in group.step([0, 1])]) for _ in range(20)])
    finally:
        group.close()


def test_parallel_group_in_a_local_grids_worker_process():
    """A local grid's runs train in loky worker processes. Environment processes started there the
    standard way were told to use loky's start method, did not know it, and died: every run with
    envs > 1 on a local grid of more than one job failed ("an environment process died")."""
    import joblib

    (parallel, frames), = joblib.Parallel(n_jobs=2, backend="loky")([joblib.delayed(_frames_of_a_parallel_group)()])
    serial = EnvGroup("gym_CartPole-v1", [0, 1], parallel=False)
    try:
        expected = np.stack([np.stack([t.obs["vector"] for t in serial.step([0, 1])]) for _ in range(20)])
    finally:
        serial.close()
    assert parallel
    np.testing.assert_array_equal(frames, expected)


def _close_a_group_with_a_stuck_process() -> tuple[float, list[bool]]:
    import os
    import signal
    import time

    group = EnvGroup("gym_CartPole-v1", [0, 1], parallel=True)
    group.step([0, 1])
    procs = list(group.procs)
    os.kill(procs[0].pid, signal.SIGSTOP)  # it can no longer answer "close"
    start = time.time()
    group.close()
    return time.time() - start, [p.is_alive() for p in procs]


def test_closing_a_group_in_a_grids_worker_kills_a_process_that_does_not_exit():
    """Environment processes ignore SIGTERM (a stop is their run's to act on), so close() kills one
    that does not exit; in a loky worker, whose process objects have no kill(), too."""
    import joblib

    (seconds, alive), = joblib.Parallel(n_jobs=2, backend="loky")([joblib.delayed(_close_a_group_with_a_stuck_process)()])
    assert not any(alive) and seconds < 30


def test_a_group_never_closed_does_not_hang_the_interpreter_at_exit(tmp_path):
    """multiprocessing ends daemonic children at exit with SIGTERM and waits for them: environment
    processes ignore it, so the package kills those of groups never closed first."""
    script = tmp_path / "leave_open.py"
    script.write_text("from dreamer_bench.envs import EnvGroup\n"
                      "if __name__ == '__main__':\n"
                      "    group = EnvGroup('gym_CartPole-v1', [0, 1], parallel=True)\n"
                      "    group.step([0, 1])\n"
                      "    print(' '.join(str(p.pid) for p in group.procs), flush=True)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    from dreamer_bench.runner.lock import _pid_alive

    assert not any(_pid_alive(int(pid)) for pid in out.stdout.split())


def _step_group_in_this_process(queue) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        group = EnvGroup("gym_CartPole-v1", [0, 1], parallel=True)
    try:
        frames = [np.stack([t.obs["vector"] for t in group.step([0, 1])]) for _ in range(20)]
        queue.put((group.parallel, [str(w.message) for w in caught], np.stack(frames)))
    finally:
        group.close()


def test_parallel_group_in_a_daemonic_process_steps_in_process_with_a_warning():
    """A daemonic process (a Dask worker under a nanny) may not start children: the group must
    still step its environments, the same ones, and say why it does not use processes."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_step_group_in_this_process, args=(queue,), daemon=True)
    proc.start()
    parallel, warnings, frames = queue.get(timeout=60)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert not parallel and any("daemonic" in w and "--no-nanny" in w for w in warnings)
    serial = EnvGroup("gym_CartPole-v1", [0, 1], parallel=False)
    try:
        expected = np.stack([np.stack([t.obs["vector"] for t in serial.step([0, 1])]) for _ in range(20)])
    finally:
        serial.close()
    np.testing.assert_array_equal(frames, expected)


def test_grayscale_frames_are_images_with_their_channel_not_vectors():
    from dreamer_bench.agent import Agent, make_config
    from dreamer_bench.envs import make_env

    env = make_env("custom_env:Grayscale")
    assert env.obs_space == {"image": (64, 64, 1)}
    first = env.step(None).obs["image"]
    assert first.shape == (64, 64, 1) and first.dtype == np.uint8
    # the left half bright, as in the 84-pixel frame, after the bilinear resize
    assert first[:, :30].min() == 200 and first[:, 34:].max() == 0
    agent = Agent(env.obs_space, env.act_space, make_config("debug"))
    assert agent.encoder.image_keys == ["image"]
    env.close()
