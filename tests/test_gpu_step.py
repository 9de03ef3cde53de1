"""The GPU step of issue 12, proven in Numba's simulator: no array op outside our kernels and
GEMMs, fused epilogues equal to the unfused ops bit for bit, multi-tensor optimiser updates,
deterministic gradients (no float atomics), a normal generator that cannot return NaN or inf."""
import os
import re
from pathlib import Path

import numpy as np
import pytest
from numba import cuda  # after conftest: the simulator without a GPU

import gpunet as gn
from gpunet import functional as F
from gpunet import models, nn, optim

ROOT = Path(__file__).resolve().parents[1]


class Watched(np.ndarray):
    """An array that logs every NumPy op run on it while ``log`` is a list and no kernel or
    GEMM is running (in the simulator ``xp`` is NumPy: each such op would be a CuPy op on a GPU)."""

    log = None
    paused = 0

    @classmethod
    def note(cls, what):
        if cls.log is not None and not cls.paused:
            cls.log.append(what)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        Watched.note(f"{ufunc.__name__}.{method}")
        plain = tuple(np.asarray(a) if isinstance(a, Watched) else a for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(a) for a in kwargs["out"])
        out = getattr(ufunc, method)(*plain, **kwargs)
        return out.view(Watched) if isinstance(out, np.ndarray) else out

    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ not in ("empty_like", "shares_memory", "result_type"):  # no device work
            Watched.note(func.__name__)
        return super().__array_function__(func, types, args, kwargs)

    def copy(self, *a, **k):
        Watched.note("copy")
        return super().copy(*a, **k)

    def astype(self, dtype, *a, copy=True, **k):
        if copy or np.dtype(dtype) != self.dtype:
            Watched.note("astype")
        return super().astype(dtype, *a, copy=copy, **k)

    def __setitem__(self, key, value):
        Watched.note("setitem")
        super().__setitem__(key, value)


class WatchedXp:
    """``numpy`` as the cuda launchers see it: allocations give Watched arrays, other calls log."""

    FREE = {"empty", "empty_like", "asarray", "dtype", "ndarray", "float32", "float64", "int32", "int64"}

    def __getattr__(self, name):
        fn = getattr(np, name)
        if name in ("empty", "empty_like"):
            return lambda *a, **k: fn(*a, **k).view(Watched)
        if name == "ascontiguousarray":  # a copy only when the array was not contiguous
            def contiguous(a, *rest, **k):
                out = fn(a, *rest, **k)
                if not np.shares_memory(out, a) and out.size:
                    Watched.note("ascontiguousarray copy")
                return out.view(Watched)
            return contiguous
        if name in self.FREE or not callable(fn):
            return fn
        return lambda *a, **k: (Watched.note(f"xp.{name}"), fn(*a, **k))[1]


@pytest.fixture
def watched(monkeypatch):
    """Route the cuda backend's ``xp`` through WatchedXp; yields the log."""
    from cuda_kernels import _launch

    be = gn.backends.backend("cuda")
    monkeypatch.setattr(_launch, "xp", WatchedXp())
    monkeypatch.setattr(be, "xp", WatchedXp())
    real_launch, real_gemm = _launch.launch, _launch.gemm

    def paused(fn):
        def run(*a, **k):
            Watched.paused += 1
            try:
                return fn(*a, **k)
            finally:
                Watched.paused -= 1
        return run

    monkeypatch.setattr(_launch, "launch", paused(real_launch))
    monkeypatch.setattr(_launch, "gemm", paused(real_gemm))
    Watched.log = []
    yield Watched.log
    Watched.log = None


def _watch_params(model):
    for p in model.parameters():
        p._data = p._data.view(Watched)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                    reason="watches NumPy arrays, the simulator's xp (CI runs it; a GPU's are CuPy's)")
def test_a_lenet_sgd_step_runs_no_array_op_outside_kernels_and_gemms(rng, watched):
    with gn.use_backend("cuda"):
        gn.manual_seed(0)
        model = models.lenet5()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = gn.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
        y = gn.tensor(rng.integers(0, 10, 2))
        _watch_params(model)
        x._data, y._data = x._data.view(Watched), y._data.view(Watched)
        for _ in range(2):  # the first step creates the momentum buffers; the second is steady
            del watched[:]
            loss = F.softmax_cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert watched == [], f"array ops outside our kernels and GEMMs: {watched}"
        # the watcher does see ops: sigmoid is composed of array ops (not a kernel of ours)
        F.sigmoid(model(x))
        assert any("tanh" in w for w in watched), watched


@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv"])
def test_fused_layer_relu_equals_layer_then_relu_bit_for_bit(backend, rng, conv):
    gn.manual_seed(1)
    if conv:
        layer, shape = nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 4)
    else:
        layer, shape = nn.Linear(5, 4), (3, 5)
    x_host = rng.standard_normal(shape).astype(np.float32)
    grads = []
    for fused in (True, False):
        x = gn.tensor(x_host, requires_grad=True)
        layer.zero_grad()
        out = nn.Sequential(layer, nn.ReLU())(x) if fused else F.relu(layer(x))
        (out * out).sum().backward()
        grads.append([out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()])
    assert (grads[0][0] > 0).any() and (grads[0][0] == 0).any()  # the ReLU cuts somewhere
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_multi_tensor_updates_match_numpy_over_chunks_and_odd_parameters(rng):
    """18 parameters (two launches of up to 16), one empty and one non-contiguous."""
    shapes = [(3, 4), (0,), (7,), (1,)] + [(2, 3)] * 14
    host = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    results, kinds = {}, ("sgd", "adam", "sgd, lr on the device", "adam, lr and step on the device")
    for name in ("numpy", "cuda"):
        be = gn.backends.backend(name)
        for which in kinds:
            ps = [be.asarray(h.copy()) for h in host]
            ps[0] = be.asarray(np.asfortranarray(host[0]))  # non-contiguous (F order)
            gs = [be.asarray(g) for g in grads]
            st = [[be.asarray(np.zeros(s)) for s in shapes] for _ in range(2)]
            device = "device" in which  # a capturable optimiser's arrays: read and advanced there
            lr = be.asarray(np.array(0.01)) if device else 0.01
            count = be.asarray(np.array(0.0))
            for step in (1, 2):
                if which.startswith("sgd"):
                    be.sgd_update_many(ps, gs, st[0], lr, 0.9, 0.1, 0.01, False, step == 1)
                else:
                    be.adam_update_many(ps, gs, st[0], st[1], lr, 0.9, 0.999, 1e-8, 0.01,
                                        count if device else step, True)
            results[name, which] = [be.to_host(p) for p in ps]
            if which.startswith("adam") and device:
                assert float(be.to_host(count)) == 2.0  # the kernels advanced the count
    for which in kinds:
        for a, b in zip(results["numpy", which], results["cuda", which]):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)  # float64: rounding only
        if "device" in which:  # the same updates as with host values, on each backend
            host_which = which.split(",")[0]
            for name in ("numpy", "cuda"):
                for a, b in zip(results[name, host_which], results[name, which]):
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("lr", [np.float32(0.003), np.float64(0.003)], ids=["float32 lr", "float64 lr"])
def test_device_lr_and_step_give_the_host_values_updates_in_float32(backend, rng, lr):
    """A capturable optimiser's lr tensor (of either dtype) and device step count update
    float32 parameters exactly as the host numbers do."""
    be = gn.get_backend()
    host = [rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (7,))]
    grads = [be.asarray(rng.standard_normal(h.shape).astype(np.float32)) for h in host]
    out = {}
    for device in (False, True):
        ps = [be.asarray(h.copy()) for h in host]
        bufs = [[be.asarray(np.zeros_like(h)) for h in host] for _ in range(3)]
        rate = be.asarray(np.array(lr)) if device else float(lr)
        count = be.asarray(np.array(0.0))
        for step in (1, 2, 3):
            be.sgd_update_many(ps[:1], grads[:1], bufs[0][:1], rate, 0.9, 0.0, 0.0, False, step == 1)
            be.adam_update_many(ps[1:], grads[1:], bufs[1][1:], bufs[2][1:], rate, 0.9, 0.999,
                                1e-8, 0.01, count if device else step, True)
        out[device] = [be.to_host(p) for p in ps]
    for a, b in zip(out[False], out[True]):
        np.testing.assert_array_equal(a, b)


def test_no_float_atomics_in_any_kernel():
    """Gradients are ordered reductions or gathers, so two runs give the same bits on a GPU.
    The atomics are integer tickets (which block finishes last) and, after a ticket, the last
    block's reads of the other blocks' partial sums (adding 0: a coherent read through L2,
    which changes no value)."""
    tickets, reads = [], []
    for path in sorted((ROOT / "cuda_kernels").glob("*.py")):
        for line in path.read_text().splitlines():
            found = re.search(r"cuda\.atomic\.(\w+)\((\w+), ", line)
            if found is None:
                assert "cuda.atomic" not in line, (path.name, line)
                continue
            op, array = found.groups()
            assert op == "add", (path.name, line)
            if re.search(r", 1\) == ", line):
                tickets.append((path.name, array))
            else:
                assert line.rstrip().endswith((", acc_t(0))", ", zero)")), (path.name, line)
                reads.append((path.name, array))
    assert tickets == [("_device.py", "tickets"), ("softmax_ce.py", "ticket")], tickets
    assert sorted(set(reads)) == [("_device.py", "partial"), ("softmax_ce.py", "loss"),
                                 ("softmax_ce.py", "row_w")], reads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_from_uniforms_is_finite_at_both_ends(dtype):
    """u1 = 1 - k ulp and 1 + k ulp (what an approximate log near 1 amounts to), tiny and 0."""
    from cuda_kernels import random

    ulp = np.finfo(dtype).eps / 2  # the spacing just below 1
    k = np.arange(9, dtype=dtype)
    u1 = np.concatenate([1 - k * ulp, 1 + k * 2 * ulp, [np.finfo(dtype).tiny, 0.0]]).astype(dtype)
    u2 = np.linspace(0, 1, u1.size, dtype=dtype)
    out = np.full_like(u1, np.nan)
    c = np.dtype(dtype).type

    @cuda.jit(fastmath=True)  # as the generator's kernel: on a GPU, the approximate log
    def kernel(u1, u2, out, tiny):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = random.normal_from_uniforms(u1[i], u2[i], c(-2), c(2 * np.pi), c(np.pi),
                                                 tiny, c(0))

    kernel[1, 32](u1, u2, out, np.finfo(dtype).tiny)
    assert np.isfinite(out).all(), out
    assert np.abs(out[:18]).max() < 1e-3  # u1 ~ 1: radius ~ 0
    assert np.abs(out[-2:]).max() <= np.sqrt(-2 * np.log(np.finfo(dtype).tiny)) + 1e-6


def test_an_empty_batch_through_fused_layers_gives_zero_gradients(backend):
    """As in PyTorch: output (0, 2), every parameter gradient zero, input gradient (0, 1, 4, 4)."""
    gn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3), nn.ReLU(),
                          nn.Linear(3, 2))
    x = gn.tensor(np.zeros((0, 1, 4, 4), np.float32), requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert out.shape == (0, 2) and x.grad.shape == (0, 1, 4, 4)
    for name, p in model.named_parameters():
        assert p.grad.shape == p.shape and not p.grad.numpy().any(), name


@pytest.mark.parametrize("hw, padding", [((6, 8), 1), ((5, 7), 0)], ids=["even", "odd-edges"])
def test_conv_relu_pool_fused_equals_the_three_ops(backend, rng, hw, padding):
    """Values and input/weight gradients bit for bit; the bias gradient is summed in another
    order (over pooled winners, chunk by chunk), so it agrees to float32 rounding."""
    gn.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3, padding=padding)
    x_host = rng.standard_normal((3, 2) + hw).astype(np.float32)
    results = []
    for fused in (True, False):
        x = gn.tensor(x_host, requires_grad=True)
        conv.zero_grad()
        if fused:
            out = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))(x)
        else:
            out = F.max_pool2d(F.relu(conv(x)), 2)
        w = gn.tensor(np.cos(np.arange(out.numel())).reshape(out.shape).astype(np.float32))
        (out * w).sum().backward()
        results.append([out.numpy(), x.grad.numpy(), conv.weight.grad.numpy(), conv.bias.grad.numpy()])
    (o1, gx1, gw1, gb1), (o2, gx2, gw2, gb2) = results
    assert (o1 == 0).any() and (o1 > 0).any()  # the ReLU cuts somewhere
    for a, b in ((o1, o2), (gx1, gx2), (gw1, gw2)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(gb1, gb2, rtol=1e-5, atol=1e-6)  # float32 sums, another order


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN is the point
def test_conv_relu_pool_fused_routes_a_nan_as_the_three_ops(backend, rng):
    """A NaN takes its window, as in PyTorch: the fused op pools a batch with a NaN again
    with the NaN rule, so the gradient still reaches the NaN's place."""
    conv = nn.Conv2d(1, 2, 1)
    conv.weight.data[...] = conv.weight.backend.asarray(np.array([1.0, -1.0], np.float32).reshape(2, 1, 1, 1))
    x_host = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    x_host[0, 0, 1, 0] = np.nan  # top-left window of image 0: a NaN below-left
    x_host[1, 0, 2, 3] = np.inf
    results = []
    for fused in (True, False):
        x = gn.tensor(x_host, requires_grad=True)
        conv.zero_grad()
        out = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))(x) if fused else F.max_pool2d(F.relu(conv(x)), 2)
        out.backward(gn.tensor(np.ones(out.shape, np.float32)))
        results.append([out.numpy(), x.grad.numpy(), conv.weight.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(results[0][0][0, :, 0, 0]).all() and results[0][1][0, 0, 1, 0] == 0.0  # 1 - 1


def test_conv_relu_pool_gradcheck(backend, rng):
    x = gn.tensor(rng.standard_normal((2, 2, 6, 6)), requires_grad=True)
    w = gn.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = gn.tensor(rng.standard_normal(3), requires_grad=True)
    assert gn.gradcheck(lambda x, w, b: F.conv2d_relu_max_pool2d(x, w, b, padding=1), [x, w, b])
    with pytest.raises(ValueError, match=r"conv's output \(1, 1\) is smaller than the pool window 2x2"):
        F.conv2d_relu_max_pool2d(x, w, b, padding=0, stride=4)
