"""Pack finished runs into one compressed results folder, the form evidence is committed in.

    python tools/evidence/pack.py OUT.tar.gz RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds a run's files (config.json, status.json, episodes.jsonl, metrics.jsonl,
scores.json; anything else, checkpoints included, is left out). The archive lays them out as a
results folder, ``<suite>/<variant>/<task>/seed_<n>/`` from each run's config.json, so that
``dreamer-bench report OUT.tar.gz`` rebuilds the report from it, and
``tar xzf OUT.tar.gz -C DIR`` gives a results folder for the analysis scripts. The archive is
deterministic (sorted members, fixed times and owners): packing the same runs gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

FILES = ("config.json", "status.json", "episodes.jsonl", "metrics.jsonl", "scores.json")
MTIME = 1_796_083_200  # 2026-12-01 00:00 UTC: a fixed time keeps the archive's bytes reproducible


def member_dir(run: Path) -> str:
    info = json.loads((run / "config.json").read_text())["run"]
    task = info["task"].replace(":", "__").replace("/", "_")
    return f"{info['suite']}/{info['variant']}/{task}/seed_{info['seed']}"


def pack(out: Path, runs: list[Path]) -> int:
    members = {}
    for run in runs:
        where = member_dir(run)
        if where in members:
            raise SystemExit(f"error: {run} and {members[where][0]} are both {where}")
        members[where] = (run, [f for f in FILES if (run / f).exists()])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for where in sorted(members):
            run, files = members[where]
            for name in files:
                data = (run / name).read_bytes()
                info = tarfile.TarInfo(f"{where}/{name}")
                info.size, info.mtime, info.mode = len(data), MTIME, 0o644
                tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return len(members)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].endswith(".tar.gz"):
        raise SystemExit("usage: python tools/evidence/pack.py OUT.tar.gz RUN_DIR [RUN_DIR ...]")
    runs = [Path(a) for a in argv[1:]]
    missing = [str(r) for r in runs if not (r / "config.json").is_file()]
    if missing:
        raise SystemExit(f"error: no config.json in {', '.join(missing)}")
    n = pack(Path(argv[0]), runs)
    print(f"{argv[0]}: {n} runs")


if __name__ == "__main__":
    main(sys.argv[1:])
