"""Repair the logs of finished runs that were stopped before their first checkpoint and then
started over under dreamer-bench before the fix of 2026-12-01: the restarted attempt appended
its episodes and metrics to those of the stopped one, so the logs' first rows appear twice.

A run's env steps only grow from one logged row to the next; where they fall back, a new
attempt began. This keeps the rows from the last such point on — what the finished attempt
logged — rewrites scores.json from them, and sets status.json's episode count. Runs that are
not done are left alone.

    python evidence/learning/analysis/drop_restart_duplicates.py RUN_DIR [RUN_DIR ...]
"""

import sys
from pathlib import Path

from dreamer_bench.results import atomic_write_json, atomic_write_jsonl, read_json, read_jsonl


def last_attempt(rows: list[dict]) -> list[dict]:
    start = 0
    for i in range(1, len(rows)):
        if rows[i]["env_steps"] <= rows[i - 1]["env_steps"]:
            start = i
    return rows[start:]


def repair(run: Path) -> None:
    status = read_json(run / "status.json") or {}
    if status.get("state") != "done":
        print(f"{run}: not done, left alone")
        return
    episodes = read_jsonl(run / "episodes.jsonl")
    metrics = read_jsonl(run / "metrics.jsonl")
    kept_e, kept_m = last_attempt(episodes), last_attempt(metrics)
    if len(kept_e) == len(episodes) and len(kept_m) == len(metrics):
        print(f"{run}: no repeated rows")
        return
    atomic_write_jsonl(run / "episodes.jsonl", kept_e)
    atomic_write_jsonl(run / "metrics.jsonl", kept_m)
    scores = read_json(run / "scores.json")
    for record in scores:
        record["xs"] = [e["env_steps"] for e in kept_e]
        record["ys"] = [e["return"] for e in kept_e]
    atomic_write_json(run / "scores.json", scores)
    status["episodes"] = len(kept_e)
    atomic_write_json(run / "status.json", status)
    print(f"{run}: dropped {len(episodes) - len(kept_e)} episodes and {len(metrics) - len(kept_m)} metrics rows "
          f"of an earlier attempt")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: drop_restart_duplicates.py RUN_DIR [RUN_DIR ...]")
    for arg in sys.argv[1:]:
        repair(Path(arg))
