"""Copy the evidence of every run under a results folder (not its checkpoints) into a folder of
the repository, keeping the <suite>/<variant>/<task>/seed_<n>/ layout.

    python evidence/learning/analysis/collect.py /work/runs/learning evidence/learning/runs
"""

import shutil
import sys
from pathlib import Path

EVIDENCE = ("config.json", "status.json", "starts.jsonl", "episodes.jsonl", "metrics.jsonl", "scores.json")


def main(src: str, dst: str) -> None:
    src_root, dst_root = Path(src), Path(dst)
    for run in sorted(p.parent for p in src_root.rglob("config.json")):
        if not run.name.startswith("seed_"):
            continue
        out = dst_root / run.relative_to(src_root)
        out.mkdir(parents=True, exist_ok=True)
        for name in EVIDENCE:
            if (run / name).is_file():
                shutil.copy2(run / name, out / name)
        print(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: collect.py RESULTS_FOLDER DESTINATION")
    main(sys.argv[1], sys.argv[2])
