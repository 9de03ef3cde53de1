"""Elementwise activation kernels: relu forward / backward (grid-stride, coalesced).

Example:
    >>> from cuda_kernels import activation        # doctest: +SKIP
    >>> y = activation.relu_fwd(x)                 # doctest: +SKIP
    >>> gx = activation.relu_bwd(gy, y)            # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda

from . import _launch


@cuda.jit
def relu_fwd_kernel(x, y):
    """y[i] = max(x[i], 0) over flat arrays; NaN propagates (as in PyTorch)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        y[i] = 0 if v <= 0 else v


@cuda.jit
def relu_bwd_kernel(gy, y, gx, zero):
    """gx[i] = 0 where the forward output y[i] <= 0, else gy[i] (NaN passes, as in PyTorch)."""
    for i in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
        gx[i] = zero if y[i] <= 0 else gy[i]


def relu_fwd(x):
    """max(x, 0) as a new array of x's shape and dtype.

    Example:
        >>> relu_fwd(xp.asarray([-1.0, 2.0]))     # doctest: +SKIP
        array([0., 2.])
    """
    x = _launch.contiguous(x)
    y = _launch.xp.empty_like(x)
    _launch.launch(relu_fwd_kernel, _launch.blocks_for(x.size), _launch.TPB,
                   x.reshape(-1), y.reshape(-1))
    return y


def relu_bwd(gy, y):
    """Gradient of relu given the upstream ``gy`` and the forward output ``y``.

    Example:
        >>> relu_bwd(xp.ones(2), xp.asarray([0.0, 2.0]))   # doctest: +SKIP
        array([0., 1.])
    """
    gy = _launch.contiguous(gy)
    y = _launch.contiguous(y)
    if gy.shape != y.shape:
        raise ValueError(f"relu_bwd: gy {gy.shape} and y {y.shape} differ")
    gx = _launch.xp.empty_like(gy)
    _launch.launch(relu_bwd_kernel, _launch.blocks_for(gy.size), _launch.TPB,
                   gy.reshape(-1), y.reshape(-1), gx.reshape(-1), _launch.scalar(0, gy.dtype))
    return gx
