#!/usr/bin/env bash
# The learning suite's comparison with the official agent, as far as its runs have come, into the
# repository's evidence (never checkpoints): run it from the repository root at the end of a
# session, while the runs go on, and commit what it wrote.
#
#   tools/evidence/learning_progress.sh OURS OFFICIAL
#
# OURS: the --results folder of our runs (tools/evidence/resume_learning.sh: the installed
# version, CartPole-v1, walker_walk and cartpole_swingup). OFFICIAL: the runs folder of
# tools/official/reference_runs.sh. Writes
# - evidence/learning/official/ (tools/official/collect.py: unfinished runs marked so, a committed
#   copy kept until a rerun has come further) and its gzipped copy in the package,
#   dreamer_bench/report/published/learning-official.json.gz (what `report --compare official` reads);
# - evidence/learning/runs_v<version>.tar.gz, e.g. runs_v040.tar.gz for 0.4.0 (tools/evidence/pack.py
#   --update: every run of ours that has started, each copy kept until a rerun has come further);
# - evidence/learning/report_official/: the report of the comparison (--include-unfinished, so that
#   runs still training are drawn, not judged) and per task the training metrics of the seeds both
#   sides have (tools/official/compare_metrics.py): metrics_cartpole/, metrics_walker_walk/,
#   metrics_cartpole_swingup/.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: tools/evidence/learning_progress.sh OURS OFFICIAL" >&2; exit 2; }
ours="$1"; official="$2"; ev=evidence/learning
[ -d "$ours/learning/full" ] || { echo "error: no runs of the learning suite in $ours" >&2; exit 2; }
[ -d "$official" ] || { echo "error: no folder $official" >&2; exit 2; }
[ -f tools/evidence/pack.py ] || { echo "error: run it from the repository root" >&2; exit 2; }
version="$(python -c 'import dreamer_bench; print(dreamer_bench.__version__)')"
archive="$ev/runs_v${version//./}.tar.gz"
python tools/official/collect.py "$official" "$ev/official" --package dreamer_bench/report/published/learning-official.json.gz
started=()
for d in "$ours"/learning/full/*/seed_*; do
  if python -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("env_steps", 0) > 0 else 1)' \
      "$d/status.json" 2>/dev/null; then
    started+=("$d")
  fi
done
[ ${#started[@]} -gt 0 ] || { echo "error: none of our runs in $ours has started" >&2; exit 2; }
python tools/evidence/pack.py --update "$archive" "${started[@]}"
python -m dreamer_bench report "$archive" --compare official \
  --include-unfinished --compare dreamerv3 --out "$ev/report_official"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$archive" -C "$tmp"
for task in gym_CartPole-v1 dmc_walker_walk dmc_cartpole_swingup; do
  mine=(); theirs=()
  for d in "$tmp"/learning/full/$task/seed_*; do
    [ -d "$d" ] && [ -d "$ev/official/$task/$(basename "$d")" ] || continue
    mine+=("$d"); theirs+=("$ev/official/$task/$(basename "$d")")
  done
  [ ${#mine[@]} -gt 0 ] || continue
  case "$task" in gym_CartPole-v1) name=cartpole ;; *) name="${task#dmc_}" ;; esac
  python tools/official/compare_metrics.py --ours "${mine[@]}" --official "${theirs[@]}" \
    --out "$ev/report_official/metrics_$name"
done
