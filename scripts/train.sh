#!/usr/bin/env bash
# Set up (first run) and run the main job: train a LeNet-5 convnet on the embedded digits.
# The backend is chosen automatically (the GPU when one is usable). Extra args go to `gpunet train`.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="train"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then extras="train,cuda"; fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
exec .venv/bin/gpunet train "$@"
