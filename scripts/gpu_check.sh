#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU, sized for one short lease: a preflight, the kernel
# benchmark, a LeNet-5 step against PyTorch on the same GPU, µs per launch, the profiler table of
# one step and the cuda-backend tests, each part under its own time limit, in 360 s by default,
# packed into summary.txt + gpu-check.tar.gz in $OUT (or --out, or benchmarks/results/). See usage.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bash scripts/gpu_check.sh [--dry-run] [--plan] [--out DIR] [--budget SECONDS] [--only PART,...]

On a machine with an NVIDIA GPU, runs and records, each part under its own time limit:
  preflight    benchmarks/gpu_preflight.py: versions, libNVVM, a compile_ptx, one real launch,
               the fast-route probe and one LeNet-5 step against the numpy backend; if it fails,
               it says what is missing and nothing else runs
  kernels      benchmarks/bench_cuda_kernels.py (each kernel vs copy bandwidth and PyTorch)
  lenet-step   benchmarks/gpu_step.py --graphs: LeNet-5 SGD step, gpunet vs PyTorch, eager and
               captured as a CUDA graph, batch 64 and 256, separate processes, 3 alternating
               rounds, median [min-max], host us per step
  launch       benchmarks/launch_overhead.py: µs per launch, ours vs CuPy vs PyTorch
  profile      benchmarks/gpu_step.py --profile: gn.profiler table of one LeNet step
  tests        the cuda-backend test files on the real GPU, in parallel, 60 s per test at most
The limits add up to the budget, 360 s by default (--plan prints them): one 10-minute command
on a lent machine leaves time to look and rerun.  A failing part is reported and the rest still
run; the exit status is 1 if any part failed.

Results: two files in $OUT when it is set, else in --out DIR, else in
benchmarks/results/<gpu-name>-<date>/: summary.txt and gpu-check.tar.gz (each part's output
<n>-<part>.txt, and JSON where a part has numbers).

It installs nothing: python3 (or .venv/bin/python, or $PYTHON) must import numpy, cupy,
numba.cuda and pytest (it says which is missing). --install makes .venv and installs
gpunet[cuda12] or gpunet[cuda13] with the bench extra from a package index, where there is one.

--only      run only these parts (comma-separated names from the list above)
--dry-run   no GPU needed: the same Python entry points in Numba's CUDA simulator
            (NUMBA_ENABLE_CUDASIM=1) on tiny sizes, PyTorch on the CPU, CuPy rows skipped, and a
            small subset of the tests; results go to a temporary folder unless --out is given.
            Its figures mean nothing for speed. CI runs it (tests/test_gpu_check_dry_run.py).
EOF
}

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PARTS="preflight kernels lenet-step launch profile tests"
# Each part's limit in seconds, on a GPU and in the dry run; the budget defaults to their sum.
LIMITS_GPU="preflight:30 kernels:45 lenet-step:130 launch:30 profile:25 tests:100"
LIMITS_DRY="preflight:60 kernels:90 lenet-step:150 launch:60 profile:60 tests:120"
dry_run=0 plan=0 install=0 out="${OUT:-}" budget="" only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --plan) plan=1 ;;
    --install) install=1 ;;
    --out) [ $# -ge 2 ] || { echo "gpu_check.sh: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --budget) [ $# -ge 2 ] || { echo "gpu_check.sh: --budget needs seconds" >&2; exit 2; }; budget=$2; shift ;;
    --only) [ $# -ge 2 ] || { echo "gpu_check.sh: --only needs part names" >&2; exit 2; }; only=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
limits=$([ "$dry_run" = 1 ] && echo "$LIMITS_DRY" || echo "$LIMITS_GPU")
limit_of() { local kv; for kv in $limits; do [ "${kv%%:*}" = "$1" ] && echo "${kv#*:}"; done; }
planned=0; for kv in $limits; do planned=$((planned + ${kv#*:})); done
budget=${budget:-$planned}
if [ "$plan" = 1 ]; then
  echo "plan ($([ "$dry_run" = 1 ] && echo dry run || echo GPU)): ${limits} = ${planned} s (budget ${budget} s)"
  exit 0
fi
case "$budget" in ''|*[!0-9]*) echo "gpu_check.sh: --budget must be whole seconds, got '$budget'" >&2; exit 2 ;; esac
for part in ${only//,/ }; do
  case " $PARTS " in *" $part "*) ;; *)
    echo "gpu_check.sh: --only got '$part'; the parts are: $PARTS" >&2; exit 2 ;;
  esac
done

cuda_extra() {  # cuda13 when nvidia-smi reports CUDA >= 13, else cuda12
  local major
  major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ "${major:-0}" -ge 13 ]; then echo cuda13; else echo cuda12; fi
}

if [ "$dry_run" = 1 ]; then
  export NUMBA_ENABLE_CUDASIM=1
  needs="import numpy, numba.cuda, pytest"
  out=${out:-$(mktemp -d "${TMPDIR:-/tmp}/gpunet-gpu-check-dry.XXXXXX")}
else
  unset NUMBA_ENABLE_CUDASIM
  if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check.sh: no NVIDIA GPU here (nvidia-smi -L failed); --dry-run checks this script" \
         "in Numba's CUDA simulator" >&2
    exit 2
  fi
  needs="import numpy, cupy, numba.cuda, pytest"
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
  slug=$(printf '%s' "$gpu" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-*//; s/-*$//')
  out=${out:-benchmarks/results/${slug:-gpu}-$(date +%Y-%m-%d)}
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

PY=""
for candidate in "${PYTHON:-}" .venv/bin/python python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c "$needs" >/dev/null 2>&1; then PY=$candidate; break; fi
done
if [ -z "$PY" ] && [ "$install" = 1 ]; then
  [ "$dry_run" = 1 ] && extras="bench" || extras="$(cuda_extra),bench"
  echo "gpu_check.sh: installing .[${extras}] into .venv from the package index (--install)"
  [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
  .venv/bin/python -m pip install -q -e ".[${extras}]" "pytest>=8" "pytest-xdist>=3" \
    "hypothesis>=6.100" "safetensors>=0.4"
  PY=.venv/bin/python
fi
if [ -z "$PY" ]; then
  for candidate in "${PYTHON:-}" .venv/bin/python python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
      missing=$("$candidate" -c "import importlib.util as u; print(', '.join(m for m in ('numpy', 'cupy', 'numba', 'pytest') if u.find_spec(m) is None) or 'numba.cuda')" 2>&1 || true)
      echo "gpu_check.sh: $candidate cannot import: $missing" >&2
    fi
  done
  echo "gpu_check.sh: nothing installed (no package index is assumed): carry wheels, or pass --install" >&2
  exit 2
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpunet-gpu-check.XXXXXX")  # the part files, packed at the end
summary="$work/summary.txt"
deadline=$((SECONDS + budget))
failed=()
{
  echo "# gpunet GPU check$([ "$dry_run" = 1 ] && echo ' — DRY RUN: simulator, figures mean nothing for speed')"
  commit="not a git checkout"
  if git rev-parse --short HEAD >/dev/null 2>&1; then
    commit="commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' + local changes')"
  fi
  echo "# $(date -Iseconds)  $commit"
  [ "$dry_run" = 1 ] || echo "# gpu $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"
  echo "# python $PY ($("$PY" -c 'import platform; print(platform.python_version())'))  budget ${budget}s"
  echo "# plan: ${limits} = ${planned} s"
} > "$summary"
cat "$summary"

# run_part NAME LIMIT_S FILE EXPECT COMMAND...: stdout+stderr to $out/FILE, a line in summary.
# A part passes when COMMAND exits 0 within its limit and its output matches the regex EXPECT
# (so a benchmark that says "no GPU" and exits 0 still fails here).
run_part() {
  local name=$1 limit=$2 file=$3 expect=$4 rc=0 t0=$SECONDS status
  shift 4
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then
    printf '%-11s %-28s\n' "$name" "skipped (--only)" | tee -a "$summary"
    return 0
  fi
  local left=$((deadline - SECONDS))
  [ "$limit" -le "$left" ] || limit=$left
  if [ "$limit" -le 0 ]; then
    status="NOT RUN (budget spent)"; rc=1; echo "$status" > "$work/$file"
  else
    echo "== $name (limit ${limit}s) -> $file"
    timeout --kill-after=5 "$limit" "$@" > "$work/$file" 2>&1 || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMED OUT after ${limit}s"
    elif [ "$rc" != 0 ]; then status="FAILED (exit $rc)"
    elif ! grep -qE -- "$expect" "$work/$file"; then status="FAILED (output lacks /$expect/)"; rc=1
    else status="ok"; fi
  fi
  if [ "$rc" != 0 ]; then
    failed+=("$name")
    tail -n 15 "$work/$file" | sed 's/^/   | /'
  fi
  printf '%-11s %-28s %5ss  %s\n' "$name" "$status" "$((SECONDS - t0))" "$file" | tee -a "$summary"
}

# The cuda-backend test files (each op on both backends, the kernels, the GPU step, the profiler).
CUDA_TESTS=(tests/test_cuda_kernels.py tests/test_cuda_kernels_fused.py tests/test_cuda_kernels_recurrent.py
            tests/test_cuda_launch.py tests/test_cuda_ptx.py tests/test_cuda_fallback.py
            tests/test_cuda_versions.py tests/test_gpu_step.py tests/test_profiler.py tests/test_cuda_kernels_random.py
            tests/test_backends.py tests/test_geometry_property.py tests/test_pytorch_api.py)

finish() {  # $1: the last summary line; packs the part files into $out
  echo "$1" | tee -a "$summary"
  tar czf "$out/gpu-check.tar.gz" -C "$work" . && cp "$summary" "$out/summary.txt"
  rm -rf "$work"
}

dry=()
[ "$dry_run" = 1 ] && dry=(--dry-run)
run_part preflight "$(limit_of preflight)" 1-preflight.txt "^preflight: ok" \
  "$PY" benchmarks/gpu_preflight.py ${dry[@]+"${dry[@]}"}
if [[ " ${failed[*]-} " == *" preflight "* ]]; then
  finish "FAILED: preflight (see 1-preflight.txt); nothing else was run; results in $out"
  exit 1
fi
if [ "$dry_run" = 1 ]; then
  echo "dry run: the tests part runs a small subset; the cuda test files run on a GPU" \
    | tee -a "$summary"
  run_part kernels "$(limit_of kernels)" 2-kernels.txt "^# every result matches" \
    "$PY" benchmarks/bench_cuda_kernels.py --smoke --reps 1 --no-torch
  run_part lenet-step "$(limit_of lenet-step)" 3-lenet-step.txt "ratio gpunet/PyTorch" \
    "$PY" benchmarks/gpu_step.py --dry-run --batches 2 --rounds 1 --reps 1 --graphs \
    --json "$work/3-lenet-step.json"
  run_part launch "$(limit_of launch)" 4-launch.txt "^gpunet _launch.launch" \
    "$PY" benchmarks/launch_overhead.py --dry-run --launches 3 --reps 1 --rounds 2 --n 64 \
    --json "$work/4-launch.json"
  run_part profile "$(limit_of profile)" 5-profile.txt "^total " \
    "$PY" benchmarks/gpu_step.py --dry-run --profile --batch 2
  run_part tests "$(limit_of tests)" 6-tests.txt "[0-9]+ passed" \
    env GPUNET_TEST_TIMEOUT=60 "$PY" -m pytest -q -p no:cacheprovider -p no:xdist \
    tests/test_cuda_versions.py tests/test_cuda_kernels.py::test_relu \
    tests/test_cuda_kernels.py::test_backend_identity
else
  workers=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  xdist=()
  if "$PY" -c "import xdist" >/dev/null 2>&1; then xdist=(-n "$workers"); fi
  run_part kernels "$(limit_of kernels)" 2-kernels.txt "^# every result matches" \
    "$PY" benchmarks/bench_cuda_kernels.py
  run_part lenet-step "$(limit_of lenet-step)" 3-lenet-step.txt "ratio gpunet/PyTorch" \
    "$PY" benchmarks/gpu_step.py --batches 64 256 --rounds 3 --graphs --json "$work/3-lenet-step.json"
  run_part launch "$(limit_of launch)" 4-launch.txt "^cupy ElementwiseKernel" \
    "$PY" benchmarks/launch_overhead.py --launches 2000 --reps 3 --rounds 2 \
    --json "$work/4-launch.json"
  run_part profile "$(limit_of profile)" 5-profile.txt "^total " \
    "$PY" benchmarks/gpu_step.py --profile --batch 64
  run_part tests "$(limit_of tests)" 6-tests.txt "[0-9]+ passed" \
    env GPUNET_TEST_TIMEOUT=60 "$PY" -m pytest -q -p no:cacheprovider ${xdist[@]+"${xdist[@]}"} \
    "${CUDA_TESTS[@]}"
fi

if [ ${#failed[@]} -gt 0 ]; then
  finish "FAILED: ${failed[*]} (see the files above); results in $out"
  exit 1
fi
finish "all parts passed in ${SECONDS}s; results in $out (summary.txt, gpu-check.tar.gz)"
