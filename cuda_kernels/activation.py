"""Activation kernels: relu and leaky_relu forward / backward, and the bias + ReLU epilogue of a linear layer.

``bias_relu_fwd`` adds the bias to a GEMM's (M, F) output in place and applies the ReLU that
follows the layer, in one pass; ``bias_relu_bwd`` masks the upstream gradient by that ReLU and
sums the bias gradient over the rows, in one launch: the rows are split about 16 per block and
the last block of a column tile adds the splits' sums in a fixed order (the same bits every run).

Example:
    >>> from cuda_kernels import activation        # doctest: +SKIP
    >>> y = activation.relu_fwd(x)                 # doctest: +SKIP
    >>> gx = activation.relu_bwd(gy, y)            # doctest: +SKIP
"""
from __future__ import annotations

from numba import cuda, int32

from . import _launch, checks
from ._device import last_to_arrive, sum_splits

SHARED = _launch.SHARED_SIZE


@_launch.cached_jit
def relu_fwd_kernel(x, y):
    """y[i] = max(x[i], 0) over flat arrays; NaN propagates (as in PyTorch)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        y[i] = 0 if v <= 0 else v


@_launch.cached_jit
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


@_launch.cached_jit
def leaky_relu_fwd_kernel(x, y, slope):
    """y[i] = x[i] if x[i] > 0 else slope * x[i] (NaN propagates)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        y[i] = v if v > 0 else v * slope


@_launch.cached_jit
def leaky_relu_bwd_kernel(gy, x, gx, slope):
    """gx[i] = gy[i] where the forward input x[i] > 0, else slope * gy[i] (x = 0 and NaN too)."""
    for i in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
        gx[i] = gy[i] if x[i] > 0 else gy[i] * slope


def leaky_relu_fwd(x, negative_slope):
    """x where x > 0, else ``negative_slope * x``, as a new array of x's shape and dtype.

    Example:
        >>> leaky_relu_fwd(xp.asarray([-2.0, 3.0]), 0.5)     # doctest: +SKIP
        array([-1.,  3.])
    """
    x = _launch.contiguous(x)
    y = _launch.xp.empty_like(x)
    _launch.launch(leaky_relu_fwd_kernel, _launch.blocks_for(x.size), _launch.TPB,
                   x.reshape(-1), y.reshape(-1), _launch.scalar(negative_slope, x.dtype))
    return y


def leaky_relu_bwd(gy, x, negative_slope):
    """Gradient of leaky_relu given the upstream ``gy`` and the forward input ``x``.

    Example:
        >>> leaky_relu_bwd(xp.ones(2), xp.asarray([-2.0, 3.0]), 0.5)   # doctest: +SKIP
        array([0.5, 1. ])
    """
    gy, x = _launch.contiguous(gy), _launch.contiguous(x)
    if gy.shape != x.shape:
        raise ValueError(f"leaky_relu_bwd: gy {gy.shape} and x {x.shape} differ")
    gx = _launch.xp.empty_like(gy)
    _launch.launch(leaky_relu_bwd_kernel, _launch.blocks_for(gy.size), _launch.TPB,
                   gy.reshape(-1), x.reshape(-1), gx.reshape(-1),
                   _launch.scalar(negative_slope, gy.dtype))
    return gx


@_launch.cached_jit
def bias_relu_fwd_kernel(y, bias, has_bias, relu, zero):
    """y[r, j] = y[r, j] (+ bias[j]), then max(., 0) when ``relu`` (NaN passes), in place."""
    M, F = y.shape
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        r = i // F
        j = i - r * F
        v = y[r, j]
        if has_bias:
            v += bias[j]
        if relu and v <= 0:
            v = zero
        y[r, j] = v


def _make_bias_relu_bwd(acc_t):
    @_launch.cached_jit
    def bias_relu_bwd_kernel(gy, y, g, gb, relu, has_bias, per, partial, tickets):
        """Block (tile, s) of (cols, rows) threads: column j = tile*cols + x sums the rows x.y,
        x.y + rows, ... of split s (``per`` rows), masking by the ReLU and writing g where
        ``relu``; thread row 0 adds the ``rows`` sums in order into partial[s, j].  The last
        of a tile's blocks to finish adds partial[0..S, j] in order, so gb is the same bits
        on every run."""
        sm = cuda.shared.array(SHARED, dtype=acc_t)
        last = cuda.shared.array(1, dtype=int32)
        M, F = gy.shape
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        cols = cuda.blockDim.x
        rows = cuda.blockDim.y
        s = cuda.blockIdx.y
        splits = cuda.gridDim.y
        for j0 in range(cuda.blockIdx.x * cols, F, cuda.gridDim.x * cols):
            j = j0 + tx
            acc = acc_t(0)
            if j < F:
                for r in range(s * per + ty, min(M, s * per + per), rows):
                    v = gy[r, j]
                    if relu:
                        if y[r, j] <= 0:
                            v = acc_t(0)
                        g[r, j] = v
                    acc += v
            if has_bias:
                sm[ty * cols + tx] = acc
                cuda.syncthreads()
                if ty == 0 and j < F:
                    total = acc_t(0)
                    for q in range(rows):
                        total += sm[q * cols + tx]
                    partial[s, j] = total
                if last_to_arrive(tickets, j0 // cols, splits, last, ty * cols + tx):
                    if ty == 0 and j < F:
                        gb[j] = sum_splits(partial, j, splits, acc_t(0))
                    if ty == 0 and tx == 0:
                        tickets[j0 // cols] = 0
                cuda.syncthreads()

    return bias_relu_bwd_kernel


_cache: dict = {}


def bias_relu_bwd_kernel(dtype):
    """The linear layer's backward epilogue kernel for ``dtype``."""
    return _launch.specialised(_cache, _make_bias_relu_bwd, dtype)


def bias_relu_fwd(y, bias, relu):
    """``y`` (M, F), C-contiguous: add ``bias`` (F,) (or None) and apply a ReLU when ``relu``,
    in place; returns ``y``.

    Example:
        >>> bias_relu_fwd(xp.asarray([[-2.0, 1.0]]), xp.asarray([1.0, 1.0]), True)   # doctest: +SKIP
        array([[0., 2.]])
    """
    if y.ndim != 2 or not y.flags.c_contiguous:
        raise ValueError(f"bias_relu_fwd: y must be a C-contiguous (M, F) array, got shape {y.shape}")
    b = y.reshape(-1)[:1] if bias is None else _launch.contiguous(bias).astype(y.dtype, copy=False)
    if y.size:
        _launch.launch(bias_relu_fwd_kernel, _launch.blocks_for(y.size), _launch.TPB,
                       y, b, bias is not None, bool(relu), _launch.scalar(0, y.dtype))
    return y


def bias_relu_bwd(gy, y, relu, need_bias):
    """``(g, gb)``: ``gy`` (M, F) masked where the forward output ``y`` <= 0 (``gy`` itself
    unless ``relu``) and the bias gradient summed over the rows (None unless ``need_bias``).

    Example:
        >>> g, gb = bias_relu_bwd(gy, y, relu=True, need_bias=True)   # doctest: +SKIP
    """
    gy = _launch.contiguous(gy)
    m, f = gy.shape
    xp = _launch.xp
    g = xp.empty_like(gy) if relu else gy
    gb = xp.empty((f,), gy.dtype) if need_bias else None
    if not (relu or need_bias):
        return g, gb
    if m == 0 or f == 0:
        if gb is not None:
            gb[...] = 0
        return g, gb
    cols = 8 if _launch.SIMULATOR else 32
    rows = 4 if _launch.SIMULATOR else 8
    yc = _launch.contiguous(y) if relu else gy
    splits, per, partial, tickets = checks.split_reduction(m, f if need_bias else 0, gy.dtype,
                                                           -(-f // cols))
    _launch.launch(bias_relu_bwd_kernel(gy.dtype), (_launch.blocks_for(f, cols), splits),
                   (cols, rows), gy, yc, g, gb if need_bias else gy.reshape(-1)[:1], bool(relu),
                   bool(need_bias), per, partial, tickets)
    return g, gb
