"""Counter-based random numbers: element i of a call is a hash of (seed, offset + i).

The generator's whole state is two integers, the seed and the running offset, so it can be
saved in a checkpoint and restored exactly (CuPy's own generator state cannot be read back),
and the numbers do not depend on the launch geometry: the simulator and a GPU draw the same
uniforms bit for bit (normals agree to rounding: the GPU's log and cos are approximate).

The hash is two rounds of Chris Wellons' ``lowbias32`` (a bijection on 32-bit integers) over
the low and high halves of the counter, keyed by the seed.  All arithmetic stays below 2**63
in int64, so neither Numba nor the simulator ever wraps or overflows.

Example:
    >>> from cuda_kernels import random                        # doctest: +SKIP
    >>> u = random.uniform((4, 3), np.float32, seed=5, offset=0)   # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import cuda

from . import _launch

MASK32 = 0xFFFFFFFF
TWO_PI = 2.0 * math.pi


RandomKernels = namedtuple("RandomKernels", "uniform normal")


@cuda.jit(device=True, inline=True)
def lowbias32(x):
    """A well-mixing bijection on 32-bit values held in int64 (every product < 2**63)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


@cuda.jit(device=True, inline=True)
def counter_bits(counter, key_lo, key_hi):
    """32 random bits for one counter value under the key (key_lo, key_hi)."""
    lo = counter & MASK32
    hi = (counter >> 32) & MASK32
    return lowbias32(lowbias32(lo ^ key_lo) ^ hi ^ key_hi)


@cuda.jit(device=True, inline=True)
def normal_from_uniforms(u1, u2, minus_two, two_pi, pi, tiny, zero):
    """Box-Muller: sqrt(-2 log u1) * cos(2 pi u2 - pi), never NaN or inf for u1 in [0, 1 + ulps].

    The arguments after u2 are constants of u1's type (so float32 stays float32).
    """
    # NOTE: with the GPU's approximate log (fastmath), log(u1) for u1 within a few ulps of 1
    # can come out slightly positive, so -2 log(u1) < 0 and sqrt gives NaN; u1 = 0 would give
    # inf.  Clamp both ends: the result is then 0 near u1 = 1 and at most sqrt(-2 log tiny).
    if not u1 >= tiny:
        u1 = tiny
    r2 = minus_two * math.log(u1)
    if not r2 > zero:
        r2 = zero
    return math.sqrt(r2) * math.cos(two_pi * u2 - pi)  # cos(a - pi) = -cos(a): same law


def _make_kernels(float_t):
    """Uniform and normal kernels computing in ``float_t`` (no float64 work for float32)."""

    @_launch.cached_jit
    def uniform_fwd_kernel(out, key_lo, key_hi, offset, drop, scale):
        """out[i] = (bits(offset + i) >> drop) * scale: uniform on [0, 1)."""
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = float_t(counter_bits(offset + i, key_lo, key_hi) >> drop) * scale

    # NOTE: fastmath gives the hardware's approximate cos/log, accurate to ~1e-6 on [-pi, pi]
    # (the angle's range here); the exact cosf carries a float64 path for huge arguments.
    @_launch.cached_jit(fastmath=True)
    def normal_fwd_kernel(out, key_lo, key_hi, offset, drop, scale, tiny):
        """Box-Muller: counters 2i and 2i+1 give two uniforms, out[i] one standard normal."""
        one = float_t(1)
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            u1 = one - float_t(counter_bits(offset + 2 * i, key_lo, key_hi) >> drop) * scale
            u2 = float_t(counter_bits(offset + 2 * i + 1, key_lo, key_hi) >> drop) * scale
            out[i] = normal_from_uniforms(u1, u2, float_t(-2), float_t(TWO_PI), float_t(math.pi),
                                          tiny, float_t(0))

    return RandomKernels(uniform_fwd_kernel, normal_fwd_kernel)


_cache: dict = {}


def kernels(dtype):
    """``(uniform_fwd_kernel, normal_fwd_kernel)`` for float32 or float64 output."""
    return _launch.specialised(_cache, _make_kernels, dtype)


def _key(seed):
    """Two 32-bit key words from a non-negative seed (mixed, so seeds 0, 1, 2 differ a lot)."""
    seed = int(seed)
    return (seed * 0x9E3779B1 + 0x85EBCA6B) & MASK32, ((seed >> 32) * 0xC2B2AE35 + 0x27D4EB2F) & MASK32


def _draw(which, shape, dtype, seed, offset):
    dt = np.dtype(dtype)
    gen = dt if dt in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    out = _launch.xp.empty(tuple(shape), dtype=gen)
    flat = out.reshape(-1)
    if flat.size:
        # float32 keeps 24 of the 32 bits, so that k * 2**-24 is exact and stays below 1.
        bits = 24 if gen == np.float32 else 32
        key_lo, key_hi = _key(seed)
        args = (flat, key_lo, key_hi, int(offset), 32 - bits, _launch.scalar(2.0 ** -bits, gen))
        if which == "normal":
            args += (np.finfo(gen).tiny,)
        _launch.launch(getattr(kernels(gen), which), _launch.blocks_for(flat.size), _launch.TPB, *args)
    return out.astype(dt, copy=False)  # other dtypes are drawn in float64 and cast


def uniform(shape, dtype, seed, offset):
    """Uniform [0, 1) samples; uses counters ``offset .. offset + size - 1``.

    Example:
        >>> uniform((2, 2), np.float32, seed=0, offset=0).shape   # doctest: +SKIP
        (2, 2)
    """
    return _draw("uniform", shape, dtype, seed, offset)


def normal(shape, dtype, seed, offset):
    """Standard-normal samples; uses counters ``offset .. offset + 2 * size - 1``.

    Example:
        >>> normal((3,), np.float64, seed=0, offset=8).dtype      # doctest: +SKIP
        dtype('float64')
    """
    return _draw("normal", shape, dtype, seed, offset)
