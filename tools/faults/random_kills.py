"""Kill a real run at random moments, resume it each time, and count what survived.

    python tools/faults/random_kills.py --kills 20 [--steps 3000] [--seed 0] [--out DIR]

One small run (CartPole-v1, the debug preset, checkpoints every ~1 s) is started with the
command line; after a random delay (0.5–8 s) its process is sent SIGKILL, and the same command
is run again, until it has been killed ``--kills`` times; then it is run to the end. After each
kill it checks what a kill may never do: leave a process of the run alive (after 5 s), leave
files the rerun cannot read, or lose an episode the last complete checkpoint had counted (those
logged after it are dropped by design: the run trains those steps again). At the end: the run
is done, its episode log has no duplicate or out-of-order step, and scores.json holds exactly
its episodes. Prints the counts as one JSON line (the README quotes them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def alive(pattern: str) -> int:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return len(out.stdout.split())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="random-kills-"))
    out.mkdir(parents=True, exist_ok=True)
    suite = out / "kills.yaml"
    suite.write_text(f"name: kills\ndefaults: {{steps: {args.steps}, train_ratio: 8, preset: debug, "
                     f"set: {{warmup: 5}}}}\ntasks:\n  gym_CartPole-v1: {{}}\n")
    results = out / "results"
    run = results / "kills" / "full" / "gym_CartPole-v1" / "seed_0"
    command = [sys.executable, "-m", "dreamer_bench", "run", "--suite", str(suite), "--results", str(results),
               "--checkpoint-minutes", "0.02", "--threads", "1"]
    counts = {"kills": 0, "reruns_failed": 0, "episodes_lost": 0, "processes_left": 0, "finished_before_kill": 0}
    kept: dict[int, dict] = {}  # env step → episode, as the last checkpoint before each kill counted them
    while counts["kills"] < args.kills:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.5, 8.0))
        if proc.poll() is not None:  # it finished (or failed) before this kill: no more kills
            if proc.returncode != 0:
                counts["reruns_failed"] += 1
                print(proc.stderr.read(), file=sys.stderr)
            counts["finished_before_kill"] = 1
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        counts["kills"] += 1
        time.sleep(5.0)
        counts["processes_left"] += alive(str(results))
        ckpts = sorted(p for p in (run / "checkpoint").glob("ckpt-*") if not p.name.endswith(".tmp")
                       and (p / "loop.json").exists())
        if ckpts:
            loop = json.loads((ckpts[-1] / "loop.json").read_text())
            for e in read_jsonl(run / "episodes.jsonl")[: loop["episodes"]]:
                kept[e["env_steps"]] = e
    final = subprocess.run(command, capture_output=True, text=True)
    if final.returncode != 0:
        counts["reruns_failed"] += 1
        print(final.stderr, file=sys.stderr)
    episodes = read_jsonl(run / "episodes.jsonl")
    by_step = {e["env_steps"]: e for e in episodes}
    counts["episodes_lost"] = sum(1 for x, e in kept.items() if by_step.get(x, {}).get("return") != e["return"])
    xs = [e["env_steps"] for e in episodes]
    status = json.loads((run / "status.json").read_text())
    scores = json.loads((run / "scores.json").read_text())[0]
    counts.update(done=status.get("state") == "done", episodes=len(episodes),
                  ordered_without_duplicates=xs == sorted(set(xs)),
                  scores_match_episodes=scores["xs"] == xs and scores["ys"] == [e["return"] for e in episodes],
                  attempts=status.get("attempts"), machine=os.uname().machine)
    print(json.dumps(counts))
    ok = (counts["done"] and counts["ordered_without_duplicates"] and counts["scores_match_episodes"]
          and not counts["episodes_lost"] and not counts["processes_left"] and not counts["reruns_failed"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
