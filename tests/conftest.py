"""Shared helpers: small agents of the debug preset on the observation/action kinds."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports dm_control
# The bench cache (dry-run estimates, --pack auto) of each test process is its own, started empty:
# figures a user measured on this machine must not change what the tests' grids do.
_CACHE = tempfile.mkdtemp(prefix="dreamer-bench-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

import pytest
import torch

from dreamer_bench.agent import ActSpace, Agent, make_config
from dreamer_bench.agent.synthetic import random_batch

# one thread per pytest-xdist worker (the README's test command runs one worker per core), two alone
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))

VECTOR = {"vector": (5,)}
IMAGE = {"image": (64, 64, 3)}
BOTH = {"image": (64, 64, 3), "vector": (3,)}
DISCRETE = ActSpace(True, 3)
CONTINUOUS = ActSpace(False, 2)


def make_agent(obs=VECTOR, act=DISCRETE, off=(), preset="debug", **overrides) -> Agent:
    return Agent(obs, act, make_config(preset, overrides=overrides, off=off))


def make_batch(agent: Agent, seed: int = 0, **kwargs) -> dict:
    return random_batch(agent.obs_space, agent.act_space, agent.cfg, seed=seed, **kwargs)


@pytest.fixture
def agent_and_batch():
    agent = make_agent()
    return agent, make_batch(agent)


@pytest.fixture
def cli_here(monkeypatch, capsys):
    """The real command line (``dreamer_bench.cli.main``) in this process, for inputs refused
    before any work: no interpreter start and no torch import per call. Returns
    (exit code, stdout, stderr)."""
    import signal
    import sys

    from dreamer_bench import cli

    def call(*args):
        monkeypatch.setattr(sys, "argv", ["dreamer-bench", *map(str, args)])
        old = signal.getsignal(signal.SIGTERM)
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            signal.signal(signal.SIGTERM, old)
        out = capsys.readouterr()
        return _Result(args, code, out.out, out.err)

    return call


class _Result(subprocess.CompletedProcess):
    """What a subprocess call would give (returncode, stdout, stderr); also unpacks as that triple."""

    def __iter__(self):
        return iter((self.returncode, self.stdout, self.stderr))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n`, `--dist loadgroup`), the tests of a module that use its
    module-scoped fixtures (a trained grid, say) run on one worker, so that each is built once;
    all others spread freely."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(name for name, defs in info.name2fixturedefs.items()  # ours, not pytest's (baseid "")
                        if defs and defs[-1].baseid and defs[-1].scope in ("module", "package", "session"))
        if shared:  # one group per module: its tests that share any of its fixtures build each once
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
