"""The package, its documentation and CI stay in step with the code."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dreamer_bench").rglob("__init__.py")}
    assert found | {"dreamer_bench.suite_files"} == listed


def test_readme_techniques_table_is_the_registry():
    from dreamer_bench.agent.techniques import markdown_table

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tricks:start -->\n(.*?)\n<!-- tricks:end -->", readme, re.S).group(1)
    assert block == markdown_table(), "the README's table is generated: run python tools/docs/readme_tricks.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(pip install [^\n]*pytest[^\n]*)\n```", readme)
    assert len(commands) == 1
    assert commands[0] in (ROOT / ".ci" / "run").read_text()


def test_readme_main_job_is_the_smoke_suite():
    readme = (ROOT / "README.md").read_text()
    assert ("pip install -c constraints.txt -e '.[all]' && dreamer-bench run --suite smoke --jobs 2 "
            "&& dreamer-bench report") in readme
    assert (ROOT / "constraints.txt").read_text().strip() == "torch==2.13.0"


def test_the_report_suites_and_command_line_load_without_the_networks():
    """The arrows go one way: the report reads score files, never a model, and the command line
    parses and validates before any network is built. Importing them (and the suites, which the
    report's reference-alone mode reads) loads neither torch nor dreamer_bench.agent.agent; the
    agent package's networks load on first use."""
    import subprocess
    import sys

    code = ("import sys, dreamer_bench.cli, dreamer_bench.report.build, dreamer_bench.suites\n"
            "from dreamer_bench.agent import PRESETS, techniques\n"
            "print(sorted(m for m in ('torch', 'dreamer_bench.agent.agent') if m in sys.modules))\n"
            "from dreamer_bench.agent import Agent\n"
            "print(Agent.__module__, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "dreamer_bench.agent.agent True"], out.stdout


def test_the_package_version_is_the_one_pyproject_declares():
    """The version is part of every run's identity (runs of two versions are neither resumed
    across nor pooled): both places must name the same one."""
    import dreamer_bench

    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert dreamer_bench.__version__ == declared
