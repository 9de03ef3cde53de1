"""The fused LSTM, GRU and Elman RNN cell kernels on cuda against the NumPy ones, forward and backward.

Without a GPU they run in Numba's CUDA simulator (conftest), one Python thread per CUDA
thread: shapes stay tiny, and N * H > 4 blocks * 32 threads makes the grid-stride loop take
several trips.  Tolerances as in ``test_cuda_kernels.py``: each output is a handful of
elementwise float operations (no sums), so float32 agrees to a few ulps (eps 1.2e-7) -> 2e-6,
float64 to 1e-13; tanh may differ by an ulp between CUDA's libdevice and NumPy's libm.
"""
import numpy as np
import pytest

from gpunet import backends
from gpunet.backends.numpy_backend import NumpyBackend

if backends.cuda_unavailable_reason() is not None:
    pytest.skip(f"cuda backend unavailable: {backends.cuda_unavailable_reason()}",
                allow_module_level=True)

CU = backends.backend("cuda")
NP = NumpyBackend()
TOL = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-13, atol=1e-13)}


def both(fn_name, *arrays):
    """The named primitive on both backends: (cuda result moved to the host, numpy result)."""
    got = getattr(CU, fn_name)(*[CU.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays])
    return got, getattr(NP, fn_name)(*arrays)


def assert_close(got, want, dtype):
    for g, w in zip(got, want):
        np.testing.assert_allclose(CU.to_host(g), w, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, hs", [(1, 1), (3, 7), (5, 29)])
def test_lstm_cell_kernels_match_numpy(dtype, n, hs):
    rng = np.random.default_rng(n * 100 + hs)
    gi, gh = (rng.standard_normal((n, 4 * hs)).astype(dtype) * 2 for _ in range(2))
    c_prev, ghc = rng.standard_normal((n, hs)).astype(dtype), rng.standard_normal((n, 2 * hs)).astype(dtype)
    (hc, saved), (want_hc, want_saved) = both("lstm_cell_fwd", gi, gh, c_prev)
    assert_close([hc, *saved], [want_hc, *want_saved], dtype)
    got = CU.lstm_cell_bwd(CU.asarray(ghc), saved)
    assert_close(got, NP.lstm_cell_bwd(ghc, want_saved), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, hs", [(1, 1), (3, 7), (5, 29)])
def test_gru_cell_kernels_match_numpy(dtype, n, hs):
    rng = np.random.default_rng(n * 100 + hs)
    gi, gh = (rng.standard_normal((n, 3 * hs)).astype(dtype) * 2 for _ in range(2))
    h_prev, gy = (rng.standard_normal((n, hs)).astype(dtype) for _ in range(2))
    (h, saved), (want_h, want_saved) = both("gru_cell_fwd", gi, gh, h_prev)
    assert_close([h, *saved], [want_h, *want_saved], dtype)
    got = CU.gru_cell_bwd(CU.asarray(gy), saved)
    assert_close(got, NP.gru_cell_bwd(gy, want_saved), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, hs", [(1, 1), (3, 7), (5, 29)])
@pytest.mark.parametrize("relu", [False, True], ids=["tanh", "relu"])
def test_rnn_cell_kernels_match_numpy(dtype, n, hs, relu):
    rng = np.random.default_rng(n * 100 + hs)
    gi, gh = (rng.standard_normal((n, hs)).astype(dtype) * 2 for _ in range(2))
    gi[0, 0], gh[0, 0] = 0.5, -0.5  # a pre-activation of exactly 0: the ReLU passes no gradient
    gy = rng.standard_normal((n, hs)).astype(dtype)
    (h, saved), (want_h, want_saved) = both("rnn_cell_fwd", gi, gh, relu)
    assert_close([h], [want_h], dtype)
    if relu:
        assert (want_h == 0).any() and (want_h > 0).any() or n * hs == 1
    assert_close([CU.rnn_cell_bwd(CU.asarray(gy), saved, relu)], [NP.rnn_cell_bwd(gy, want_saved, relu)], dtype)


def test_cell_kernels_take_non_contiguous_gates():
    rng = np.random.default_rng(3)
    gates = rng.standard_normal((3, 8, 2))  # gates[:, :, 0] is a strided view
    c_prev = rng.standard_normal((3, 2))
    (hc, _), (want, _) = both("lstm_cell_fwd", gates[:, :, 0], gates[:, :, 1], c_prev)
    np.testing.assert_allclose(CU.to_host(hc), want, rtol=1e-13)
