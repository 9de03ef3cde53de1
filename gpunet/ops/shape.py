"""Shape ops: reshape, transpose, indexing, stack and concat (plain ``xp`` code for every backend).

Example:
    >>> F.stack([gn.ones(2, 3), gn.zeros(2, 3)], dim=0).shape
    (2, 2, 3)
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .math import _norm_axis


class Reshape(Function):
    """The same elements in a new shape; the gradient is reshaped back."""

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, gy):
        return (gy.reshape(ctx.shape),)


class Transpose(Function):
    """Dimensions permuted by ``axes``; the gradient takes the inverse permutation."""

    @staticmethod
    def forward(ctx, a, axes=None):
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, gy):
        if ctx.axes is None:
            return (gy.transpose(),)
        inverse = [0] * len(ctx.axes)
        for i, ax in enumerate(ctx.axes):
            inverse[ax] = i
        return (gy.transpose(inverse),)


class GetItem(Function):
    """Indexing ``a[index]`` (basic or advanced); the gradient is scattered back, summing repeats."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.index, ctx.shape = index, a.shape
        return a[index]

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        g = xp.zeros(ctx.shape, dtype=gy.dtype)
        if _is_basic_index(ctx.index):
            g[ctx.index] = gy  # ints and slices name each element at most once: no add.at needed
        else:
            xp.add.at(g, ctx.index, gy)  # NOTE: add.at so repeated fancy indices accumulate
        return (g,)


def _is_basic_index(index):
    """True for NumPy basic indexing: ints, slices, None and Ellipsis (alone or in a tuple)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice)
               or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)))
               for i in items)


class Stack(Function):
    """Join same-shaped arrays along a new axis; backward hands each input its slice."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        return ctx.backend.xp.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, gy):
        parts = ctx.backend.xp.moveaxis(gy, ctx.axis, 0)
        return tuple(parts[i] if need else None for i, need in enumerate(ctx.needs_input_grad))


class Concat(Function):
    """Join arrays along an existing axis; backward splits the gradient at the same offsets."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.offsets = []
        total = 0
        for a in arrays[:-1]:
            total += a.shape[axis]
            ctx.offsets.append(total)
        return ctx.backend.xp.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, gy):
        parts = ctx.backend.xp.split(gy, ctx.offsets, axis=ctx.axis)
        return tuple(p if need else None for p, need in zip(parts, ctx.needs_input_grad))


# --- the functions users call (gpunet.functional re-exports them) ---------------
def flatten(x, start_dim=1):
    """Merge the dimensions from start_dim on: (N, C, H, W) -> (N, C*H*W) (also for N = 0)."""
    size = 1
    for s in x.shape[start_dim:]:
        size *= s
    return x.reshape(x.shape[:start_dim] + (size,))


def _tensor_list(fn, tensors):
    tensors = list(tensors) if isinstance(tensors, (list, tuple)) else None
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{fn}: tensors must be a non-empty list or tuple of gpunet Tensors")
    return tensors


def stack(tensors, dim=0, *, axis=None):
    """Join same-shaped tensors along a new dim (``axis=`` is an alias).

    Example:
        >>> F.stack([gn.ones(2, 3), gn.zeros(2, 3)], dim=0).shape
        (2, 2, 3)
    """
    axis = dim if axis is None else axis
    tensors = _tensor_list("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return Stack.apply(*tensors, axis=axis)


def concat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dim (their other dims must match); ``gn.cat`` too.

    Example:
        >>> F.concat([gn.ones(2, 3), gn.zeros(2, 5)], dim=1).shape
        (2, 8)
    """
    axis = dim if axis is None else axis
    tensors = _tensor_list("concat", tensors)
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated; stack them, "
                         "or reshape them to (1,) first")
    ax = _norm_axis(axis, ref.ndim)[0]
    for t in tensors:
        if t.ndim != ref.ndim or t.shape[:ax] + t.shape[ax + 1:] != ref.shape[:ax] + ref.shape[ax + 1:]:
            raise ValueError(f"concat: shapes {[u.shape for u in tensors]} differ outside axis {axis}")
    return Concat.apply(*tensors, axis=ax)


cat = concat
