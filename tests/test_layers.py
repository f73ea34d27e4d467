"""The package's layers (the README's Layout section): every import points down, never up.

Each module of ``dreamer_bench`` belongs to one part (``agent`` for ``dreamer_bench/agent/*``,
``results`` for ``dreamer_bench/results.py``…) and each part to one layer. A module may import
parts of its own layer or of lower ones, except the pairs forbidden below; imports inside
functions count as much as those at the top of a file.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dreamer_bench"
README = Path(__file__).resolve().parents[1] / "README.md"

LAYERS = [  # bottom first
    {"__init__", "spaces", "results", "stopsignals", "machine"},  # ground: the version, plain data, the results
    # files, SIGINT/SIGTERM around child processes, the machine in words
    {"agent", "envs"},  # the algorithm, the environments
    {"scoring"},  # score rules and normalisation
    {"suites", "bench"},  # suite files; the training-step benchmark
    {"runner", "report"},  # training runs and grids; statistics, tables and figures
    {"cli", "__main__"},  # the command line
]
FORBIDDEN = {("agent", "envs"), ("envs", "agent"), ("report", "runner"), ("runner", "report"),
             ("suites", "bench"), ("bench", "suites")}
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """``dreamer_bench.agent.heads`` → ``agent``; ``dreamer_bench.results`` → ``results``."""
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """The package modules that ``name`` imports, top level and inside functions alike."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dreamer_bench")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("dreamer_bench"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}  # `from . import scoring`
    known = modules()
    return {t for t in found if t in known}


def arrows() -> set[tuple[str, str, str]]:
    out = set()
    for name, path in modules().items():
        if name == "dreamer_bench":
            continue
        for target in imports(name, path):
            a, b = part_of(name), part_of(target)
            if a != b:
                out.add((a, b, name))
    return out


def test_every_part_has_a_layer():
    parts = {part_of(m) for m in modules() if m != "dreamer_bench"}
    assert parts <= set(LAYER), f"modules without a layer: {sorted(parts - set(LAYER))}"


def test_no_import_runs_up_or_across_a_forbidden_pair():
    wrong = sorted(f"{where} ({a}) imports {b}" for a, b, where in arrows()
                   if LAYER[b] > LAYER[a] or (a, b) in FORBIDDEN)
    assert not wrong, "\n".join(wrong)


def test_the_report_reads_files_never_the_runner_or_the_agent():
    report = {b for a, b, _ in arrows() if a == "report"}
    assert not report & {"runner", "agent", "envs", "bench", "cli"}, report
    assert "results" in report


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # the test above can fail: an agent module that imports the runner is caught
    fake = tmp_path / "dreamer_bench"
    for path in PACKAGE.rglob("*.py"):
        target = fake / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (fake / "agent" / "heads.py").write_text((fake / "agent" / "heads.py").read_text()
                                              + "\n\ndef _late():\n    from ..runner.run import RunSpec\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert ("agent", "runner", "dreamer_bench.agent.heads") in arrows()


def test_the_readme_layout_names_every_module_in_its_layer():
    section = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    for name in modules():
        if name in ("dreamer_bench", "dreamer_bench.__main__"):
            continue
        rel = name.replace(".", "/")
        shown = rel + ("/" if (PACKAGE.parent / rel).is_dir() else ".py")
        parent = rel.rsplit("/", 1)[0] + "/"
        assert shown in section or re.search(re.escape(parent) + r"\s", section), f"{shown} is not in the layout"
