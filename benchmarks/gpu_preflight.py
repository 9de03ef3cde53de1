"""The GPU check's first 30 seconds: is everything there that the rest needs?

In order, stopping at the first failure with what is missing and how to fix it:

1. versions: the GPU, driver and CUDA from nvidia-smi, and the Python packages (gpu_env.py);
2. NVVM: where numba-cuda finds libNVVM (``CUDA_HOME`` or the pip wheels) and that it loads;
3. a ``compile_ptx`` of a tiny kernel;
4. a real launch of one cached gpunet kernel (relu), checked against NumPy;
5. the fast launch route's probe against the plain route;
6. one LeNet-5 SGD step on the cuda backend against the same step on the numpy backend.

Prints ``preflight: ok`` and exits 0 when all pass.  ``--dry-run`` walks the same steps in
Numba's CUDA simulator, where 2, 3 and 5 have nothing to check and say so.

Example:
    $ python benchmarks/gpu_preflight.py
    ...
    preflight: ok (6 checks in 9.1 s)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PreflightFailed(Exception):
    """A check failed; the message says what is missing and how to fix it."""


def check_versions(dry_run):
    from benchmarks import gpu_env

    gpu = gpu_env.nvidia_smi()
    if gpu is None and not dry_run:
        raise PreflightFailed("nvidia-smi finds no GPU: check the driver (nvidia-smi -L)")
    lines = [f"gpu: {gpu or 'none (dry run)'}"] + [f"{k}: {v}" for k, v in gpu_env.package_lines()]
    import gpunet

    reason = gpunet.backends.cuda_unavailable_reason()
    if reason is not None:
        raise PreflightFailed(f"gpunet's cuda backend cannot run here: {reason}")
    return "; ".join(lines)


def check_nvvm(dry_run):
    if dry_run:
        return "the simulator compiles nothing"
    from numba.cuda.cuda_paths import get_cuda_paths

    from gpunet.backends.cuda_backend import nvvm_missing_reason

    where = get_cuda_paths().get("nvvm")
    reason = nvvm_missing_reason()
    if reason is not None:
        raise PreflightFailed(f"{reason} (CUDA_HOME={os.environ.get('CUDA_HOME', 'unset')}, "
                              f"numba-cuda looked at {where})")
    return f"libNVVM from {getattr(where, 'info', where)} (CUDA_HOME={os.environ.get('CUDA_HOME', 'unset')})"


def check_compile_ptx(dry_run):
    if dry_run:
        return "the simulator compiles nothing"
    from numba import cuda, types

    def scale(a):
        i = cuda.grid(1)
        if i < a.size:
            a[i] *= 2

    ptx, _ = cuda.compile_ptx(scale, (types.float32[:],), cc=(8, 0))
    return f"{len(ptx)} characters of PTX"


def check_launch(dry_run):
    import numpy as np

    import gpunet as gn

    be = gn.backends.backend("cuda")
    x = np.array([-1.5, 0.0, 2.5, -0.0, 3.0], np.float32)
    got = be.to_host(be.relu_fwd(be.asarray(x)))
    if not np.array_equal(got, np.maximum(x, 0)):
        raise PreflightFailed(f"the relu kernel returned {got.tolist()} for {x.tolist()}")
    return f"relu_fwd ran on {'the simulator' if be.simulated else 'the GPU'} and matches NumPy"


def check_fast_route(dry_run):
    if dry_run:
        return "the simulator launches plainly"
    if os.environ.get("GPUNET_FAST_LAUNCH") == "0":
        return "GPUNET_FAST_LAUNCH=0 chooses the plain route"
    from cuda_kernels import _launch

    _launch._fast.check()
    if not _launch._fast.enabled:
        raise PreflightFailed("the fast launch route failed its probe: every launch takes the "
                              "plain route (slower); see the logged line above")
    return "the fast route matches the plain one"


def check_lenet_step(dry_run):
    import numpy as np

    from benchmarks.models import GpunetLeNet, batch, lenet_weights

    n = 2 if dry_run else 64
    x, y = batch(n)
    losses = {}
    for name in ("numpy", "cuda"):
        model = GpunetLeNet(lenet_weights(0), name)
        xt, yt = model.tensors(x, y)
        model.step(xt, yt)  # one SGD step, then the loss it leads to
        losses[name] = float(model.step(xt, yt).item())
    # float32 sums in another order: a few ulps per term over ~400-term GEMMs
    if not np.isclose(losses["cuda"], losses["numpy"], rtol=1e-4, atol=1e-5):
        raise PreflightFailed(f"one LeNet-5 step on cuda gives loss {losses['cuda']!r}, on numpy "
                              f"{losses['numpy']!r}")
    return f"loss after one step: cuda {losses['cuda']:.6f}, numpy {losses['numpy']:.6f}"


CHECKS = [("versions", check_versions), ("nvvm", check_nvvm), ("compile_ptx", check_compile_ptx),
          ("launch", check_launch), ("fast route", check_fast_route), ("lenet step", check_lenet_step)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="in Numba's CUDA simulator")
    args = p.parse_args(argv)
    if args.dry_run:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
    t0 = time.perf_counter()
    for name, check in CHECKS:
        try:
            print(f"{name}: {check(args.dry_run)}", flush=True)
        except PreflightFailed as exc:
            print(f"{name}: FAILED: {exc}\npreflight: FAILED at {name!r}; nothing else was run")
            return 1
        except Exception as exc:  # an unexpected error is a failed check too, named as such
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}\npreflight: FAILED at {name!r}")
            return 1
    print(f"preflight: ok ({len(CHECKS)} checks in {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
