"""A grid executed by a real Dask scheduler and two workers started on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")

from test_runner import ENV, cli  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], env=ENV, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for i in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                                       "--local-directory", str(tmp_path / f"w{i}")], env=ENV, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    deadline = time.time() + 60
    while True:
        try:
            with Client(address, timeout="5s") as client:
                client.wait_for_workers(2, timeout=max(1, deadline - time.time()))
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    yield address
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def test_grid_runs_on_dask_workers(tmp_path, cluster):
    suite = tmp_path / "pair.yaml"
    suite.write_text("name: pair\ndefaults: {steps: 800, train_ratio: 8, preset: debug, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n  gym_Pendulum-v1: {}\n")
    out = cli("run", "--suite", suite, "--seeds", "2", "--results", tmp_path / "r", "--backend", "dask",
              "--address", cluster)
    assert out.returncode == 0, out.stdout + out.stderr
    pids = set()
    for task in ("gym_CartPole-v1", "gym_Pendulum-v1"):
        for seed in (0, 1):
            d = tmp_path / "r" / "pair" / "full" / task / f"seed_{seed}"
            status = json.loads((d / "status.json").read_text())
            assert status["state"] == "done" and status["updates"] > 0
            pids.add(status["pid"])
            assert (d / "episodes.jsonl").read_text()
    assert len(pids) == 2 and os.getpid() not in pids  # trained by the two workers, not here
