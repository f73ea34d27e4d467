"""The official agent's training speed in its running DMC seed-2 reference runs (one queue per core,
tools/official/reference_runs.sh): phase A, each run on its own core; phase B, the walker_walk run
alone with its affinity widened to both cores (cartpole_swingup stopped with SIGSTOP, both restored
after). Per phase and run: env steps/s (the metrics' `step`), cores used (/proc), and updates/s
(mean `fps/train` / 1,024 over the metrics rows logged in the phase). Prints one JSON line per phase.

    python evidence/learning/analysis/official_one_and_two_cores.py OFFICIAL_RUNS [SECONDS]

Run it while nothing else trains. XLA sizes its thread pool when the process starts, so phase B
shows whether a widened affinity is used at all, not the speed of a run started on both cores."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
RUNS = Path(sys.argv[1]); PH = int(sys.argv[2]) if len(sys.argv) > 2 else 600
def pid(task):
    out = subprocess.run(["pgrep", "-f", f"train.py --task {task} --seed 2"], capture_output=True, text=True).stdout.split()
    return int(out[0])
def rows(task):
    return [json.loads(l) for l in open(RUNS / task / "seed_2" / "metrics.jsonl")]
def cpu(p):
    f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split(); return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def phase(name, tasks):
    n0 = {t: len(rows(t)) for t in tasks}; s0 = {t: max(r.get("step", 0) for r in rows(t)) for t in tasks}
    c0 = {t: cpu(pid(t)) for t in tasks}; t0 = time.time(); time.sleep(PH); dt = time.time() - t0
    out = {}
    for t in tasks:
        rs = rows(t); new = [r["fps/train"] for r in rs[n0[t]:] if "fps/train" in r]
        s1 = max(r.get("step", 0) for r in rs)
        out[t] = {"env_steps_per_s": (s1 - s0[t]) / dt, "cores": (cpu(pid(t)) - c0[t]) / dt,
                  "updates_per_s_fps_train": sum(new) / len(new) / 1024 if new else None, "log_rows": len(new)}
    print(json.dumps({"phase": name, "seconds": round(dt), **out}), flush=True)
w, s = pid("dmc_walker_walk"), pid("dmc_cartpole_swingup")
phase("A: one core each", ["dmc_walker_walk", "dmc_cartpole_swingup"])
os.kill(s, signal.SIGSTOP); subprocess.run(["taskset", "-a", "-p", "-c", "0,1", str(w)], capture_output=True)
try:
    phase("B: walker alone on both cores", ["dmc_walker_walk"])
finally:
    subprocess.run(["taskset", "-a", "-p", "-c", "0", str(w)], capture_output=True); os.kill(s, signal.SIGCONT)
subprocess.run(["grep", "-m1", "model name", "/proc/cpuinfo"])
