"""The registry, presets, overrides and the command line."""

import json
import subprocess
import sys

import pytest

from dreamer_bench.agent import PRESETS, ConfigError, make_config, techniques, variant_name
from dreamer_bench.agent.config import AgentConfig

EXPECTED = ["symlog", "twohot", "kl_balance", "free_bits", "unimix", "return_norm", "repval",
            "slow_critic", "block_gru", "agc", "laprop", "zero_init", "recon_grad", "reward_grad"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "dreamer_bench", *args], capture_output=True, text=True)


def test_registry_has_the_fourteen_techniques_all_on_by_default():
    assert list(techniques.NAMES) == EXPECTED
    cfg = AgentConfig()
    assert cfg.off == () and all(cfg.on(n) for n in EXPECTED)
    for t in techniques.TECHNIQUES:
        assert t.on and t.off and t.on != t.off


def test_any_combination_can_be_switched_off_and_names_the_variant():
    cfg = make_config("debug", off=["kl_balance", "free_bits", "kl_balance"])
    assert cfg.off == ("free_bits", "kl_balance")
    assert not cfg.on("free_bits") and cfg.on("symlog")
    assert cfg.variant == "off-free_bits+kl_balance" == variant_name(["kl_balance", "free_bits"])
    assert variant_name([]) == "full"


def test_unknown_technique_lists_the_valid_names():
    with pytest.raises(techniques.UnknownTechnique) as e:
        make_config("debug", off=["symlogg"])
    assert "symlogg" in str(e.value) and all(n in str(e.value) for n in EXPECTED)


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
    assert [t["name"] for t in json.loads(out.stdout)] == EXPECTED
    table = cli("tricks")
    assert table.returncode == 0 and all(n in table.stdout for n in EXPECTED)


def test_cli_unknown_technique_is_one_line_and_exit_two():
    out = cli("tricks", "symlogg")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "symlogg" in lines[0] and "reward_grad" in lines[0]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args, needle", [
    (["bench", "--size", "size3m"], "size1m"),
    (["bench", "--obs", "pixels"], "vector, image"),
    (["bench", "--device", "tpu"], "cpu, cuda"),
    (["bench", "--off", "nope"], "symlog"),
    (["bench", "--set", "units"], "key=value"),
    (["bench", "--set", "unitz=3"], "valid:"),
    # Click's own usage errors are one line too, naming the command's --help
    (["status", "--results", "x"], "No such option: --results (see 'dreamer-bench status --help')"),
    (["run", "--jobs", "many"], "'--jobs'"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_cli_bad_input_is_one_line_and_exit_two(args, needle):
    out = cli(*args)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bench_measures_the_debug_preset(tmp_path):
    out = cli("bench", "--size", "debug", "--obs", "vector", "--updates", "2", "--warmup", "1",
              "--json", str(tmp_path / "bench.json"))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "bench.json").read_text())["results"][0]
    assert result["size"] == "debug" and result["updates_per_s"] > 0 and result["peak_mb"] > 0


def test_seeds_accept_a_count_a_list_a_single_seed_and_a_range():
    from dreamer_bench.cli import parse_seeds

    assert parse_seeds(None, 3) == [0, 1, 2]
    assert parse_seeds("2", 5) == [0, 1]
    assert parse_seeds("0,4,7", 5) == [0, 4, 7]
    assert parse_seeds("0,", 5) == [0]
    assert parse_seeds("5-7", 5) == [5, 6, 7]
