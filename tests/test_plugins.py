"""Users' techniques (dreamer_bench/agent/plugins.py): a plug-in in a file of the user's own is
listed, switched off, held to its isolation entry by the same helper as the built-in techniques,
and trained and ablated end to end; each extension point is checked against values computed
without it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import DISCRETE, VECTOR, make_batch
from dreamer_bench.agent import Agent, isolation, make_config, plugins
from dreamer_bench.agent.functional import symlog
from dreamer_bench.agent.rssm import BlockGRU

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The worked example of the README, exactly as it is printed there."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- plugin-example:start -->\n```python\n(.*?)```\n<!-- plugin-example:end -->", text, re.S)
    assert block, "the README lost its plug-in example"
    return block.group(1)


# Plug-ins for the other three extension points (each hook's contract is checked below).
HOOKS = '''
import torch
from torch import nn

from dreamer_bench.agent.plugins import Isolation, Plugin


class PlainGRU(Plugin):
    """Replaces the block GRU with torch's GRUCell on [stoch, action]."""
    name = "plain_gru"
    on = "torch.nn.GRUCell as the recurrent core"
    CORE = ["rssm.core.cell." + k for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    CORE += [f"rssm.core.in_{k}.{p}" for k in ("deter", "stoch", "action")
             for p in ("linear.weight", "linear.bias", "norm.scale")]
    CORE += ["rssm.core." + k for k in ("hidden.weight", "hidden.bias", "norm.scale", "gates.weight", "gates.bias")]
    isolation = Isolation(params=frozenset(CORE), losses=None)

    def core(self, cfg, act_dim):
        class Core(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.GRUCell(cfg.stoch + act_dim, cfg.deter)

            def forward(self, deter, stoch, action):
                return self.cell(torch.cat([stoch, action], -1).float(), deter.float())

        return Core()


class PlainGRU2(PlainGRU):
    name = "plain_gru2"


class SignReward(Plugin):
    """Trains on the sign of each reward (a batch transformation)."""
    name = "sign_reward"
    on = "rewards replaced by their sign before each update"
    isolation = Isolation(losses=frozenset({"rew", "repval"}))  # imagination reads the reward head, not the batch

    def transform_batch(self, batch, agent):
        return {**batch, "reward": torch.sign(batch["reward"])}


class CapReturns(Plugin):
    """Caps the imagined returns (a transformation of imagined returns); keeps what it saw."""
    name = "cap_returns"
    on = "imagined λ-returns capped at `cap`"
    settings = {"cap": 0.0}
    isolation = Isolation(losses=frozenset({"policy", "value", "repval"}))  # repval bootstraps from them

    def transform_returns(self, returns, agent):
        self.seen = returns.detach().clone()
        return returns.clamp(max=self.settings["cap"])
'''

# The same technique as SignReward, with an isolation entry that hides what it changes.
DISHONEST = '''
import torch
from dreamer_bench.agent.plugins import Plugin


class QuietSign(Plugin):
    name = "quiet_sign"
    on = "rewards replaced by their sign, declared as changing nothing"

    def transform_batch(self, batch, agent):
        return {**batch, "reward": torch.sign(batch["reward"])}
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The plug-in files, each written once per test session (a name is bound to one source)."""
    root = tmp_path_factory.mktemp("plugins")
    out = {}
    for name, text in (("next_reward", readme_example()), ("hooks", HOOKS), ("dishonest", DISHONEST)):
        (root / f"{name}.py").write_text(text)
        out[name] = root / f"{name}.py"
        plugins.load(str(out[name]))
    return out


def agent_with(*names, off=(), **overrides) -> Agent:
    return Agent(VECTOR, DISCRETE, make_config("debug", overrides={"plugins": names, **overrides}, off=off))


def test_the_readme_example_and_the_hooks_pass_the_isolation_helper(files):
    for name in ("next_reward", "plain_gru", "sign_reward", "cap_returns"):
        assert isolation.problems(name) == [], name


def test_the_isolation_helper_catches_a_plugin_that_hides_what_it_changes(files):
    found = isolation.problems("quiet_sign")
    assert found and "rew" in found[0], found


def test_the_loss_term_is_what_its_formula_gives_and_weighs_its_scale(files):
    agent = agent_with("next_reward", **{"next_reward.scale": 0.25, "warmup": 0})
    batch = make_batch(agent, seed=3)
    batch["reward"] = torch.randn(batch["reward"].shape) * 5
    batch["is_first"][:, 4] = True  # an episode starts inside the window
    head = {k: v.clone() for k, v in agent.plugins["next_reward"].head.state_dict().items()}
    metrics = agent.train(batch)
    # the posteriors of this update were written back into the batch: recompute the term from them
    feat = agent.rssm.features(batch["deter"][:, 1:], batch["stoch"][:, 1:])
    net = torch.nn.Sequential(torch.nn.Linear(agent.cfg.feat, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))
    net.load_state_dict(head)
    reward, first = batch["reward"][:, 1:], batch["is_first"][:, 1:].float()
    with torch.no_grad():
        pred = net(feat).squeeze(-1)
    err = (1 - first[:, 1:]) * (pred[:, :-1] - symlog(reward[:, 1:])) ** 2
    expected = err.sum() / reward.numel()  # the last step has no next reward in the window: 0
    assert metrics["loss/next_reward"] == pytest.approx(float(expected), rel=1e-5)
    scales = agent.loss_scales()
    assert scales["next_reward"] == 0.25
    total = sum(scales[k] * metrics[f"loss/{k}"] for k in scales)
    assert metrics["loss/total"] == pytest.approx(total, rel=1e-6)
    moved = [k for k, v in agent.plugins["next_reward"].head.state_dict().items() if not torch.equal(v, head[k])]
    assert moved  # its parameters train with the agent's


def test_a_batch_transformation_trains_on_the_batch_it_returns(files):
    with_it, without = agent_with("sign_reward"), agent_with()
    batch = make_batch(with_it, seed=4)
    batch["reward"] = torch.randn(batch["reward"].shape) * 3
    signed = {**batch, "reward": torch.sign(batch["reward"])}
    a, b = with_it.loss_terms(batch), without.loss_terms(signed)
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_returns_transformation_is_what_actor_and_critic_learn_from(files):
    agent = agent_with("cap_returns", **{"cap_returns.cap": -0.01})
    metrics = agent.train(make_batch(agent, seed=5))
    seen = agent.plugins["cap_returns"].seen
    assert seen.shape == (agent.cfg.batch_size * agent.cfg.batch_length, agent.cfg.horizon)
    assert (seen > -0.01).any()  # the cap acted on some return
    assert metrics["imag/return"] == pytest.approx(float(seen.clamp(max=-0.01).mean()), rel=1e-6, abs=1e-7)


def test_a_core_replacement_is_the_core_and_trains(files):
    agent = agent_with("plain_gru")
    assert isinstance(agent.rssm.core.cell, torch.nn.GRUCell)
    before = {k: v.detach().clone() for k, v in agent.named_parameters() if k.startswith("rssm.core.cell.")}
    for _ in range(2):  # the first update has learning rate 0 (the warm-up)
        metrics = agent.train(make_batch(agent, seed=6))
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    moved = [k for k, v in agent.named_parameters() if k in before and not torch.equal(v, before[k])]
    assert before and sorted(moved) == sorted(before)  # the replacement core is what the update trains
    assert not any(k.startswith("rssm.core.cell") for k in agent_with("plain_gru", off=("plain_gru",)).state_dict())
    assert isinstance(agent_with("plain_gru", off=("plain_gru",)).rssm.core, BlockGRU)
    with pytest.raises(plugins.PluginError, match="each replace the recurrent core"):
        agent_with("plain_gru", "plain_gru2")


def test_names_settings_and_identity(files):
    cfg = make_config("debug", overrides={"plugins": ("next_reward",)})
    assert cfg.variant == "full@next_reward" and cfg.on("next_reward")
    off = make_config("debug", overrides={"plugins": ("next_reward",)}, off=["next_reward"])
    assert off.variant == "off-next_reward@next_reward" and not off.on("next_reward")
    assert make_config("debug").variant == "full" and not make_config("debug").on("next_reward")
    d = cfg.to_dict()
    assert d["plugins"] == ["next_reward"] and len(d["plugin_sources"]["next_reward"]) == 16
    from dreamer_bench.results import identity_hash

    plain = make_config("debug").to_dict()
    assert identity_hash({}, d, "v") != identity_hash({}, plain, "v")
    # a run without plug-ins keeps the identity it had before plug-ins existed
    legacy = {k: v for k, v in plain.items() if k not in ("plugins", "plugin_settings")}
    assert identity_hash({}, legacy, "v") == identity_hash({}, plain, "v")
    with pytest.raises(ValueError, match="no setting 'units2'"):
        make_config("debug", overrides={"plugins": ("next_reward",), "next_reward.units2": 3})


def test_bad_plugins_are_one_line_before_anything_is_written(files, tmp_path, cli_here):
    (tmp_path / "empty.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "clash.py").write_text("from dreamer_bench.agent.plugins import Plugin\n\n\n"
                                       "class Mine(Plugin):\n    name = 'symlog'\n    on = 'x'\n")
    (tmp_path / "checked.py").write_text(  # a plug-in that checks its own setting (Plugin.check)
        "from pathlib import Path\n\nfrom dreamer_bench.agent.plugins import Plugin, PluginError\n\n\n"
        "class NeedsFile(Plugin):\n    name = 'needs_file'\n    on = 'reads a file'\n    settings = {'path': ''}\n\n"
        "    @classmethod\n    def check(cls, settings):\n        if not Path(settings['path']).is_file():\n"
        "            raise PluginError(f\"needs_file.path: no file {settings['path']!r}\")\n")
    results = tmp_path / "results"
    cases = [
        (("--plugin", tmp_path / "missing.py"), "does not exist"),
        (("--plugin", tmp_path / "empty.py"), "defines no subclass"),
        (("--plugin", tmp_path / "broken.py"), "failed to load: ModuleNotFoundError"),
        (("--plugin", tmp_path / "clash.py"), "is taken by a built-in technique"),
        (("--plugin", "no_such_plugin_module"), "no plug-in 'no_such_plugin_module'"),
        (("--plugin", files["next_reward"], "--set", "next_reward.units2=3"), "no setting 'units2'"),
        (("--plugin", files["next_reward"], "--set", "next_reward.scale=abc"), "cannot parse"),
        (("--off", "plain_gru", "--plugin", files["next_reward"]), "does not load"),
        (("--plugin", files["next_reward"], "--plugin", tmp_path / "checked.py",
          "--set", f"needs_file.path={tmp_path / 'nothing.txt'}"), "needs_file.path: no file"),
    ]
    for args, message in cases:
        code, out, err = cli_here("ablate", "--off", "next_reward", *args, "--results", results, "--dry-run")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not results.exists()


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, args)], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


def test_tricks_lists_a_plugin_from_a_file(files):
    out = cli("tricks", "--json", "--plugin", files["next_reward"])
    assert out.returncode == 0, out.stderr
    rows = {t["name"]: t for t in json.loads(out.stdout)}
    assert rows["next_reward"]["plugin"] == str(files["next_reward"])
    assert rows["next_reward"]["isolation"] == {"params": "plugins.next_reward.", "losses": ["next_reward"], "update": False}
    assert "symlog" in rows


def test_the_readme_example_runs_and_ablates_end_to_end(tmp_path):
    """The README's file, in a folder of the user's, trained with and without it by `ablate` in
    two worker processes; then report, predict, and a resume after the file was edited."""
    mine = tmp_path / "user"
    mine.mkdir()
    (mine / "next_reward.py").write_text(readme_example())
    suite = tmp_path / "plug.yaml"
    suite.write_text("name: plug\ndefaults: {train_ratio: 4, preset: debug, seeds: 1, envs: 1, set: {warmup: 5}}\n"
                     "tasks:\n  gym_CartPole-v1: {steps: 300}\n")
    results = tmp_path / "r"
    out = cli("ablate", "--plugin", "next_reward.py", "--off", "next_reward", "--suite", suite, "--results", results,
              "--jobs", "2", "--threads", "1", "--set", "next_reward.units=16", cwd=mine)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(p.name for p in (results / "plug").iterdir()) == ["full@next_reward", "off-next_reward@next_reward"]
    on = results / "plug" / "full@next_reward" / "gym_CartPole-v1" / "seed_0"
    config = json.loads((on / "config.json").read_text())
    assert config["plugins"] == {"next_reward": str(mine / "next_reward.py")}
    assert config["agent"]["plugin_settings"] == {"next_reward.units": 16}
    assert "loss/next_reward" in (on / "metrics.jsonl").read_text()
    off = results / "plug" / "off-next_reward@next_reward" / "gym_CartPole-v1" / "seed_0"
    assert "loss/next_reward" not in (off / "metrics.jsonl").read_text()
    # the report ablates it against the full agent with the same plug-in loaded
    rep = cli("report", results, "--out", tmp_path / "rep")
    assert rep.returncode == 0, rep.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "versus the full agent with its plug-ins (`full@next_reward`)" in text
    assert "off-next_reward@next_reward" in text
    # predict loads the plug-in from where the run recorded it, from any working directory
    pred = cli("predict", on, "--episodes", "1", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    assert (on / "predictions" / "predictions.json").exists()
    # an edited plug-in is another agent: the finished runs are not silently extended with it
    shutil.copy(mine / "next_reward.py", tmp_path / "kept.py")
    (mine / "next_reward.py").write_text(readme_example().replace("nn.SiLU()", "nn.Tanh()"))
    again = cli("ablate", "--plugin", "next_reward.py", "--off", "next_reward", "--suite", suite, "--results", results,
                "--set", "next_reward.units=16", cwd=mine)
    assert again.returncode == 2 and "plugin_sources" in again.stderr, again.stderr
    assert json.loads((on / "config.json").read_text()) == config


def test_an_installed_packages_entry_point_is_listed_and_usable(tmp_path):
    """A package that declares its plug-in in the entry-point group, installed on the path (a
    dist-info folder, as pip writes one): `tricks` lists it unasked, `--plugin NAME` loads it."""
    site = tmp_path / "site"
    (site / "lab_techniques").mkdir(parents=True)
    (site / "lab_techniques" / "__init__.py").write_text(readme_example().replace('"next_reward"', '"lab_reward"'))
    info = site / "lab_techniques-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-techniques\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dreamer_bench.techniques]\nlab_reward = lab_techniques:NextReward\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    run = lambda *a: subprocess.run([sys.executable, "-m", "dreamer_bench", *map(str, a)], capture_output=True,  # noqa: E731
                                    text=True, timeout=300, env=env, cwd=tmp_path)
    listed = run("tricks", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {t["name"]: t for t in json.loads(listed.stdout)}
    assert rows["lab_reward"]["plugin"] == "lab_reward"
    plan = run("ablate", "--plugin", "lab_reward", "--off", "lab_reward", "--tasks", "gym_CartPole-v1", "--seeds", "1",
               "--results", tmp_path / "r", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "off-lab_reward@lab_reward" in plan.stdout and "full@lab_reward" in plan.stdout
