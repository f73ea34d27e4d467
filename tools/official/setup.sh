#!/usr/bin/env bash
# Make the virtual environment in which the official DreamerV3 (JAX) runs on CPU.
#
#   tools/official/setup.sh CLONE [VENV]
#
# CLONE: a clone of github danijar/dreamerv3 (checked out at commit e3f0224; other commits
# are refused unless OFFICIAL_ANY_COMMIT=1). VENV: where to make the environment (default
# ~/.cache/dreamer-bench/official-venv). Installs the pinned CPU lock from
# ../shared/reference/official/ (or tools/official/requirements-cpu.lock), gymnasium and
# ale-py for our task adapters, and puts CLONE on the environment's path. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
commit=e3f02248693a79dc8b0ebd62c93683888ddaccfe
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: tools/official/setup.sh CLONE [VENV]" >&2; exit 2
fi
clone="$(cd "$1" 2>/dev/null && pwd)" || { echo "error: no folder $1 (a clone of danijar/dreamerv3)" >&2; exit 2; }
venv="${2:-$HOME/.cache/dreamer-bench/official-venv}"
[ -f "$clone/dreamerv3/main.py" ] || { echo "error: $clone has no dreamerv3/main.py: is it a clone of danijar/dreamerv3?" >&2; exit 2; }
head="$(git -C "$clone" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$head" != "$commit" ] && [ "${OFFICIAL_ANY_COMMIT:-0}" != 1 ]; then
  echo "error: $clone is at $head, not $commit (git -C $clone checkout $commit; or OFFICIAL_ANY_COMMIT=1)" >&2; exit 2
fi
lock="$here/requirements-cpu.lock"
for cand in "$here/../../../shared/reference/official/requirements-cpu.lock" "$here/requirements-cpu.lock"; do
  [ -f "$cand" ] && lock="$cand" && break
done
[ -f "$lock" ] || { echo "error: no requirements-cpu.lock found" >&2; exit 2; }
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || { echo "error: $py not found (the lock is for Python 3.11; set PYTHON=...)" >&2; exit 2; }
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
# the lock's trailing lines repeat the official requirements.txt (CUDA jax, unpinned names):
# keep only pinned lines, drop the CUDA and ROM-download ones
grep -E '^[A-Za-z0-9_.\-]+(\[[^]]*\])?==' "$lock" | grep -viE '^(jax\[cuda|autorom|ale_py|nvidia-)' > "$venv/lock.txt"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r "$venv/lock.txt" 'gymnasium>=1.0' 'ale-py==0.12.*' 'opencv-python-headless<4.13' 'numpy<2'
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n%s\n' "$clone" "$here" > "$site/dreamer_bench_official.pth"
"$venv/bin/python" -c 'import jax, dreamerv3, embodied, gymnasium; print("official environment ready: jax", jax.__version__, "on", jax.devices()[0].platform)'
echo "$venv"
