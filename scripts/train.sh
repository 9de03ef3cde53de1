#!/usr/bin/env bash
# Set up (first run) and run the main job: train a LeNet-5 convnet on the embedded digits.
# The backend is chosen automatically (the GPU when one is usable). Extra args go to `gpunet train`.
# On a machine with an NVIDIA GPU the CUDA extra follows nvidia-smi's "CUDA Version" (cuda13 for
# CUDA 13 and later, else cuda12); where .venv/bin/python or python3 already imports a CuPy and
# numba-cuda that both see the GPU (a GPU image without a package index, say), nothing is
# installed and the checkout runs as it is. GPUNET_TRAIN_PLAN=1 prints the plan and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

gpu_stack_works() {  # does Python $1 import CuPy and numba-cuda, both seeing the GPU?
  command -v "$1" >/dev/null 2>&1 && "$1" -c "import sys, cupy, numba.cuda
sys.exit(0 if cupy.is_available() and numba.cuda.is_available() else 1)" >/dev/null 2>&1
}

extras="train"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  major=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ "${major:-0}" -ge 13 ]; then extras="train,cuda13"; else extras="train,cuda12"; fi
  for py in .venv/bin/python python3; do
    if gpu_stack_works "$py"; then
      if [ "${GPUNET_TRAIN_PLAN:-0}" = 1 ]; then echo "plan: run with $py, install nothing"; exit 0; fi
      echo "train.sh: $py already has a working CuPy and numba-cuda: installing nothing"
      PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m gpunet train "$@"
    fi
  done
fi
if [ "${GPUNET_TRAIN_PLAN:-0}" = 1 ]; then echo "plan: pip install -e .[$extras] into .venv"; exit 0; fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
exec .venv/bin/gpunet train "$@"
