"""The counter-based random kernels, cuda against NumPy: each uniform is the keyed hash of its
counter bit for bit (in both kernel families), both backends draw the same numbers, and a seed
or a saved state gives the same stream back.

Without a GPU these run in Numba's CUDA simulator; the helpers are test_cuda_kernels.py's.
"""
import numpy as np
import pytest

from gpunet import backends

if backends.cuda_unavailable_reason() is not None:
    pytest.skip(f"cuda backend unavailable: {backends.cuda_unavailable_reason()}",
                allow_module_level=True)

from test_cuda_kernels import CU, NP, host  # noqa: E402  (after the skip)


def _lowbias32(x):
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _reference_bits(seed, counters):
    """cuda_kernels.random's hash written with Python ints: the kernel must match it exactly."""
    from cuda_kernels.random import _key

    k_lo, k_hi = _key(seed)
    return np.array([_lowbias32(_lowbias32((c & 0xFFFFFFFF) ^ k_lo) ^ (c >> 32) ^ k_hi)
                     for c in counters], dtype=np.float64)


@pytest.mark.parametrize("family", ["cuda_kernels", "numpy_kernels"])
@pytest.mark.parametrize("dtype, bits", [(np.float32, 24), (np.float64, 32)])
def test_uniform_kernel_is_the_keyed_counter_hash(dtype, bits, family):
    import importlib

    random = importlib.import_module(f"{family}.random")
    offset = 2**32 - 40  # crosses into the counter's high word
    u = host(random.uniform((7, 11), dtype, seed=2**33 + 5, offset=offset))
    want = np.floor(_reference_bits(2**33 + 5, range(offset, offset + 77)) / 2**(32 - bits)) / 2**bits
    assert u.dtype == dtype and u.shape == (7, 11)
    np.testing.assert_array_equal(u.reshape(-1), want.astype(dtype))
    assert ((u >= 0) & (u < 1)).all()


def test_both_backends_draw_the_same_random_numbers():
    """One counter-based generator: same uniforms bit for bit, normals to float rounding."""
    for be in (CU, NP):
        be.seed(11)
    np.testing.assert_array_equal(host(CU.rand((5, 9), np.float32)), NP.rand((5, 9), np.float32))
    np.testing.assert_allclose(host(CU.randn((33,), np.float64)), NP.randn((33,), np.float64),
                               rtol=1e-12, atol=1e-12)
    assert CU.rng_state() == NP.rng_state()


@pytest.mark.parametrize("be_name", ["cuda", "numpy"])
def test_random_numbers_are_seeded_resumable_and_well_spread(be_name):
    be = {"cuda": CU, "numpy": NP}[be_name]
    be.seed(5)
    a = host(be.rand((4, 3), np.float32))
    state = be.rng_state()
    b = host(be.randn((7,), np.float64))
    be.seed(5)
    np.testing.assert_array_equal(host(be.rand((4, 3), np.float32)), a)
    be.set_rng_state(state)  # a checkpoint's state: the very next numbers come back
    np.testing.assert_array_equal(host(be.randn((7,), np.float64)), b)
    assert a.dtype == np.float32 and ((a >= 0) & (a < 1)).all()
    assert not np.array_equal(host(be.rand((4, 3), np.float32)), a)  # the offset moved on
    be.seed(6)
    assert not np.array_equal(host(be.rand((4, 3), np.float32)), a)
    # 4,000 draws: the mean of U(0,1) has sd 0.0046 and of N(0,1) 0.016; bounds are 5 sd.
    be.seed(7)
    u = host(be.rand((4000,), np.float64))
    z = host(be.randn((4000,), np.float32))
    assert abs(u.mean() - 0.5) < 0.023 and abs(u.var() - 1 / 12) < 0.01
    assert abs(z.mean()) < 0.08 and abs(z.std() - 1) < 0.06 and np.isfinite(z).all()
    assert np.histogram(u, bins=10, range=(0, 1))[0].min() > 300  # 400 expected per bin
