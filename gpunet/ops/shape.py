"""Shape ops: reshape, transpose, indexing, stack and concat (plain ``xp`` code for every backend).

Example:
    >>> F.stack([gn.ones(2, 3), gn.zeros(2, 3)], dim=0).shape
    gpunet.Size([2, 2, 3])
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .math import _norm_axis


class Reshape(Function):
    """The same elements in a new shape; the gradient is reshaped back."""

    view_of_input = True

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, gy):
        return (gy.reshape(ctx.shape),)


class Transpose(Function):
    """Dimensions permuted by ``axes``; the gradient takes the inverse permutation."""

    view_of_input = True

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

    view_of_input = True

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
        gpunet.Size([2, 2, 3])
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
        gpunet.Size([2, 8])
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


class Expand(Function):
    """A broadcast view of ``a`` at ``shape`` (no copy); the gradient is summed back."""

    view_of_input = True

    @staticmethod
    def forward(ctx, a, shape):
        return ctx.backend.xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, gy):
        return (gy,)  # Tensor.backward sums a broadcast gradient back to the input's shape


class Repeat(Function):
    """``a`` tiled ``reps`` times along each dim (PyTorch's ``repeat``, NumPy's ``tile``)."""

    @staticmethod
    def forward(ctx, a, reps):
        ctx.shape = (1,) * (len(reps) - a.ndim) + a.shape
        ctx.in_shape, ctx.reps = a.shape, reps
        return ctx.backend.xp.tile(a.reshape(ctx.shape), reps)

    @staticmethod
    def backward(ctx, gy):
        pairs = [n for r, s in zip(ctx.reps, ctx.shape) for n in (r, s)]
        g = gy.reshape(pairs).sum(axis=tuple(range(0, len(pairs), 2)))
        return (g.reshape(ctx.in_shape),)


class Roll(Function):
    """``a`` shifted cyclically by ``shifts`` along ``dims`` (all elements, flat, when None)."""

    @staticmethod
    def forward(ctx, a, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return ctx.backend.xp.roll(a, shifts, dims)

    @staticmethod
    def backward(ctx, gy):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return (ctx.backend.xp.roll(gy, back, ctx.dims),)


class Triangle(Function):
    """The lower (``tril``) or upper (``triu``) triangle of the last two dims; zeros elsewhere."""

    @staticmethod
    def forward(ctx, a, upper, diagonal):
        ctx.upper, ctx.diagonal = upper, diagonal
        xp = ctx.backend.xp
        return xp.triu(a, diagonal) if upper else xp.tril(a, diagonal)

    @staticmethod
    def backward(ctx, gy):
        xp = ctx.backend.xp
        return (xp.triu(gy, ctx.diagonal) if ctx.upper else xp.tril(gy, ctx.diagonal),)


def _dim(name, dim, ndim):
    from .math import dim_index

    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): dim must be an int, got {dim!r}")
    return dim_index(int(dim), ndim)


def expand(x, *sizes):
    """PyTorch's ``expand``: a broadcast view; -1 keeps a dim, new dims go in front.

    Example:
        >>> gn.tensor([[1], [2]]).expand(2, 3).tolist()
        [[1, 1, 1], [2, 2, 2]]
    """
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                           f"equal to the number of dimensions in the tensor ({x.ndim})")
    lead = len(sizes) - x.ndim
    shape = []
    for i, n in enumerate(sizes):
        have = x.shape[i - lead] if i >= lead else None
        if n == -1:
            if have is None:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing dimension {i}")
            n = have
        if have is not None and have != 1 and have != n:
            raise RuntimeError(f"expand: the expanded size of the tensor ({n}) must match the existing "
                               f"size ({have}) at non-singleton dimension {i}. Target sizes: "
                               f"{list(sizes)}. Tensor sizes: {list(x.shape)}")
        shape.append(int(n))
    return Expand.apply(x, shape=tuple(shape))


def repeat(x, *reps):
    """PyTorch's ``repeat``: tile ``x`` ``reps[d]`` times along each dim (a copy).

    Example:
        >>> gn.tensor([1, 2]).repeat(2, 2).tolist()
        [[1, 2, 1, 2], [1, 2, 1, 2]]
    """
    reps = tuple(reps[0]) if len(reps) == 1 and isinstance(reps[0], (tuple, list)) else reps
    if len(reps) < x.ndim:
        raise RuntimeError("repeat: number of dimensions of repeat dims can not be smaller than "
                           f"number of dimensions of tensor (got {len(reps)} for a {x.ndim}-D tensor)")
    if any(int(r) < 0 for r in reps):
        raise RuntimeError(f"repeat: Trying to create tensor with negative dimension (repeats {list(reps)})")
    return Repeat.apply(x, reps=tuple(int(r) for r in reps))


def narrow(input, dim, start, length):
    """``length`` elements of ``input`` along ``dim`` from ``start`` (a view), as ``torch.narrow``.

    Example:
        >>> gn.narrow(gn.arange(6).reshape(2, 3), 1, 1, 2).tolist()
        [[1, 2], [4, 5]]
    """
    d = _dim("narrow", dim, input.ndim)
    n = input.shape[d]
    if not -n <= int(start) <= n:
        raise IndexError(f"narrow(): start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    start = int(start) + (n if int(start) < 0 else 0)
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > n:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return input[(slice(None),) * d + (slice(start, start + int(length)),)]


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``split_size_or_sections`` along ``dim`` (the last may be smaller), or of the
    listed sizes, as ``torch.split``.

    Example:
        >>> [p.tolist() for p in gn.split(gn.arange(5), 2)]
        [[0, 1], [2, 3], [4]]
    """
    d = _dim("split", dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input "
                               f"tensor's size at dimension {d}), but got split_sizes={sizes}")
    else:
        step = int(split_size_or_sections)
        if step <= 0 and n:
            raise RuntimeError(f"split(): split_size can only be 0 if dimension size is 0, but got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] if n else [0]
    pieces, at = [], 0
    for s in sizes:
        pieces.append(tensor[(slice(None),) * d + (slice(at, at + s),)])
        at += s
    return tuple(pieces)


def chunk(input, chunks, dim=0):
    """``input`` in ``chunks`` pieces of ceil(n / chunks) along ``dim`` (fewer when that does not
    divide), as ``torch.chunk``.

    Example:
        >>> [p.shape for p in gn.chunk(gn.zeros(5, 2), 3)]
        [gpunet.Size([2, 2]), gpunet.Size([2, 2]), gpunet.Size([1, 2])]
    """
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = input.shape[_dim("chunk", dim, input.ndim)]
    if n == 0:  # PyTorch: `chunks` empty pieces
        return split(input, [0] * int(chunks), dim)
    return split(input, -(-n // int(chunks)), dim)


def roll(input, shifts, dims=None):
    """Elements shifted cyclically by ``shifts`` along ``dims`` (flat when None), as ``torch.roll``.

    Example:
        >>> gn.roll(gn.tensor([[1, 2, 3], [4, 5, 6]]), 1, 1).tolist()
        [[3, 1, 2], [6, 4, 5]]
    """
    if isinstance(shifts, (list, tuple)):
        shifts = tuple(int(s) for s in shifts)
        if not shifts:
            raise RuntimeError("roll(): `shifts` required")
    if isinstance(dims, (list, tuple)):
        dims = tuple(_dim("roll", d, input.ndim) for d in dims)
        if not isinstance(shifts, tuple) or len(shifts) != len(dims):
            raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {shifts}, dims: {dims}")
    elif dims is not None:
        dims = _dim("roll", dims, input.ndim)
    elif isinstance(shifts, tuple) and len(shifts) != 1:
        raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {shifts}, dims: None")
    return Roll.apply(input, shifts=shifts, dims=dims)


def _triangle(name):
    def triangle(input, diagonal=0):
        if input.ndim < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
        return Triangle.apply(input, upper=name == "triu", diagonal=int(diagonal))

    part = "on and below" if name == "tril" else "on and above"
    triangle.__name__ = triangle.__qualname__ = name
    triangle.__doc__ = (f"The elements {part} the ``diagonal`` of the last two dims, zeros elsewhere "
                        f"(``torch.{name}``).\n\n    Example:\n        >>> gn.{name}(gn.ones(2, 2)).tolist()\n"
                        f"        {[[1.0, 0.0], [1.0, 1.0]] if name == 'tril' else [[1.0, 1.0], [0.0, 1.0]]}\n")
    return triangle


tril, triu = _triangle("tril"), _triangle("triu")


def install(cls):
    """Attach the shape methods above to Tensor."""
    cls.expand, cls.repeat, cls.narrow, cls.split, cls.chunk = expand, repeat, narrow, split, chunk
    cls.roll, cls.tril, cls.triu = roll, tril, triu
    cls.expand_as = lambda a, other: expand(a, other.shape)
