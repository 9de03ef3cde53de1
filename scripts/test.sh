#!/usr/bin/env bash
# Set up (first run) and run the whole test suite. Without a GPU the `cuda` backend's
# kernels run in Numba's CUDA simulator (tests/conftest.py turns it on).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
exec .venv/bin/python -m pytest -n 2 "$@"
