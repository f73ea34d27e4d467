"""A grid executed by a real Dask scheduler and two workers started on 127.0.0.1."""

import json
import os
import socket
import subprocess
import signal
import sys
import time

import pytest

pytest.importorskip("distributed")

from dreamer_bench.results import read_jsonl, read_status  # noqa: E402
from test_runner import ENV, cli, run_dir, write_suite  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(where, scheduler_env=None, worker_env=None):
    """A real scheduler and two nanny-supervised workers on 127.0.0.1 (a killed worker is
    restarted by its nanny). Returns (address, processes)."""
    where.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env={**ENV, **(scheduler_env or {})},
                              cwd=where, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for i in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                                       "--local-directory", str(where / f"w{i}")], env={**ENV, **(worker_env or {})},
                                      cwd=where, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    deadline = time.time() + 60
    while True:
        try:
            with Client(address, timeout="5s") as client:
                client.wait_for_workers(2, timeout=max(1, deadline - time.time()))
            break
        except Exception:
            if time.time() > deadline:
                stop_cluster(procs)
                raise
            time.sleep(0.5)
    return address, procs


def stop_cluster(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture
def cluster(tmp_path):
    address, procs = start_cluster(tmp_path)
    yield address
    stop_cluster(procs)


def consistent(d, budget):
    """A finished run's files agree: done, episodes in order without duplicates, the score file
    holding exactly those episodes."""
    status = json.loads((d / "status.json").read_text())
    episodes = read_jsonl(d / "episodes.jsonl")
    xs = [e["env_steps"] for e in episodes]
    scores = json.loads((d / "scores.json").read_text())[0]
    assert status["state"] == "done" and status["env_steps"] >= budget and status["episodes"] == len(episodes)
    assert xs and xs == sorted(set(xs)) and scores["xs"] == xs and scores["ys"] == [e["return"] for e in episodes]
    assert not (d / "run.lock").exists()
    return status


def test_grid_runs_on_dask_workers_with_each_task_s_seeds_packed(tmp_path):
    import psutil

    address, procs = start_cluster(tmp_path)
    try:
        suite = tmp_path / "pair.yaml"
        suite.write_text("name: pair\ndefaults: {steps: 800, train_ratio: 8, preset: debug, set: {warmup: 5}}\n"
                         "tasks:\n  gym_CartPole-v1: {}\n  gym_Pendulum-v1: {}\n")
        out = cli("run", "--suite", suite, "--seeds", "2", "--results", tmp_path / "r", "--backend", "dask",
                  "--address", address, "--pack", "2")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "packing: 4 of 4 runs in 2 process(es)" in out.stdout, out.stdout
        # the processes of the two workers (each a nanny and the worker it started), not the client's
        workers = {p.pid for nanny in procs[1:] for p in [psutil.Process(nanny.pid),
                                                         *psutil.Process(nanny.pid).children(recursive=True)]}
    finally:
        stop_cluster(procs)
    pids = {}
    for task in ("gym_CartPole-v1", "gym_Pendulum-v1"):
        for seed in (0, 1):
            d = tmp_path / "r" / "pair" / "full" / task / f"seed_{seed}"
            consistent(d, 800)
            pids.setdefault(task, set()).add(json.loads((d / "status.json").read_text())["pid"])
    # each task's two seeds trained together in one Dask task, in a worker's process
    assert [len(p) for p in pids.values()] == [1, 1] and set.union(*pids.values()) <= workers, (pids, workers)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes_from_its_checkpoint(tmp_path):
    # the first worker to finish a checkpoint is SIGKILLed right after it; its nanny restarts it,
    # the scheduler hands the run to a worker again, and the run resumes from that checkpoint
    marker = tmp_path / "killed-once"
    address, procs = start_cluster(tmp_path, worker_env={"DREAMER_BENCH_FAULT": "after-checkpoint",
                                                         "DREAMER_BENCH_FAULT_ONCE": str(marker)})
    try:
        suite = write_suite(tmp_path / "tiny.yaml", steps=1500)
        out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--backend", "dask", "--address", address,
                  "--checkpoint-minutes", "0.02", timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        assert marker.exists(), "no worker was killed"
        status = consistent(run_dir(tmp_path / "r"), 1500)
        assert status["attempts"] == 2  # the killed attempt and the resumed one
    finally:
        stop_cluster(procs)


def _foreign_lock(d, age: float):
    """run.lock as a worker on another host left it (or holds it), its heartbeat ``age`` s old."""
    d.mkdir(parents=True)
    lock = d / "run.lock"
    lock.write_text(json.dumps({"host": "another-host", "pid": 4242, "since": time.time() - age, "token": "t"}))
    os.utime(lock, (time.time() - age, time.time() - age))
    return lock


@pytest.mark.parametrize("pack", [1, 2], ids=["alone", "packed"])
def test_a_run_whose_worker_died_on_another_host_is_resumed_once_its_lock_goes_stale(tmp_path, cluster, pack):
    """The scheduler hands the run of a dead worker to another one at once; from another host the
    dead owner's lock is stale only after 600 s without a heartbeat. Once, the run was then
    reported busy and the grid exited 1; now it waits for the lock to show whether its owner lives.
    Here the heartbeat stopped 575 s ago, so the run takes over ~25 s later: time enough for the
    client and a worker to start, so that the worker meets the lock while it is fresh and has to
    wait. Packed: seed 0's lock is the dead one, and the group (seeds 0 and 1) starts once it has
    gone stale."""
    suite = write_suite(tmp_path / "tiny.yaml", steps=600)
    stale_at = _foreign_lock(run_dir(tmp_path / "r"), age=575).stat().st_mtime + 600
    out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--backend", "dask", "--address", cluster,
              "--seeds", str(pack), "--pack", str(pack), timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for seed in range(pack):
        consistent(run_dir(tmp_path / "r", seed=seed), 600)
        (start,) = read_jsonl(run_dir(tmp_path / "r", seed=seed) / "starts.jsonl")
        assert start["time"] >= stale_at - 1  # it trained only once the lock had gone stale


def test_a_run_whose_owner_on_another_host_lives_is_reported_busy_at_once(tmp_path, cluster):
    """A heartbeat that moves means a live owner: busy, and said within seconds, not after the
    lock's 600 s."""
    import threading

    suite = write_suite(tmp_path / "tiny.yaml", steps=600)
    lock = _foreign_lock(run_dir(tmp_path / "r"), age=0)
    alive = threading.Event()
    alive.set()

    def heartbeat():
        while alive.is_set():
            os.utime(lock)
            time.sleep(0.5)

    beating = threading.Thread(target=heartbeat, daemon=True)
    beating.start()
    try:
        out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--backend", "dask", "--address", cluster,
                  timeout=120)
    finally:
        alive.clear()
        beating.join()
    assert out.returncode == 1 and "skipped (busy)" in out.stdout and "another-host" in out.stdout, out.stdout
    assert not (run_dir(tmp_path / "r") / "checkpoint").exists()


def test_a_run_whose_workers_keep_dying_fails_alone_and_the_grid_goes_on(tmp_path):
    # Once, the client waited forever after the scheduler gave up on a task (KilledWorker).
    address, procs = start_cluster(tmp_path, scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    try:
        suite = write_suite(tmp_path / "two.yaml", steps=600,
                            tasks="gym_CartPole-v1: {}\n  custom_env:KillsItsProcess: {}")
        out = cli("run", "--suite", suite, "--results", tmp_path / "r", "--backend", "dask", "--address", address,
                  timeout=300)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        killer = run_dir(tmp_path / "r", task="custom_env__KillsItsProcess")
        line = next(l for l in out.stderr.splitlines() if "custom_env:KillsItsProcess" in l)
        assert "KilledWorker" in line and "failed" in line, out.stderr
        status = json.loads((killer / "status.json").read_text())
        assert status["state"] == "failed" and "KilledWorker" in status["error"]
        consistent(run_dir(tmp_path / "r"), 600)  # the other run of the grid finished
        shown = cli("status", tmp_path / "r")
        assert "1 done" in shown.stdout and "1 failed" in shown.stdout, shown.stdout
    finally:
        stop_cluster(procs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_stopping_the_client_makes_its_runs_on_the_workers_checkpoint_and_stop(tmp_path, sig):
    # Once, SIGTERM or Ctrl-C of the client left its runs training on the workers. A killed
    # client cannot say stop: the scheduler lets go of its tasks and the runs notice that.
    # With SIGTERM the two runs are one task's seeds packed together (runner/pack.py), else two tasks.
    # The workers hold the runs at 300 env steps until the stop (hold_point), so that a fast
    # machine cannot finish them first; a cluster without the hold resumes them.
    suite = tmp_path / "pair.yaml"
    packed = sig == signal.SIGTERM
    suite.write_text("name: pair\ndefaults: {steps: 2500, train_ratio: 8, preset: debug, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n" + ("" if packed else "  gym_Acrobot-v1: {}\n"))

    def args(address):
        return ["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--backend", "dask", "--address",
                address, "--checkpoint-minutes", "60", *(["--seeds", "2", "--pack", "2"] if packed else [])]

    dirs = ([tmp_path / "r/pair/full/gym_CartPole-v1" / f"seed_{s}" for s in (0, 1)] if packed else
            [tmp_path / "r/pair/full" / t / "seed_0" for t in ("gym_CartPole-v1", "gym_Acrobot-v1")])
    address, procs = start_cluster(tmp_path / "held", worker_env={"DREAMER_BENCH_HOLD": "300"})
    try:
        client = subprocess.Popen([sys.executable, "-m", "dreamer_bench", *args(address)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.time() + 120
        while time.time() < deadline and not all(read_status(d).get("env_steps", 0) >= 300 for d in dirs):
            time.sleep(0.2)
        assert all(read_status(d).get("env_steps", 0) >= 300 for d in dirs), "the runs did not train to the hold"
        client.send_signal(sig)
        _, stderr = client.communicate(timeout=180)
        if sig == signal.SIGKILL:
            deadline = time.time() + 60
            while time.time() < deadline and not all(read_status(d).get("state") == "pending" for d in dirs):
                time.sleep(0.2)
        else:
            assert client.returncode == 130 and stderr.strip().splitlines()[-1] == "interrupted", stderr[-800:]
            assert "Traceback" not in stderr and "checkpoint and stop" in stderr
        for d in dirs:  # stopped, not held: pending, its lock released
            status = json.loads((d / "status.json").read_text())
            assert status["state"] == "pending" and status["error"].startswith("stopped"), status
            assert status["env_steps"] == 300 and not (d / "run.lock").exists()  # where it was held
            loop = json.loads(next((d / "checkpoint").glob("ckpt-*")).joinpath("loop.json").read_text())
            assert not loop["final"] and loop["env_steps"] == status["env_steps"]  # checkpointed where it stopped
        if packed:  # both seeds trained in one Dask task, whose stop request both heard
            assert len({json.loads((d / "status.json").read_text())["pid"] for d in dirs}) == 1
    finally:
        stop_cluster(procs)
    address, procs = start_cluster(tmp_path / "plain")
    try:
        out = cli(*args(address))
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        stop_cluster(procs)
    for d in dirs:
        assert consistent(d, 2500)["attempts"] == 2
