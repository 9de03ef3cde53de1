"""Numba's simulator could give two threads of one block different copies of a shared array
(issue 19); gpunet's patch (cuda_kernels/_simulator_patch.py) allocates each one once."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SIMULATED

ROOT = Path(__file__).resolve().parents[1]
# Each thread writes its slot, then thread 0 sums them: 64 unless a thread wrote to an orphan.
SCRIPT = """
import sys
sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows in ~1% of launches
import numpy as np
from numba import cuda, float64
PATCH = sys.argv[1] == "patched"
if PATCH:
    import cuda_kernels._launch  # applies the patch where the simulator is on
@cuda.jit
def k(out):
    sm = cuda.shared.array(64, dtype=float64)
    flag = cuda.shared.array(1, dtype=float64)
    t = cuda.threadIdx.x
    sm[t] = 1.0
    if t == 0:
        flag[0] = 2.0
    cuda.syncthreads()
    if t == 0:
        s = 0.0
        for i in range(64):
            s += sm[i]
        out[0] = s + flag[0]
bad = 0
for _ in range(400):
    out = np.zeros(1)
    k[1, 64](out)
    bad += out[0] != 66
print(bad)
"""


def _bad_launches(mode):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not SIMULATED, reason="a real GPU has no simulator to patch")
def test_every_thread_of_a_block_sees_one_shared_array_and_two_lines_two_arrays():
    # Unpatched this was 1-5 bad launches of 400 here; that count is the simulator's and is
    # not asserted.  Patched there must be none, and `flag` must stay apart from `sm`.
    assert _bad_launches("patched") == 0
