#!/usr/bin/env bash
# The GPU checks in one call, under 8 minutes on one NVIDIA H200: run in the repo root of a fresh copy.
#
#   bash contrib/benchmarks/gpu_suite.sh              # on the GPU machine: writes under $OUT, else gpu-suite-out/
#   bash contrib/benchmarks/gpu_suite.sh --dry-run    # here, on a CPU: the same steps, tiny and in float32
#   (TAP_SUITE_DRY_RUN=1 does the same as --dry-run; TAP_SUITE_BUDGET=seconds sets the whole run's budget, 450 by default)
#
# Steps, each under a timeout taken from what is left of the budget, each logged to OUT/suite.log; a step that
# fails or times out is reported and the next one still runs (the exit status is then 1):
#   1. the CUDA tests: python -m pytest -q tests/test_cuda.py (they skip without CUDA);
#   2. contrib/benchmarks/compiled_speed.py at 28 and 50 steps (FLUX.1-dev's architecture, random weights, bfloat16,
#      4096 image + 512 text tokens): eager and regionally compiled, full compute and tap, check_finite on and off;
#      writes OUT/compiled/compiled_speed.{json,md} after every row, so a run cut short keeps what it measured;
#   3. tap bench --quick --device cuda --dtype bfloat16 on the demo model: writes OUT/bench/.
#
# Python: a .venv that already imports torch, diffusers and tap is used as it is. Otherwise, with a folder of wheels
# (TAP_WHEELS, default .whl; the GPU machine reaches no package registry), a .venv is made over the machine's own
# python3 and its CUDA torch (--system-site-packages) and tap is installed into it from those wheels alone. The GPU
# machine lacks diffusers and importlib_metadata; fetch them here, where pip works, and carry .whl:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl diffusers==0.42.1 importlib_metadata
# With neither, scripts/setup-env installs everything from the registry, with TAP_TORCH=torch==2.14.1 (a CUDA build
# on Linux) unless TAP_TORCH is set or python3 already holds a CUDA torch (then reused).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DRY_RUN="${TAP_SUITE_DRY_RUN:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument $arg (only --dry-run)" >&2; exit 2 ;;
  esac
done
OUT_DIR="${OUT:-gpu-suite-out}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/suite.log"
: >"$LOG"
BUDGET="${TAP_SUITE_BUDGET:-450}"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10  # tqdm redraws at most every 10 s in the log
FAILED=()

say() { echo "== $(date -u +%H:%M:%S) [${SECONDS}s] $*" | tee -a "$LOG"; }

# timeout for a step: at most CAP seconds, and never into the RESERVE seconds kept for the steps after it.
budget() {
  local cap=$1 reserve=$2 left=$((BUDGET - SECONDS - $2))
  if ((left < cap)); then cap=$left; fi
  if ((cap < 10)); then cap=10; fi
  echo "$cap"
}

# step NAME CAP RESERVE COMMAND...: run COMMAND under a timeout, its output into the log; note a failure, go on.
step() {
  local name=$1 limit
  limit=$(budget "$2" "$3")
  shift 3
  say "$name (timeout ${limit}s): $*"
  local rc=0
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=$?
  if ((rc != 0)); then
    FAILED+=("$name (exit $rc$( ((rc == 124 || rc == 137)) && echo ", timed out after ${limit}s"))")
    echo | tee -a "$LOG"  # after a progress bar cut short
    say "$name FAILED with exit $rc"
  else
    say "$name done"
  fi
}

setup_python() {
  local wheels="${TAP_WHEELS:-.whl}"
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, diffusers, tqdm, tap, tap_plugins.demo" 2>/dev/null; then
    say "using the existing .venv"
  elif [ -d "$wheels" ]; then
    say "installing tap into a .venv over python3's own torch, from $wheels alone (no registry)"
    [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
    .venv/bin/python -m pip install --quiet --no-index --find-links "$wheels" --no-build-isolation \
      -e ".[test]" -e contrib/tap-lsq -e tests/plugins/tap-odd 2>&1 | tee -a "$LOG"
  else
    if [ ! -x .venv/bin/python ] && python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
      say "reusing python3's CUDA torch in a new .venv"
      python3 -m venv --system-site-packages .venv
    fi
    say "scripts/setup-env (TAP_TORCH=${TAP_TORCH:-torch==2.14.1})"
    (TAP_TORCH="${TAP_TORCH:-torch==2.14.1}" . scripts/setup-env) 2>&1 | tee -a "$LOG"
  fi
}

say "gpu_suite.sh: dry run $DRY_RUN, budget ${BUDGET}s, output in $OUT_DIR"
setup_python
PY=.venv/bin/python
{
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  "$PY" -c "import sys, torch, diffusers, tap; print('python', sys.version.split()[0], '| torch', torch.__version__, '| diffusers', diffusers.__version__, '| tap', tap.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} 2>&1 | tee -a "$LOG"

if [ "$DRY_RUN" = 1 ]; then
  SPEED_ARGS=(--device cpu --tiny --dtype float32 --steps 20 --repeats 2)
  BENCH_ARGS=(--quick --device cpu --dtype float32 --steps 20 --repeats 1 --no-peers)
else
  SPEED_ARGS=(--device cuda --dtype bfloat16 --steps 28 50 --tokens 4096 --text-tokens 512 --repeats 2)
  BENCH_ARGS=(--quick --device cuda --dtype bfloat16)
fi
if [ "${TAP_SUITE_NO_COMPILE:-0}" = 1 ]; then SPEED_ARGS+=(--no-compile); fi

# caps: 60 s, 330 s, 60 s (FLUX.1-dev's size, estimated: about 250 s with the compilations); reserves: what the
# later steps need at the least.
step "cuda-tests" 60 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py
step "compiled-speed" 330 45 "$PY" contrib/benchmarks/compiled_speed.py "${SPEED_ARGS[@]}" --out "$OUT_DIR/compiled"
step "tap-bench" 60 0 "$PY" -m tap bench "${BENCH_ARGS[@]}" --out "$OUT_DIR/bench"

say "finished in ${SECONDS}s; files under $OUT_DIR:"
find "$OUT_DIR" -type f | sort | tee -a "$LOG"
if ((${#FAILED[@]})); then
  say "failed steps: ${FAILED[*]}"
  exit 1
fi
say "all steps passed"
