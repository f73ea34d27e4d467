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
# and OFFICIAL.queue<CPU>.out. Each job it starts is a session of its own at nice 19 whose
# autogroup is set to a low weight too (nice 19; our grid's, which runs two jobs, nice 16, the
# weight of two), so that work in a terminal (tests, reports) comes first and every run gets an
# equal share of what is left; other sessions are not touched. Prints what it started and what was running.
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
ours_running() {
  local pid
  for pid in $(pgrep -f "dreamer-bench run"); do
    args_of "$pid" | grep -qxF -- "--suite" || continue
    [ "$(args_of "$pid" | grep -xF -A1 -- "--results" | tail -n1 | xargs -r realpath -m)" = "$ours" ] && return 0
  done
  return 1
}
queue_running() {  # CPU
  local pid
  for pid in $(pgrep -f "reference_runs.sh"); do
    mapfile -t a < <(args_of "$pid")
    [ "${#a[@]}" -ge 5 ] && [ "$(realpath -m "${a[3]}")" = "$official" ] && [ "${a[4]}" = "$1" ] && return 0
  done
  return 1
}
started=()
if ours_running; then
  echo "ours: running"
else
  setsid nohup nice -n 19 dreamer-bench run --suite learning \
    --tasks gym_CartPole-v1,dmc_walker_walk,dmc_cartpole_swingup \
    --seeds 0,1,2 --set actor_unimix=0 --set replay_prefetch=true --jobs 2 --threads 1 --pack 1 \
    --checkpoint-minutes 5 --results "$ours" >>"$ours/run.out" 2>&1 </dev/null &
  started+=($!); ours_pid=$!; echo "ours: started (output in $ours/run.out)"
fi
for cpu in 0 1; do
  if queue_running "$cpu"; then
    echo "official queue on CPU $cpu: running"
  else
    COMMITTED=evidence/learning/official setsid nohup nice -n 19 bash tools/official/reference_runs.sh \
      "$venv" "$official" "$cpu" >>"$official.queue$cpu.out" 2>&1 </dev/null &
    started+=($!); echo "official queue on CPU $cpu: started (output in $official.queue$cpu.out)"
  fi
done
if [ ${#started[@]} -gt 0 ]; then
  sleep 2  # setsid has made each its own session (and autogroup) by now; their children inherit it
  # The scheduler shares the CPUs between autogroups, not processes: at one nice each, our grid's
  # two runs (one session) would get the CPU time of one official run between them. Its
  # autogroup gets the weight of two nice-19 groups instead (nice 16 weighs 29, nice 19 15), so
  # that every run, ours or official, gets an equal share.
  for pid in "${started[@]}"; do
    nice_of=19; [ "$pid" = "${ours_pid:-}" ] && nice_of=16
    [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] && echo "$nice_of" >"/proc/$pid/autogroup" 2>/dev/null || true
  done
fi
pgrep -af "tools/official/train.py|dreamer-bench run" | sed -E 's/^([0-9]+) .*(--task [^ ]+ --seed [0-9]+|--results [^ ]+).*/  pid \1: \2/'
