#!/usr/bin/env bash
# The reference runs of the official agent at the `learning` suite's settings (suites/learning.yaml:
# size1m, one environment; CartPole-v1 30K env steps, repeat 1, train ratio 128; DMC proprio
# 50K env steps, repeat 2, train ratio 512), one after another, each resumable.
#
#   tools/official/reference_runs.sh VENV RUNS [CPUS]
#
# VENV: from tools/official/setup.sh. RUNS: a folder outside the work tree; each run lives in
# RUNS/<task>/seed_<n>/ and is marked done by a file `done`. CPUS: a taskset CPU list to pin the
# queue to (default: all). Rerun the same command after a stop: finished runs are skipped and the
# interrupted one resumes from its last checkpoint (the official script's own resume). Start one
# queue per core to run two at a time (the README's "Proven equal" section has the measurement);
# a run held by one queue is skipped by the others. COMMITTED=evidence/learning/official
# skips the runs already committed there (on a fresh machine, RUNS starts empty).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { echo "usage: tools/official/reference_runs.sh VENV RUNS [CPUS]" >&2; exit 2; }
venv="$1"; runs="$2"; cpus="${3:-}"
[ -x "$venv/bin/python" ] || { echo "error: no Python in $venv (run tools/official/setup.sh first)" >&2; exit 2; }
mkdir -p "$runs"
pin=()
[ -n "$cpus" ] && pin=(taskset -c "$cpus")
queue=(
  "gym_CartPole-v1 0 30000 1 128" "gym_CartPole-v1 1 30000 1 128" "gym_CartPole-v1 2 30000 1 128"
  "gym_CartPole-v1 3 30000 1 128" "gym_CartPole-v1 4 30000 1 128"
  "dmc_walker_walk 0 50000 2 512" "dmc_cartpole_swingup 0 50000 2 512"
  "dmc_walker_walk 1 50000 2 512" "dmc_cartpole_swingup 1 50000 2 512"
  "dmc_walker_walk 2 50000 2 512" "dmc_cartpole_swingup 2 50000 2 512"
)
for item in "${queue[@]}"; do
  read -r task seed steps repeat ratio <<<"$item"
  dir="$runs/$task/seed_$seed"
  [ -f "$dir/done" ] && continue
  # runs an earlier session finished and committed (tools/official/collect.py): not run again
  [ -n "${COMMITTED:-}" ] && [ -f "$COMMITTED/$task/seed_$seed/done" ] && continue
  mkdir -p "$dir"
  # several queues may share RUNS (e.g. one per core): each run is taken by one of them
  exec 9>"$dir/lock"
  flock -n 9 || { exec 9>&-; continue; }
  echo "$(date -Is) start $task seed $seed" >>"$runs/queue.log"
  start=$(date +%s)
  if "${pin[@]}" "$venv/bin/python" "$here/train.py" --task "$task" --seed "$seed" --steps "$steps" \
      --repeat "$repeat" --train-ratio "$ratio" --logdir "$dir" >>"$dir/stdout.log" 2>&1; then
    echo "$(date -Is) wall_s=$(( $(date +%s) - start ))" >"$dir/done"
    echo "$(date -Is) done $task seed $seed ($(( $(date +%s) - start )) s)" >>"$runs/queue.log"
  else
    echo "$(date -Is) failed $task seed $seed (see $dir/stdout.log)" >>"$runs/queue.log"
    exit 1
  fi
  exec 9>&-
done
