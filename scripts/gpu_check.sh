#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU: the whole test suite on the real cuda backend, the
# kernel benchmark, a LeNet-5 step against PyTorch on the same GPU, µs per launch, and the profiler
# table of one step, each part under its own time limit, all written to
# benchmarks/results/<gpu>-<date>/ (one file per part plus summary.txt). See usage below.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bash scripts/gpu_check.sh [--dry-run] [--out DIR] [--budget SECONDS] [--only PART,...]

On a machine with an NVIDIA GPU, runs and records, each part under a time limit:
  env          GPU, driver, CUDA and package versions (benchmarks/gpu_env.py)
  kernels      benchmarks/bench_cuda_kernels.py (each kernel vs copy bandwidth and PyTorch)
  lenet-step   benchmarks/gpu_step.py: LeNet-5 SGD step, gpunet vs PyTorch eager, batch 64 and
               256, separate processes, 3 alternating rounds, median [min-max]
  launch       benchmarks/launch_overhead.py: µs per launch, ours vs CuPy vs PyTorch
  profile      benchmarks/gpu_step.py --profile: gn.profiler table of one LeNet step
  tests        the whole test suite on the real cuda backend (no simulator), with the time
               the parts above left of the budget (at least 240 s)
Results: benchmarks/results/<gpu-name>-<date>/ (or --out DIR): <n>-<part>.txt per part, JSON
where a part has numbers, and summary.txt. A failing part is reported and the rest still run;
the exit status is 1 if any part failed. The whole run stays under --budget seconds (570).

It installs nothing when python3 (or .venv/bin/python, or $PYTHON) already imports numpy,
cupy, numba.cuda and pytest; otherwise it makes .venv (--system-site-packages) and installs
gpunet[cuda12] or gpunet[cuda13] (from nvidia-smi's "CUDA Version") with the bench extra.

--only      run only these parts (comma-separated names from the list above)
--dry-run   no GPU needed: the same Python entry points in Numba's CUDA simulator
            (NUMBA_ENABLE_CUDASIM=1) on tiny sizes, PyTorch on the CPU, CuPy rows skipped, and a
            small subset of the tests; results go to a temporary folder unless --out is given.
            Its figures mean nothing for speed. CI runs it (tests/test_gpu_check_dry_run.py).
EOF
}

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PARTS="env kernels lenet-step launch profile tests"
dry_run=0 out="" budget=570 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) [ $# -ge 2 ] || { echo "gpu_check.sh: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --budget) [ $# -ge 2 ] || { echo "gpu_check.sh: --budget needs seconds" >&2; exit 2; }; budget=$2; shift ;;
    --only) [ $# -ge 2 ] || { echo "gpu_check.sh: --only needs part names" >&2; exit 2; }; only=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
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
if [ -z "$PY" ]; then
  [ "$dry_run" = 1 ] && extras="bench" || extras="$(cuda_extra),bench"
  echo "gpu_check.sh: no Python here imports ($needs); installing .[${extras}] into .venv"
  [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
  .venv/bin/python -m pip install -q -e ".[${extras}]" "pytest>=8" "pytest-xdist>=3" \
    "hypothesis>=6.100" "safetensors>=0.4"
  PY=.venv/bin/python
fi

mkdir -p "$out"
summary="$out/summary.txt"
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
    status="NOT RUN (budget spent)"; rc=1; echo "$status" > "$out/$file"
  else
    echo "== $name (limit ${limit}s) -> $out/$file"
    timeout --kill-after=10 "$limit" "$@" > "$out/$file" 2>&1 || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMED OUT after ${limit}s"
    elif [ "$rc" != 0 ]; then status="FAILED (exit $rc)"
    elif ! grep -qE -- "$expect" "$out/$file"; then status="FAILED (output lacks /$expect/)"; rc=1
    else status="ok"; fi
  fi
  if [ "$rc" != 0 ]; then
    failed+=("$name")
    tail -n 15 "$out/$file" | sed 's/^/   | /'
  fi
  printf '%-11s %-28s %5ss  %s\n' "$name" "$status" "$((SECONDS - t0))" "$file" | tee -a "$summary"
}

# The tests run last and get what is left of the budget (at least 240 s of the 570).
if [ "$dry_run" = 1 ]; then
  echo "dry run: the tests part runs a small subset; the whole suite runs on a GPU" \
    | tee -a "$summary"
  run_part env 60 1-env.txt "cuda backend: runs here" "$PY" benchmarks/gpu_env.py
  run_part kernels 120 2-kernels.txt "^# every result matches" \
    "$PY" benchmarks/bench_cuda_kernels.py --smoke --reps 1 --no-torch
  run_part lenet-step 120 3-lenet-step.txt "ratio gpunet/PyTorch" \
    "$PY" benchmarks/gpu_step.py --dry-run --batches 2 --rounds 1 --reps 1 \
    --json "$out/3-lenet-step.json"
  run_part launch 60 4-launch.txt "^gpunet _launch.launch" \
    "$PY" benchmarks/launch_overhead.py --dry-run --launches 3 --reps 1 --rounds 2 --n 64 \
    --json "$out/4-launch.json"
  run_part profile 60 5-profile.txt "^total " \
    "$PY" benchmarks/gpu_step.py --dry-run --profile --batch 2
  run_part tests 120 6-tests.txt "[0-9]+ passed" \
    "$PY" -m pytest -q -p no:cacheprovider -p no:xdist tests/test_cuda_versions.py \
    tests/test_cuda_kernels.py::test_relu tests/test_cuda_kernels.py::test_backend_identity
else
  workers=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  xdist=()
  if "$PY" -c "import xdist" >/dev/null 2>&1; then xdist=(-n "$workers"); fi
  run_part env 30 1-env.txt "cuda backend: runs here" \
    "$PY" benchmarks/gpu_env.py --require-gpu
  run_part kernels 60 2-kernels.txt "^# every result matches" \
    "$PY" benchmarks/bench_cuda_kernels.py
  run_part lenet-step 150 3-lenet-step.txt "ratio gpunet/PyTorch" \
    "$PY" benchmarks/gpu_step.py --batches 64 256 --rounds 3 --json "$out/3-lenet-step.json"
  run_part launch 45 4-launch.txt "^cupy ElementwiseKernel" \
    "$PY" benchmarks/launch_overhead.py --rounds 3 --json "$out/4-launch.json"
  run_part profile 45 5-profile.txt "^total " \
    "$PY" benchmarks/gpu_step.py --profile --batch 64
  run_part tests "$budget" 6-tests.txt "[0-9]+ passed" \
    "$PY" -m pytest -q -p no:cacheprovider ${xdist[@]+"${xdist[@]}"} tests
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (see the files above); results in $out" | tee -a "$summary"
  exit 1
fi
echo "all parts passed in ${SECONDS}s; results in $out" | tee -a "$summary"
