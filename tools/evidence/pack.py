"""Pack finished runs into one compressed results folder, the form evidence is committed in.

    python tools/evidence/pack.py [--update] OUT.tar.gz RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds a run's files (config.json, status.json, starts.jsonl, episodes.jsonl,
metrics.jsonl, scores.json; anything else, checkpoints included, is left out). The archive lays
them out as a results folder, ``<suite>/<variant>/<task>/seed_<n>/`` from each run's config.json, so that
``dreamer-bench report OUT.tar.gz`` rebuilds the report from it, and
``tar xzf OUT.tar.gz -C DIR`` gives a results folder for the analysis scripts. The archive is
deterministic (sorted members, fixed times and owners): packing the same runs gives the same bytes.

``--update``: OUT's runs are kept beside the given ones, and where both hold the same run the copy
that has come further (more env steps in its status.json) stays: runs still training are
committed as they go, and a run that started over on a machine without its checkpoints never
replaces the longer copy an earlier session committed.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

FILES = ("config.json", "status.json", "starts.jsonl", "episodes.jsonl", "metrics.jsonl", "scores.json")
MTIME = 1_796_083_200  # 2026-12-01 00:00 UTC: a fixed time keeps the archive's bytes reproducible


def member_dir(run: Path) -> str:
    info = json.loads((run / "config.json").read_text())["run"]
    task = info["task"].replace(":", "__").replace("/", "_")
    return f"{info['suite']}/{info['variant']}/{task}/seed_{info['seed']}"


def env_steps(files: dict[str, bytes]) -> int:
    try:
        return int(json.loads(files["status.json"]).get("env_steps") or 0)
    except (KeyError, ValueError, TypeError, AttributeError):  # no status, not JSON, not an object
        return 0


def archived(out: Path) -> dict[str, dict[str, bytes]]:
    """The runs in an archive this script wrote: member folder → {file name: bytes}."""
    members: dict[str, dict[str, bytes]] = {}
    with tarfile.open(out, "r:gz") as tar:
        for info in tar.getmembers():
            if info.isfile() and "/" in info.name:  # <run folder>/<file>: what pack writes
                where, name = info.name.rsplit("/", 1)
                members.setdefault(where, {})[name] = tar.extractfile(info).read()
    return members


def pack(out: Path, runs: list[Path], update: bool = False) -> int:
    members: dict[str, dict[str, bytes]] = {}
    sources: dict[str, Path] = {}
    for run in runs:
        where = member_dir(run)
        if where in sources:
            raise SystemExit(f"error: {run} and {sources[where]} are both {where}")
        sources[where] = run
        members[where] = {f: (run / f).read_bytes() for f in FILES if (run / f).exists()}
    if update and out.exists():
        for where, files in archived(out).items():
            if where not in members:
                members[where] = files
            elif env_steps(files) > env_steps(members[where]):
                print(f"{sources[where]}: kept the copy in {out} ({env_steps(files):,} env steps; this one "
                      f"{env_steps(members[where]):,})", file=sys.stderr)
                members[where] = files
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for where in sorted(members):
            files = members[where]
            for name in [f for f in FILES if f in files]:
                data = files[name]
                info = tarfile.TarInfo(f"{where}/{name}")
                info.size, info.mtime, info.mode = len(data), MTIME, 0o644
                tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")  # written whole, then put in place: never a half archive
    with open(tmp, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    tmp.replace(out)
    return len(members)


def main(argv: list[str]) -> None:
    update = "--update" in argv
    argv = [a for a in argv if a != "--update"]
    if len(argv) < 2 or not argv[0].endswith(".tar.gz"):
        raise SystemExit("usage: python tools/evidence/pack.py [--update] OUT.tar.gz RUN_DIR [RUN_DIR ...]")
    runs = [Path(a) for a in argv[1:]]
    missing = [str(r) for r in runs if not (r / "config.json").is_file()]
    if missing:
        raise SystemExit(f"error: no config.json in {', '.join(missing)}")
    n = pack(Path(argv[0]), runs, update)
    print(f"{argv[0]}: {n} runs")


if __name__ == "__main__":
    main(sys.argv[1:])
