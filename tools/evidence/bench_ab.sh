#!/bin/bash
# Training-step throughput of two checkouts of this project, measured alternately in one run
# (size1m, vector observations: eager twice each, then compiled once each), so that the ratio
# compares like with like on one machine.
#
#   tools/evidence/bench_ab.sh BEFORE_CHECKOUT AFTER_CHECKOUT OUT_DIR
#
# Training processes of this project and of the official agent running on the machine are
# paused (SIGSTOP) for the measurement and continued afterwards, also on error or interrupt.
set -u
if [ $# -ne 3 ]; then
  echo "usage: $0 BEFORE_CHECKOUT AFTER_CHECKOUT OUT_DIR" >&2
  exit 2
fi
before=$(cd "$1" && pwd) || exit 2
after=$(cd "$2" && pwd) || exit 2
out=$3
mkdir -p "$out"
pids=$(pgrep -f "train.py|dreamer-bench run" || true)
if [ -n "$pids" ]; then
  kill -STOP $pids
  trap 'kill -CONT $pids' EXIT
fi
bench() {  # checkout name extra-args...
  local root=$1 name=$2
  shift 2
  (cd "$root" && PYTHONPATH="$root" python -m dreamer_bench bench --size size1m --obs vector \
    --updates 20 --warmup 3 --json "$out/$name.json" "$@") > "$out/$name.log" 2>&1
}
for round in 1 2; do
  bench "$before" "eager_before_$round"
  bench "$after" "eager_after_$round"
done
bench "$before" compiled_before --compile
bench "$after" compiled_after --compile
