"""The registry, presets, overrides and the command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dreamer_bench.agent import PRESETS, ConfigError, make_config, techniques, variant_name
from dreamer_bench.agent.config import AgentConfig

PACKAGE = Path(__file__).resolve().parents[1] / "dreamer_bench"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *args], capture_output=True, text=True)


def test_registry_techniques_are_all_on_by_default_and_each_entry_is_complete():
    names = list(techniques.NAMES)  # the registry is the only list (a new technique is one entry)
    assert names and len(set(names)) == len(names)
    cfg = AgentConfig()
    assert cfg.off == () and all(cfg.on(n) for n in names)
    for t in techniques.TECHNIQUES:
        assert t.on and t.off and t.on != t.off and (PACKAGE / t.where).is_file()


def test_any_combination_can_be_switched_off_and_names_the_variant():
    cfg = make_config("debug", off=["kl_balance", "free_bits", "kl_balance"])
    assert cfg.off == ("free_bits", "kl_balance")
    assert not cfg.on("free_bits") and cfg.on("symlog")
    assert cfg.variant == "off-free_bits+kl_balance" == variant_name(["kl_balance", "free_bits"])
    assert variant_name([]) == "full"


def test_unknown_technique_lists_the_valid_names():
    with pytest.raises(techniques.UnknownTechnique) as e:
        make_config("debug", off=["symlogg"])
    assert "symlogg" in str(e.value) and all(n in str(e.value) for n in techniques.NAMES)


def test_presets_match_the_official_table():
    table = {"size1m": (512, 64, 4, 4, 64), "size12m": (2048, 256, 16, 16, 256), "size25m": (3072, 384, 24, 24, 384),
             "size50m": (4096, 512, 32, 32, 512), "size100m": (6144, 768, 48, 48, 768),
             "size200m": (8192, 1024, 64, 64, 1024), "size400m": (12288, 1536, 96, 96, 1536)}
    for name, (deter, hidden, classes, depth, units) in table.items():
        cfg = make_config(name)
        assert (cfg.deter, cfg.hidden, cfg.classes, cfg.depth, cfg.units) == (deter, hidden, classes, depth, units)
        assert (cfg.latents, cfg.blocks, cfg.batch_size, cfg.batch_length) == (32, 8, 16, 64)
    assert "debug" in PRESETS


def test_every_field_can_be_overridden_by_name_and_bad_values_are_refused():
    cfg = make_config("size12m", overrides={"units": "128", "lr": "1e-4", "compile": "true", "precision": "bf16"})
    assert (cfg.units, cfg.lr, cfg.compile, cfg.precision) == (128, 1e-4, True, "bf16")
    with pytest.raises(ConfigError, match="unknown config field 'unitz'"):
        make_config("debug", overrides={"unitz": 3})
    with pytest.raises(ConfigError, match="cannot parse units"):
        make_config("debug", overrides={"units": "many"})
    with pytest.raises(ConfigError, match="unknown size 'size3m'.*size1m"):
        make_config("size3m")
    with pytest.raises(ConfigError, match="precision"):
        make_config("debug", overrides={"precision": "fp8"})


def test_cli_tricks_lists_all_fourteen():
    out = cli("tricks", "--json")
    assert out.returncode == 0
    assert [t["name"] for t in json.loads(out.stdout)] == list(techniques.NAMES)
    table = cli("tricks")
    assert table.returncode == 0 and all(n in table.stdout for n in techniques.NAMES)


def test_cli_unknown_technique_is_one_line_and_exit_two(cli_here):
    out = cli_here("tricks", "symlogg")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "symlogg" in lines[0] and "reward_grad" in lines[0]
    assert "Traceback" not in out.stderr


SUITES = {  # a suite file's text for the cases below that need one
    "crafter-length": "name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\ntasks:\n  crafter: {env: {length: 0}}\n",
    "crafter-length-inf": "name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\ntasks:\n  crafter: {env: {length: .inf}}\n",
    "dmc-size": "name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\n"
                "tasks:\n  dmc_cartpole_balance: {env: {obs: image, size: [-1, 64]}}\n",
    "name-escapes": "name: ../../esc\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\ntasks:\n  gym_CartPole-v1: {}\n",
    "images-only": "name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\n"
                   "tasks:\n  dmc_cartpole_balance: {env: {obs: image}}\n",
}


@pytest.mark.parametrize("args, needle", [
    (["bench", "--size", "size3m"], "size1m"),
    (["bench", "--obs", "pixels"], "vector, image"),
    (["bench", "--device", "tpu"], "cpu, cuda"),
    (["bench", "--off", "nope"], "symlog"),
    (["bench", "--set", "units"], "key=value"),
    (["bench", "--set", "unitz=3"], "valid:"),
    (["bench", "--envs", "--seconds", "-1"], "--seconds must be a finite number > 0"),  # once a table of zeros
    (["bench", "--size", "debug", "--threads", "-1"], "--threads must be ≥ 0"),  # once after a measurement began
    (["status", "pyproject.toml"], "pyproject.toml is a file, not a results directory"),
    # Click's own usage errors are one line too, naming the command's --help
    (["status", "--results", "x"], "No such option: --results (see 'dreamer-bench status --help')"),
    (["run", "--jobs", "many"], "'--jobs'"),
    (["run", "--jobs"], "Option '--jobs' requires an argument. (see 'dreamer-bench run --help')"),
    (["report", "evidence/learning/runs_v020.tar.gz", "--out", "pyproject.toml"], "pyproject.toml is a file, not a directory"),
    (["frobnicate"], "No such command 'frobnicate'"),
    # each once accepted: an empty item or value read as nothing (an empty --tasks is the whole suite)
    (["run", "--tasks", ""], "--tasks has an empty name in ''"),
    (["run", "--plugin", ""], "--plugin has an empty name in ''"),
    (["run", "--pack", ""], "--pack takes a number of seeds per process from 1 to 64, or auto; got ''"),
    (["run", "--seeds", "0,,1"], "got '0,,1'"),
    # once a run folder, then an overflow in the generator's seed
    (["run", "--seeds", "99999999999999999999999,"], "--seeds must be whole numbers from 0 to 2,147,483,647"),
    (["run", "--seeds", "99999999"], "--seeds count must be at most 10,000"),
    # environment settings once accepted, then a failed run (or one-step episodes) after writing it
    (["run", "--suite", "crafter-length"], "task crafter: length must be a whole number ≥ 1, got 0"),
    (["run", "--suite", "crafter-length-inf"], "task crafter: length must be a whole number ≥ 1, got inf"),  # once a traceback
    (["run", "--suite", "dmc-size"], "size must be two whole numbers ≥ 1 (height, width), got [-1, 64]"),
    (["run", "--suite", "name-escapes"], "name '../../esc' must start with a letter or digit"),  # wrote above --results
    (["ablate", "--suite", "images-only", "--off", "symlog"], "there is nothing to ablate"),  # once the full agent alone
    (["bench", "--envs", "--seconds", "0.1", "--device", "gpu"], "--envs measures environments only, so --device"),
    (["bench", "--seconds", "2", "--size", "debug", "--obs", "vector", "--updates", "1", "--warmup", "0"],
     "--seconds is for --envs"),
    (["bench", "--size", ""], "--size has an empty name in ''"),  # once an empty table and cache entry
    (["tricks", "--json", "--markdown"], "give one of them"),
    # an empty path was the current directory: a grid there, or a report of it
    (["run", "--results", ""], "Invalid value for '--results': an empty path"),
    (["report", ""], "Invalid value for 'results': an empty path"),
    (["predict", ""], "Invalid value for 'run_dir': an empty path"),
])
def test_cli_bad_input_is_one_line_exit_two_and_writes_nothing(args, needle, cli_here, tmp_path):
    for i, a in enumerate(args):
        if a in SUITES:  # a suite file of the case's own
            (tmp_path / "s.yaml").write_text(SUITES[a])
            args = [*args[:i], str(tmp_path / "s.yaml"), *args[i + 1:]]
    if args[0] in ("run", "ablate"):  # one env step a run: were a case accepted, the test fails in seconds
        args = [args[0], "--steps", "1", *([] if "--results" in args else ["--results", str(tmp_path / "r")]), *args[1:]]
    out = cli_here(*args)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr and sorted(p.name for p in tmp_path.iterdir()) in ([], ["s.yaml"])


def test_cli_bench_measures_the_debug_preset(tmp_path):
    out = cli("bench", "--size", "debug", "--obs", "vector", "--updates", "2", "--warmup", "1",
              "--json", str(tmp_path / "bench.json"))
    assert out.returncode == 0, out.stderr
    written = json.loads((tmp_path / "bench.json").read_text())
    result = written["results"][0]
    assert result["size"] == "debug" and result["updates_per_s"] > 0 and result["peak_mb"] > 0
    from dreamer_bench.machine import cpu_description  # the figures name the CPU in words, in the file and on screen

    assert written["machine"].startswith(cpu_description() + ", torch ") and cpu_description() in " ".join(out.stdout.split())


def test_seeds_accept_a_count_a_list_a_single_seed_and_a_range():
    from dreamer_bench.runner.build import seed_list as parse_seeds

    assert parse_seeds(None, 3) == [0, 1, 2]
    assert parse_seeds("2", 5) == [0, 1]
    assert parse_seeds("0,4,7", 5) == [0, 4, 7]
    assert parse_seeds("0,", 5) == [0]
    assert parse_seeds("5-7", 5) == [5, 6, 7]


# ------------------------------------------------------------------------------------------------
# a run's variant name is always what its configuration switches off

def grid(tmp_path, variants, suite="smoke", tasks=None, sets=None):
    from dreamer_bench.cli import parse_sets
    from dreamer_bench.runner.build import GridOptions, build_grid

    options = GridOptions(suite=suite, tasks=tasks or [], seeds="1", sets=parse_sets(sets), results=tmp_path / "r",
                          threads=1)
    return build_grid(options, variants)


def test_every_route_into_a_configuration_names_its_variant_by_what_is_off(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug, set: {units: 16}}\n"
                     "tasks:\n  gym_CartPole-v1: {set: {actor_unimix: '0'}}\n  dmc_cartpole_balance: {}\n")
    routes = {
        "run": [()],
        "run --off": [("twohot",)],
        "ablate --off": [(), ("twohot",)],
        "ablate --off --off": [(), ("free_bits", "twohot")],
        "ablate --each": [()] + [(n,) for n in techniques.NAMES],
    }
    for route, variants in routes.items():
        for runs in (grid(tmp_path, variants, suite=str(suite), sets=["lr=1e-4"]), grid(tmp_path, variants)):
            assert runs, route
            for r in runs:
                cfg = r.agent_config()
                assert r.variant == variant_name(cfg.off) and r.directory.parts[-3] == r.variant, (route, r.label)
                assert set(cfg.off) == set(r.off)


@pytest.mark.parametrize("where", ["--set", "suite"])
def test_techniques_cannot_be_switched_off_through_set(tmp_path, where, cli_here):
    """`--set off=symlog` once trained with symlog off and stored the run as `full`."""
    if where == "--set":
        out = cli_here("run", "--suite", "smoke", "--set", "off=symlog", "--results", str(tmp_path / "r"))
    else:
        suite = tmp_path / "s.yaml"
        suite.write_text("name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug, set: {off: symlog}}\n"
                         "tasks:\n  gym_CartPole-v1: {}\n")
        out = cli_here("ablate", "--suite", str(suite), "--off", "twohot", "--results", str(tmp_path / "r"))
    assert out.returncode == 2 and "--off" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_run_whose_configuration_disagrees_with_its_name_is_refused():
    from dreamer_bench.runner.run import RunSpec
    from dreamer_bench.suites import load

    task = load("smoke").task("gym_CartPole-v1").to_dict()
    task["set"] = {**task["set"], "off": "symlog"}  # past the suite loader's check
    with pytest.raises(ConfigError, match="named full"):
        RunSpec(suite="smoke", task=task, off=(), seed=0, results="/tmp/unused").agent_config()


def test_a_technique_that_cannot_act_on_a_task_skips_that_pair_with_a_warning(tmp_path, cli_here):
    suite = tmp_path / "mixed.yaml"
    suite.write_text("name: mixed\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\n"
                     "tasks:\n  gym_CartPole-v1: {}\n  dmc_cartpole_balance: {env: {obs: image}}\n  crafter: {}\n")
    assert techniques.inert(["symlog", "twohot"], {"image"}) == ("symlog",)
    assert techniques.inert(["symlog"], {"image", "vector"}) == ()
    out = cli_here("ablate", "--each", "--suite", str(suite), "--results", str(tmp_path / "r"), "--dry-run")
    assert out.returncode == 0, out.stderr
    skipped = [line for line in out.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(skipped) == 2 and all("off-symlog" in line for line in skipped)
    assert any("dmc_cartpole_balance" in line for line in skipped) and any("crafter" in line for line in skipped)
    # 15 variants on CartPole, 14 on each image task
    assert f"{15 + 14 + 14} runs" in out.stdout


def test_dry_run_estimates_say_their_source_and_the_cache_holds_only_default_warmed_up_figures(
        tmp_path, monkeypatch, cli_here):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "dreamer-bench" / "bench.json"
    common = ["bench", "--size", "debug", "--obs", "vector", "--updates", "1"]
    assert cli_here(*common, "--warmup", "0").returncode == 0
    assert cli_here(*common, "--warmup", "1", "--set", "batch_size=4").returncode == 0
    assert not cache.exists()  # neither a cold nor a non-default measurement is kept
    assert cli_here(*common, "--warmup", "1", "--threads", "1").returncode == 0
    assert sorted(json.loads(cache.read_text())) == ["cpu|debug|vector", "cpu|debug|vector|threads=1|pack=1"]
    out = cli_here("run", "--suite", "smoke", "--tasks", "gym_CartPole-v1", "--results", tmp_path / "r", "--dry-run")
    assert out.returncode == 0 and "s/update: debug vector on cpu: from the bench cache" in out.stdout, out.stdout
    # an entry-point task with image observations is estimated as an image task
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ndefaults: {steps: 100, train_ratio: 8, preset: debug}\ntasks:\n  custom_env:Grayscale: {}\n")
    out = cli_here("run", "--suite", suite, "--results", tmp_path / "r", "--dry-run")
    assert out.returncode == 0 and "debug image on cpu: measured now" in out.stdout, out.stdout
    # --pack auto reads the packed figures measured at the threads each of the grid's processes gets
    assert cli_here(*common, "--warmup", "1", "--threads", "1", "--pack", "2").returncode == 0
    figures = json.loads(cache.read_text())
    speedup = figures["cpu|debug|vector|threads=1|pack=1"] / figures["cpu|debug|vector|threads=1|pack=2"]
    args = ["run", "--suite", "smoke", "--tasks", "gym_CartPole-v1", "--seeds", "2", "--results", tmp_path / "r",
            "--dry-run", "--pack", "auto"]
    out = cli_here(*args, "--threads", "1")
    expected = (f"2 seeds per process, ×{speedup:.2f}" if speedup > 1.05 else
                f"packing measured no faster per seed for debug vector on cpu at 1 thread(s) per process (2: ×{speedup:.2f})")
    assert out.returncode == 0 and expected in out.stdout, out.stdout
    out = cli_here(*args, "--threads", "2")
    assert out.returncode == 0 and "no packed figures for debug vector on cpu at 2 thread(s)" in out.stdout, out.stdout
    # without --pack the grid packs as auto would, and says so only when it packs
    quiet = [a for a in args if a not in ("--pack", "auto")]
    out = cli_here(*quiet, "--threads", "1")
    assert out.returncode == 0 and (("packing: 2 of 2 runs" in out.stdout) == (speedup > 1.05)), out.stdout
    out = cli_here(*quiet, "--threads", "2")
    assert out.returncode == 0 and "--pack auto" not in out.stdout and "packing:" not in out.stdout, out.stdout


# ------------------------------------------------------------------------------------------------
# fields renamed away from their technique's name keep every run and command working

def test_fields_no_longer_share_a_technique_s_name_and_the_old_names_still_work():
    from dreamer_bench.agent.config import ALIASES

    from dreamer_bench.agent.config import FIELDS

    assert not set(FIELDS) & set(techniques.NAMES)  # `agc` the technique, `agc_clip` its clip ratio
    assert ALIASES == {"agc": "agc_clip", "unimix": "latent_unimix"}
    old_names = make_config("debug", overrides={"agc": "0.5", "unimix": "0.02"})
    assert old_names == make_config("debug", overrides={"agc_clip": "0.5", "latent_unimix": "0.02"})
    assert (old_names.agc_clip, old_names.latent_unimix) == (0.5, 0.02)


def test_runs_recorded_under_the_former_names_keep_their_identity_and_resume(tmp_path):
    import tarfile

    from dreamer_bench.agent import ActSpace, Agent
    from dreamer_bench.agent.config import ALIASES
    from dreamer_bench.results import RENAMED_FIELDS, identity_hash
    from dreamer_bench.runner.run import config_differences

    # the 0.2.0 runs committed before the rename: the same identity, and nothing to refuse on resume,
    # under the former names as recorded and under the current ones
    with tarfile.open(Path(__file__).resolve().parents[1] / "evidence/learning/runs_v020.tar.gz") as tar:
        configs = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith("config.json")]
    assert configs and all("agc" in c["agent"] and "agc_clip" not in c["agent"] for c in configs)
    for c in configs:
        now = {**c, "agent": {ALIASES.get(k, k): v for k, v in c["agent"].items()}}
        assert "agc_clip" in now["agent"] and "agc" not in now["agent"]
        version = c["versions"]["dreamer_bench"]
        assert identity_hash(c["task"], c["agent"], version) == identity_hash(now["task"], now["agent"], version)
        assert config_differences(c, now) == []
    # a configuration made now is the same run as one recorded under the former names
    new = make_config("debug").to_dict()
    old = {RENAMED_FIELDS.get(k, k): v for k, v in new.items()}
    task, versions = {"task": "gym_CartPole-v1", "steps": 100}, {"versions": {"dreamer_bench": "0.2.0"}}
    assert identity_hash(task, old, "0.2.0") == identity_hash(task, new, "0.2.0")
    assert config_differences({"task": task, "agent": old, **versions}, {"task": task, "agent": new, **versions}) == []
    # and a checkpoint written under the former names restores
    agent = Agent({"vector": (3,)}, ActSpace(True, 2), make_config("debug"))
    state = agent.checkpoint()
    state["config"] = {RENAMED_FIELDS.get(k, k): v for k, v in state["config"].items()}
    Agent({"vector": (3,)}, ActSpace(True, 2), make_config("debug")).restore(state)
    state["config"]["agc"] = 0.5  # a real difference is still refused
    with pytest.raises(ValueError, match="agc_clip"):
        Agent({"vector": (3,)}, ActSpace(True, 2), make_config("debug")).restore(state)
