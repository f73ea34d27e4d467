"""Copy the reference runs' logs into the learning evidence, without checkpoints or replay.

    python tools/official/collect.py RUNS OUT

RUNS: the folder of tools/official/reference_runs.sh (RUNS/<task>/seed_<n>/). OUT: for example
evidence/learning/official. For every run it copies the small files (the harness's
settings, the official config, metrics and scores, stdout, the `done` mark with the wall time)
to OUT/<task>/seed_<n>/ (never over a finished copy) and writes OUT/scores.json with one score
record per run in OUT (scores.py; runs still training marked ``"finished": false``), and with
``--package FILE`` the same records gzipped into FILE (the copy dreamer-bench ships for
``report --compare official``: dreamer_bench/report/published/learning-official.json.gz). A partial
copy in OUT is not replaced by a run that has come less far (a run started over on a machine
without the earlier checkpoints). Plain Python.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from scores import record  # noqa: E402

FILES = ("harness.jsonl", "config.yaml", "metrics.jsonl", "scores.jsonl", "stdout.log", "done")


def reached(run: pathlib.Path) -> int:
    """The env step of a run's last training episode (0 without one)."""
    rec = record(run)
    return rec["xs"][-1] if rec["xs"] else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--package", type=pathlib.Path, help="also write the records, gzipped, here")
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"error: no folder {args.runs}", file=sys.stderr)
        return 2
    for run in sorted(args.runs.glob("*/seed_*")):
        if not (run / "scores.jsonl").exists():
            continue
        dest = args.out / run.parent.name / run.name
        if (dest / "done").exists() and not (run / "done").exists():
            print(f"{run}: kept the finished copy in {dest} (this one is a rerun in progress)", file=sys.stderr)
            continue
        if (dest / "scores.jsonl").exists() and not (run / "done").exists() and reached(dest) > reached(run):
            # a run started over (a new machine without the checkpoints) has not yet come as far as
            # the partial copy an earlier session committed: that copy stays until it has
            print(f"{run}: kept the partial copy in {dest} (to step {reached(dest)}; this one is at "
                  f"{reached(run)})", file=sys.stderr)
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES:  # the copy is this run's files alone, none left from an earlier attempt
            if (run / name).exists():
                shutil.copy2(run / name, dest / name)
            elif (dest / name).exists():
                (dest / name).unlink()
    # the records of every run in OUT: this machine's and those committed by earlier sessions
    records = []
    for run in sorted(args.out.glob("*/seed_*")):
        rec = record(run)
        rec["finished"] = (run / "done").exists()
        records.append(rec)
        print(f"{run.parent.name} {run.name}: {len(rec['xs'])} episodes, "
              f"{'finished' if rec['finished'] else 'partial'}", file=sys.stderr)
    tmp = args.out / "scores.json.tmp"
    tmp.write_text(json.dumps(records))
    tmp.replace(args.out / "scores.json")
    if args.package:
        tmp = args.package.with_name(args.package.name + ".tmp")
        tmp.write_bytes(gzip.compress(json.dumps(records).encode(), mtime=0))  # the same records, the same bytes
        tmp.replace(args.package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
