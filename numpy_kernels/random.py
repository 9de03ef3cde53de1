"""Counter-based random numbers on NumPy: the same hash of (seed, offset + i) as ``cuda_kernels.random``.

The generator's state is (seed, offset), so both backends draw the same uniforms bit for bit
(normals agree to rounding) and a checkpoint restores the stream exactly.  All arithmetic is
on uint64 holding 32-bit values, every product below 2**63, as in the kernel.

Example:
    >>> u = uniform((2, 3), np.float32, seed=5, offset=0)
    >>> u.shape, u.dtype, bool((u >= 0).all() and (u < 1).all())
    ((2, 3), dtype('float32'), True)
"""
from __future__ import annotations

import math

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)


def lowbias32(x):
    """The kernel's well-mixing bijection on 32-bit values, on a uint64 array."""
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & MASK32
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & MASK32
    return x ^ (x >> np.uint64(16))


def counter_bits(counter, key_lo, key_hi):
    """32 random bits per counter value (uint64 array) under the key (key_lo, key_hi)."""
    lo, hi = counter & MASK32, (counter >> np.uint64(32)) & MASK32
    return lowbias32(lowbias32(lo ^ np.uint64(key_lo)) ^ hi ^ np.uint64(key_hi))


def _key(seed):
    """Two 32-bit key words from a non-negative seed, as ``cuda_kernels.random`` makes them."""
    seed = int(seed)
    return ((seed * 0x9E3779B1 + 0x85EBCA6B) & 0xFFFFFFFF,
            ((seed >> 32) * 0xC2B2AE35 + 0x27D4EB2F) & 0xFFFFFFFF)


def _uniform_bits(count, step, start, seed, gen):
    """Uniforms on [0, 1) in ``gen`` from counters ``start, start + step, ...`` (count of them)."""
    bits = 24 if gen == np.float32 else 32  # float32 keeps 24 bits: k * 2**-24 is exact, < 1
    counters = np.uint64(start) + np.arange(count, dtype=np.uint64) * np.uint64(step)
    raw = counter_bits(counters, *_key(seed)) >> np.uint64(32 - bits)
    return raw.astype(gen) * gen.type(2.0 ** -bits)


def _gen_dtype(dtype):
    dt = np.dtype(dtype)
    return dt, (dt if dt in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64))


def uniform(shape, dtype, seed, offset):
    """Uniform [0, 1) samples; uses counters ``offset .. offset + size - 1``."""
    dt, gen = _gen_dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    return _uniform_bits(size, 1, offset, seed, gen).reshape(shape).astype(dt, copy=False)


def normal(shape, dtype, seed, offset):
    """Standard normals by Box-Muller; uses counters ``offset .. offset + 2 * size - 1``."""
    dt, gen = _gen_dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    u1 = gen.type(1) - _uniform_bits(size, 2, offset, seed, gen)
    u2 = _uniform_bits(size, 2, int(offset) + 1, seed, gen)
    angle = gen.type(2 * math.pi) * u2 - gen.type(math.pi)  # cos(a - pi) = -cos(a): same law
    out = np.sqrt(gen.type(-2) * np.log(u1)) * np.cos(angle)
    return out.reshape(shape).astype(dt, copy=False)
