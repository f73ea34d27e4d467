#!/usr/bin/env bash
# Which CPU-dependent library makes our runs differ between CPU models (README, "Reproducibility")?
# Trains the `learning` suite's walker_walk seed 0 for 1,100 env steps (its first episode, acted by
# the untrained policy before any update) once per setting below, each in a fresh process, and
# prints the first episode's return. Caps on the instruction sets of ATen's kernels
# (ATEN_CPU_CAPABILITY) and of oneDNN (ONEDNN_MAX_CPU_ISA) leave a library's arithmetic as it is
# on this CPU unless that library is on the policy's path; MKL_CBWR fixes MKL's code branch.
#
#   evidence/learning/analysis/mkl_branch.sh [SCRATCH]     # about 1 min per setting on a free core
#
# SCRATCH (default: a temporary folder) receives the runs. Output: one line per setting.
set -uo pipefail
scratch="${1:-$(mktemp -d)}"
mkdir -p "$scratch"
settings=(
  "none"
  "ATEN_CPU_CAPABILITY=avx2"
  "ONEDNN_MAX_CPU_ISA=AVX2"
  "MKL_CBWR=AVX512"
  "MKL_CBWR=AVX2"
  "MKL_CBWR=COMPATIBLE"
)
python - <<'PY'
from dreamer_bench.machine import cpu_description
print("cpu:", cpu_description())
PY
for setting in "${settings[@]}"; do
  out="$scratch/${setting//[=]/_}"
  rm -rf "$out"
  env ${setting/none/} MUJOCO_GL=egl dreamer-bench run --suite learning --tasks dmc_walker_walk \
    --seeds 0, --steps 1100 --set actor_unimix=0 --set replay_prefetch=true --jobs 1 --threads 1 --results "$out" >"$out.log" 2>&1 \
    || { echo "$setting: the run failed, see $out.log"; continue; }
  python - "$setting" "$out/learning/full/dmc_walker_walk/seed_0/episodes.jsonl" <<'PY'
import json, sys
first = json.loads(open(sys.argv[2]).readline())
print(f"{sys.argv[1]:28s} first episode return {first['return']:.9f}")
PY
done
