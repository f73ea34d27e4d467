#!/usr/bin/env bash
# The speed cost of MKL's COMPATIBLE code branch (README, "Reproducibility"): our training update at
# the `learning` suite's settings (size1m, vector, fp32, compiled, one thread), twice each way,
# alternating, in fresh processes. Run on 2026-12-06 at about 04:20 UTC on the Intel Xeon (family 6
# model 167, AMX) in an autogroup of its own beside our two-run grid, so with one core of the two.
# Output: cbwr_<setting>_<repeat>.json here. (The committed files came from the same commands run
# from /tmp and copied here; the no-op variable of the default runs was named X there.)
set -euo pipefail
cd "$(dirname "$0")"
for i in 1 2; do
  for v in AUTO_default COMPATIBLE; do
    if [ "$v" = COMPATIBLE ]; then e="MKL_CBWR=COMPATIBLE"; else e="MKL_CBWR_UNSET=1"; fi
    env "$e" dreamer-bench bench --size size1m --obs vector --precision fp32 --compile --updates 40 \
      --warmup 5 --threads 1 --set actor_unimix=0 --json "cbwr_${v}_${i}.json"
  done
done
