#!/usr/bin/env bash
# Do two single-thread official runs side by side train faster than one run on both cores?
#
#   tools/official/measure_side_by_side.sh VENV OUT [SECONDS]
#
# Runs the official agent on gym_CartPole-v1 at the learning suite's settings (size1m, train
# ratio 128) for SECONDS (default 600) each way, on an otherwise idle 2-core machine: once as one
# process on CPUs 0-1, then as two processes pinned to CPU 0 and CPU 1. Prints each process's
# training speed (updates/s, from the official metrics' fps/train over the log intervals after
# the first, divided by the 1,024 replayed steps of an update) and the ratio of the totals.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 2 ] || { echo "usage: tools/official/measure_side_by_side.sh VENV OUT [SECONDS]" >&2; exit 2; }
venv="$1"; out="$2"; secs="${3:-600}"
rm -rf "$out"; mkdir -p "$out"
run() {  # cpus dir
  timeout "$secs" taskset -c "$1" "$venv/bin/python" "$here/train.py" --task gym_CartPole-v1 --seed 0 \
    --steps 30000 --train-ratio 128 --logdir "$2" --save-every 100000 >"$2.log" 2>&1
}
speed() {
  "$venv/bin/python" - "$1/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"fps/train"' in l]
fps = [r["fps/train"] for r in rows[1:]] or [r["fps/train"] for r in rows]
print(f"{sum(fps) / len(fps) / 1024:.3f}" if fps else "nan")
PY
}
run 0,1 "$out/one_two_threads"
run 0 "$out/side_a" & run 1 "$out/side_b" & wait
one=$(speed "$out/one_two_threads"); a=$(speed "$out/side_a"); b=$(speed "$out/side_b")
echo "one process on 2 cores: $one updates/s"
echo "two processes on 1 core each: $a + $b updates/s"
python3 -c "print(f'side by side / one: {($a + $b) / $one:.2f}x')"
grep -m1 "model name" /proc/cpuinfo
