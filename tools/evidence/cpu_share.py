"""CPU seconds per env step of the training processes running on this machine, ours and the
official agent's, over a window: what each side costs in the runs themselves (not a benchmark).

    python tools/evidence/cpu_share.py OURS_RESULTS OFFICIAL_RUNS [WINDOW_S]

OURS_RESULTS: the results folder of a running `dreamer-bench run` grid (its worker processes and
the runs' status.json); OFFICIAL_RUNS: the folder of tools/official/reference_runs.sh (each
train.py's metrics.jsonl). Each process's CPU time is the sum of its threads' utime + stime in
/proc; env steps are read at both ends of the window (ours: status.json; the official: the last
`step` of metrics.jsonl, written every few minutes, so use a window of 20 minutes or more).
Prints JSON: per process its side, task, seed, CPU seconds, env steps, share of one core and CPU
milliseconds per env step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (/proc/PID/stat counts its ended threads too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def training_processes(official_runs: Path) -> dict[int, tuple]:
    pids = subprocess.run(["pgrep", "-f", "popen_loky_posix|tools/official/train.py|dreamer-bench run|dreamer_bench run"],
                          capture_output=True, text=True).stdout.split()
    out = {}
    for pid in map(int, pids):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        if "--task" in cmd:
            task, seed = cmd[cmd.index("--task") + 1], int(cmd[cmd.index("--seed") + 1])
            out[pid] = ("official", task, seed, official_runs / task / f"seed_{seed}" / "metrics.jsonl")
        else:
            out[pid] = ("ours", None, None, None)
    return out


def our_steps(results: Path) -> dict[int, dict[tuple, int]]:
    """pid → {(task, seed): env steps} of every run of ours that is training (a packed group's
    runs share their process's pid)."""
    out: dict[int, dict[tuple, int]] = {}
    for status_file in results.rglob("seed_*/status.json"):
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            continue
        if status.get("state") == "running" and status.get("pid"):
            run = status_file.parent
            out.setdefault(int(status["pid"]), {})[(run.parent.name, int(run.name[5:]))] = int(status["env_steps"])
    return out


def official_step(metrics: Path) -> int | None:
    """The last ``step`` the official logger wrote; None before its first row."""
    last = None
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            last = json.loads(line).get("step", last)
        except ValueError:
            continue
    return last


def main(results: Path, official_runs: Path, window: float) -> dict:
    procs = training_processes(official_runs)
    cpu0 = {p: cpu_seconds(p) for p in procs}
    ours0 = our_steps(results)
    official0 = {p: official_step(v[3]) for p, v in procs.items() if v[0] == "official"}
    t0 = time.time()
    time.sleep(window)
    t1 = time.time()
    ours1 = our_steps(results)
    rows = []
    for pid, (side, task, seed, metrics) in procs.items():
        try:
            used = cpu_seconds(pid) - cpu0[pid]
        except OSError:  # ended during the window
            continue
        if side == "official":
            first, last = official0[pid], official_step(metrics)
            if first is None or last is None:
                continue
            steps = last - first
        else:  # the runs this process trained through the whole window (one; several if packed)
            runs = {k: v for k, v in ours1.get(pid, {}).items() if k in ours0.get(pid, {})}
            if not runs:  # a process between runs, or not one of ours
                continue
            task = ",".join(sorted({t for t, _ in runs}))
            seed = sorted(s for _, s in runs) if len(runs) > 1 else next(iter(runs))[1]
            steps = sum(v - ours0[pid][k] for k, v in runs.items())
        rows.append({"side": side, "task": task, "seed": seed, "cpu_s": round(used, 1), "env_steps": steps,
                     "cpu_share": round(used / (t1 - t0), 3),
                     "cpu_ms_per_env_step": round(1000 * used / steps, 1) if steps else None})
    return {"window_s": round(t1 - t0), "start_utc": time.strftime("%Y-%m-%dT%H:%M", time.gmtime(t0)), "rows": rows}


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: cpu_share.py OURS_RESULTS OFFICIAL_RUNS [WINDOW_S]")
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) == 4 else 1200),
                     indent=1))
