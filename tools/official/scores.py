"""Turn official training logs into score records: ``{task, method: official, seed, xs, ys}``.

    python tools/official/scores.py LOGDIR [LOGDIR ...] --out FILE.json[.gz]

Each LOGDIR is one run of tools/official/train.py (its harness.jsonl names task and seed). The
official logger writes one ``scores.jsonl`` line per training episode, ``step`` in env steps at
the episode's end (resets counted as steps, as our runner counts them). A run resumed from a
checkpoint repeats the steps after that checkpoint, its environment reset there: the episodes the
stopped attempt logged after that point are a branch the run did not continue, and are dropped
(as our runner drops the episodes logged after the checkpoint it resumes from), so each env step
is scored once, by the attempt the run went on with. The resume point is where the resumed
attempt's first episode began: its end minus its length (``episode/length`` in the official
metrics.jsonl, in policy steps, times the action repeat); where the steps fall back, that alone
marks it. (The official DMC runs resumed across sessions had such episodes: walker_walk seed 0
three, ending 420, 330 and 188 env steps after the point its next attempt resumed from.) Each
record carries the run's full settings (``settings``) beside it. Plain Python: runs in either
environment.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import sys


def read_jsonl(path: pathlib.Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: the run repeats it after resuming
            continue
    return rows


def drop_restarts(rows: list[dict], lengths: dict[int, float] | None = None) -> list[dict]:
    """Keep, for every env step, only the episodes of the last attempt that reached it: a row
    drops the rows before it that end at or after its own end, or, where its length in env steps
    is known (``lengths``: step at the end → length), after its start (an episode overlapping one
    that began later belongs to an attempt the run did not go on with)."""
    out: list[dict] = []
    for row in rows:
        start = row["step"] - lengths[row["step"]] if lengths and row["step"] in lengths else row["step"]
        while out and (out[-1]["step"] >= row["step"] or out[-1]["step"] > start):
            out.pop()
        out.append(row)
    return out


def episode_lengths(logdir: pathlib.Path, repeat: int) -> dict[int, float]:
    """Each training episode's length in env steps, keyed by the env step at its end, from the
    official metrics.jsonl (``episode/length`` counts policy steps); the last attempt's where two
    logged an episode ending at the same step."""
    lengths = {}
    for m in read_jsonl(logdir / "metrics.jsonl") if (logdir / "metrics.jsonl").exists() else []:
        if "episode/length" in m and "step" in m:
            lengths[int(m["step"])] = float(m["episode/length"]) * repeat
    return lengths


def record(logdir: pathlib.Path) -> dict:
    starts = read_jsonl(logdir / "harness.jsonl")
    if not starts:
        raise SystemExit(f"error: {logdir} has no harness.jsonl (not a run of tools/official/train.py)")
    settings = starts[-1]
    rows = [r for r in read_jsonl(logdir / "scores.jsonl") if "episode/score" in r]
    # with one environment its episodes follow each other, so one that began before another ended
    # marks a restart; with several they overlap by nature and only a fall-back of the steps does
    single = int(settings.get("envs", 1)) == 1
    rows = drop_restarts(rows, episode_lengths(logdir, int(settings.get("action_repeat", 1))) if single else None)
    rows = [r for r in rows if r["step"] <= settings["steps"]]
    return {
        "task": settings["task"],
        "method": "official",
        "seed": settings["seed"],
        "xs": [int(r["step"]) for r in rows],
        "ys": [float(r["episode/score"]) for r in rows],
        "settings": {**settings, "restarts": len(starts) - 1},
        # the CPU of every start, each once in order (model name only for starts before 2026-12-05 07:00)
        "machines": list(dict.fromkeys(s["cpu"] for s in starts if s.get("cpu"))),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("logdirs", nargs="+", type=pathlib.Path)
    p.add_argument("--out", required=True, type=pathlib.Path)
    args = p.parse_args(argv)
    records = [record(d) for d in args.logdirs]
    text = json.dumps(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    if args.out.suffix == ".gz":
        tmp.write_bytes(gzip.compress(text.encode()))
    else:
        tmp.write_text(text)
    tmp.replace(args.out)
    for r in records:
        print(f"{r['task']} seed {r['seed']}: {len(r['xs'])} episodes to step {r['xs'][-1] if r['xs'] else 0}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
