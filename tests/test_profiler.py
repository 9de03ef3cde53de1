"""gn.profiler.profile(): per-primitive counts and times; on cuda, launches and GEMMs."""
import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import models, optim


def _lenet_step(backend, rng):
    with gn.use_backend(backend):
        gn.manual_seed(0)
        model = models.lenet5()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = gn.tensor(rng.standard_normal((1, 1, 28, 28)).astype(np.float32))  # the simulator is slow
        y = gn.tensor(rng.integers(0, 10, 1))
        return model, opt, x, y


def _step(model, opt, x, y):
    loss = F.softmax_cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def test_one_lenet_sgd_step_on_cuda_counts_launches_and_gemms(rng):
    """16 Numba launches and 14 cuBLAS GEMMs, primitive by primitive: 30 (34 before: the
    conv's epilogue and the pool are one kernel each way; 45 before that: bias and ReLU fused
    into the conv/linear epilogues both ways, one multi-tensor SGD launch instead of ten, the
    loss's mean reduced inside its kernel)."""
    model, opt, x, y = _lenet_step("cuda", rng)
    with gn.profiler.profile() as prof:
        _step(model, opt, x, y)
    rows = {name.split(".", 1)[1]: r for name, r in prof.rows.items() if name.startswith("cuda.")}
    want = {  # primitive: (calls, launches, gemms); conv -> ReLU -> pool is one primitive
        "conv2d_relu_max_pool_fwd": (2, 4, 2), "bias_relu_fwd": (3, 3, 0),
        "matmul": (9, 0, 9), "softmax_cross_entropy_fwd": (1, 1, 0),
        "softmax_cross_entropy_bwd": (1, 1, 0), "bias_relu_bwd": (3, 3, 0),
        "conv2d_relu_max_pool_bwd": (2, 2, 0),
        "conv2d_bwd_data": (1, 1, 1), "conv2d_bwd_weight": (2, 0, 2), "sgd_update_many": (1, 1, 0),
    }
    assert {k: (r["calls"], r["launches"], r["gemms"]) for k, r in rows.items()} == want
    assert prof.totals()["launches"] == 16 and prof.totals()["gemms"] == 14
    assert rows["conv2d_relu_max_pool_fwd"]["kernels"]["im2col_fwd_kernel"] == 2
    table = prof.table()
    assert table.splitlines()[0].split()[:4] == ["primitive", "calls", "launches", "gemms"]
    assert "cuda.sgd_update_many" in table and table.splitlines()[-1].startswith("total")
    # PyTorch's spelling, sorting and row limit
    top = prof.key_averages().table(sort_by="launches", row_limit=1).splitlines()
    assert top[2].split()[0] == "cuda.conv2d_relu_max_pool_fwd" and top[3].startswith("total")


def test_profile_on_numpy_times_primitives_and_restores_the_backend(rng):
    model, opt, x, y = _lenet_step("numpy", rng)
    be = gn.backends.backend("numpy")
    before = be.conv2d_relu_max_pool_fwd
    with gn.profiler.profile() as prof:
        _step(model, opt, x, y)
    assert be.conv2d_relu_max_pool_fwd is before  # unwrapped again
    r = prof.rows["numpy.conv2d_relu_max_pool_fwd"]
    assert r["calls"] == 2 and r["host_s"] > 0 and r["launches"] == 0
    assert prof.totals()["calls"] == 25  # the same fused primitives as on cuda
    _step(model, opt, x, y)  # outside the block nothing is recorded
    assert prof.rows["numpy.conv2d_relu_max_pool_fwd"]["calls"] == 2
