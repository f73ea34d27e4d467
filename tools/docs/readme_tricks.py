"""Write the registry's table of techniques into the README (between its tricks markers).

    python tools/docs/readme_tricks.py          # rewrite README.md's table from the registry
    python tools/docs/readme_tricks.py --check  # exit 1 if the README's table is not the registry's

The table is never edited by hand: a technique added to ``dreamer_bench/agent/techniques.py``
reaches the README by running this (tests/test_packaging.py checks that it was).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dreamer_bench.agent.techniques import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- tricks:start -->\n)(.*?)(\n<!-- tricks:end -->)", re.S)


def main(argv: list[str]) -> int:
    text = README.read_text()
    if not BLOCK.search(text):
        print(f"error: {README} has no <!-- tricks:start --> … <!-- tricks:end --> block", file=sys.stderr)
        return 2
    updated = BLOCK.sub(lambda m: m.group(1) + markdown_table() + m.group(3), text)
    if "--check" in argv:
        if updated != text:
            print("README.md's table of techniques is not the registry's: run python tools/docs/readme_tricks.py")
            return 1
        return 0
    if updated != text:
        README.write_text(updated)
        print("README.md: table of techniques rewritten from the registry")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
