#!/usr/bin/env bash
# Start, or resume, the learning suite's DMC comparison with the official agent: our six runs
# (one grid, two at a time) and the official reference runs (two queues, one per core), each in
# the background at the lowest priority, results outside the work tree. Run it from the repository
# root at the start of a session; what is already running is left alone, so running it twice
# starts nothing twice.
#
#   tools/evidence/resume_dmc.sh OURS OFFICIAL VENV
#
# OURS: our results folder (the grid resumes every run from its checkpoint). OFFICIAL: the runs
# folder of tools/official/reference_runs.sh (the official script resumes from its own
# checkpoints; finished or committed runs are skipped). VENV: the official environment of
# tools/official/setup.sh. Each queue's and the grid's output is appended to OFFICIAL/../*.out and
# OURS/run.out. Every process goes at nice 19 in an autogroup of nice 19, so that work in a
# terminal (tests, reports) comes first. Prints what it started and what was running.
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: tools/evidence/resume_dmc.sh OURS OFFICIAL VENV" >&2; exit 2; }
ours="$1"; official="$2"; venv="$3"
[ -f tools/official/reference_runs.sh ] || { echo "error: run it from the repository root" >&2; exit 2; }
[ -x "$venv/bin/python" ] || { echo "error: no Python in $venv (tools/official/setup.sh OFFICIAL_CLONE $venv)" >&2; exit 2; }
if ! (cd / && python -c "import dreamer_bench") 2>/dev/null; then
  echo "dreamer_bench does not import (a new machine, or a broken editable install): installing"
  pip install -q -c constraints.txt -e '.[all,dev]' || { echo "error: the install failed" >&2; exit 1; }
fi
mkdir -p "$ours" "$official"
started=0
running() { pgrep -f -- "$1" >/dev/null; }
if running "dreamer-bench run --suite learning .*--results $ours"; then
  echo "ours: running"
else
  setsid nohup nice -n 19 dreamer-bench run --suite learning --tasks dmc_walker_walk,dmc_cartpole_swingup \
    --seeds 0,1,2 --set actor_unimix=0 --set replay_prefetch=true --jobs 2 --threads 1 --pack 1 \
    --checkpoint-minutes 5 --results "$ours" >>"$ours/run.out" 2>&1 </dev/null &
  echo "ours: started (output in $ours/run.out)"; started=1
fi
for cpu in 0 1; do
  if running "reference_runs.sh $venv $official $cpu\$"; then
    echo "official queue on CPU $cpu: running"
  else
    COMMITTED=evidence/learning/official setsid nohup nice -n 19 bash tools/official/reference_runs.sh \
      "$venv" "$official" "$cpu" >>"$official.queue$cpu.out" 2>&1 </dev/null &
    echo "official queue on CPU $cpu: started (output in $official.queue$cpu.out)"; started=1
  fi
done
if [ "$started" = 1 ]; then
  sleep 10  # the grid's workers and the official processes start within seconds
fi
for pid in $(pgrep -f "reference_runs.sh|tools/official/train.py|dreamer-bench run|popen_loky_posix"); do
  echo 19 >"/proc/$pid/autogroup" 2>/dev/null || true
done
pgrep -af "tools/official/train.py|dreamer-bench run" | sed -E 's/^([0-9]+) .*(--task [^ ]+ --seed [0-9]+|--results [^ ]+).*/  pid \1: \2/'
