#!/usr/bin/env bash
# Start, or resume, the learning suite's comparison with the official agent: our nine runs of
# the installed version (CartPole-v1, walker_walk and cartpole_swingup, seeds 0-2: one grid, two at a
# time) and the official DMC reference runs (two queues, one per core), each in
# the background at the lowest priority, results outside the work tree. Run it from the repository
# root at the start of a session; what is already running is left alone, so running it twice
# starts nothing twice.
#
#   tools/evidence/resume_learning.sh OURS OFFICIAL VENV
#
# OURS: our results folder (the grid resumes every run from its checkpoint; on a machine without
# it, our runs committed as finished in evidence/learning/runs_v<version>.tar.gz, e.g.
# runs_v040.tar.gz for 0.4.0, are put there first,
# so that they are not trained again). OFFICIAL: the runs folder of tools/official/reference_runs.sh
# (the official script resumes from its own checkpoints; finished or committed runs are skipped).
# VENV: the official environment of tools/official/setup.sh. Output is appended to OURS/run.out
# and OFFICIAL.queue<CPU>.out. Each job is a session of its own (setsid) at nice 19. The kernel
# shares the cores between sessions (autogroups), not processes, so each job's autogroup gets a
# weight too, also for jobs already running: our grid nice 0, each official queue nice 19 (15
# against 1,024). Our grid comes first because its runs finish within a working session (a DMC
# run 2.2 h on a core of an idle Xeon, about 2.4 h on an EPYC) while an official one does not
# (about 5 h on a Xeon core, 3.8 h on an EPYC core; 1.35 times faster on two EPYC cores): a session's machine does not always keep the previous one's
# files (it did not on 2026-12-05 00:19 and 2026-12-06 00:57), and a run not finished by then is
# lost. The official queues use what our grid leaves. Work in a terminal (nice 0) shares the
# cores equally with the grid; other sessions are not touched. Prints what it started and what was running.
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: tools/evidence/resume_learning.sh OURS OFFICIAL VENV" >&2; exit 2; }
[ -f tools/official/reference_runs.sh ] || { echo "error: run it from the repository root" >&2; exit 2; }
ours="$(realpath -m "$1")"; official="$(realpath -m "$2")"; venv="$(realpath -m "$3")"
[ -x "$venv/bin/python" ] || { echo "error: no Python in $venv (tools/official/setup.sh OFFICIAL_CLONE $venv)" >&2; exit 2; }
if ! (cd / && python -c "import dreamer_bench, torch") 2>/dev/null; then
  echo "dreamer_bench or torch does not import (a new machine, or a broken editable install): installing"
  python -m pip install -q -c constraints.txt -e '.[all,dev]' || { echo "error: the install failed" >&2; exit 1; }
fi
mkdir -p "$ours" "$official"
# our finished runs, committed: back into OURS where it lacks them (a done run is not trained again)
version="$(cd / && python -c 'import dreamer_bench; print(dreamer_bench.__version__)')"
python - "$ours" "evidence/learning/runs_v${version//./}.tar.gz" <<'PY'
import json, pathlib, sys, tarfile
ours, archive = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if archive.exists():
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            if not m.name.endswith("/status.json") or json.load(tar.extractfile(m)).get("state") != "done":
                continue
            run = m.name.rsplit("/", 1)[0]
            if (ours / run / "status.json").exists():
                continue
            tar.extractall(ours, [x for x in members if x.name == run or x.name.startswith(run + "/")], filter="data")
            print(f"ours: {run} is finished in {archive}: put into {ours}")
PY
# the jobs already running, by their exact arguments (no pattern built from a path)
args_of() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null; }
ours_running() {  # sets running_pid
  local pid
  for pid in $(pgrep -f "dreamer-bench run"); do
    args_of "$pid" | grep -qxF -- "--suite" || continue
    [ "$(args_of "$pid" | grep -xF -A1 -- "--results" | tail -n1 | xargs -r realpath -m)" = "$ours" ] && running_pid=$pid && return 0
  done
  return 1
}
queue_running() {  # CPU
  local pid
  for pid in $(pgrep -f "reference_runs.sh"); do
    mapfile -t a < <(args_of "$pid")
    [ "${#a[@]}" -ge 5 ] && [ "$(realpath -m "${a[3]}")" = "$official" ] && [ "${a[4]}" = "$1" ] && running_pid=$pid && return 0
  done
  return 1
}
weights=()  # "PID NICE": each job's autogroup weight, set below
started=0
if ours_running; then
  echo "ours: running"; weights+=("$running_pid 0")
else
  setsid nohup nice -n 19 dreamer-bench run --suite learning \
    --tasks gym_CartPole-v1,dmc_walker_walk,dmc_cartpole_swingup \
    --seeds 0,1,2 --set actor_unimix=0 --set replay_prefetch=true --jobs 2 --threads 1 --pack 1 \
    --checkpoint-minutes 5 --results "$ours" >>"$ours/run.out" 2>&1 </dev/null &
  weights+=("$! 0"); started=1; echo "ours: started (output in $ours/run.out)"
fi
for cpu in 0 1; do
  if queue_running "$cpu"; then
    echo "official queue on CPU $cpu: running"; weights+=("$running_pid 19")
  else
    COMMITTED=evidence/learning/official setsid nohup nice -n 19 bash tools/official/reference_runs.sh \
      "$venv" "$official" "$cpu" >>"$official.queue$cpu.out" 2>&1 </dev/null &
    weights+=("$! 19"); started=1; echo "official queue on CPU $cpu: started (output in $official.queue$cpu.out)"
  fi
done
[ "$started" = 1 ] && sleep 2  # setsid has made each new job a session (and autogroup) by now
for item in "${weights[@]}"; do
  read -r pid nice_of <<<"$item"
  # only a job that leads its own session (never this terminal's autogroup)
  [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] && echo "$nice_of" >"/proc/$pid/autogroup" 2>/dev/null \
    || echo "warning: pid $pid: its autogroup was not set (not a session of its own)" >&2
done
pgrep -af "tools/official/train.py|dreamer-bench run" | sed -E 's/^([0-9]+) .*(--task [^ ]+ --seed [0-9]+|--results [^ ]+).*/  pid \1: \2/'
