"""Python operators and methods on Tensor (``+``, ``@``, ``.sum()``, ``[...]``…), each one Function.

Where PyTorch has the name, the method means what it means in PyTorch: ``transpose(0, 1)`` swaps
two dims, ``max(1)`` returns ``(values, indices)``, ``size()`` is the shape, ``dim=`` and
``keepdim=`` name the axes (NumPy's ``axis=`` / ``keepdims=`` are accepted as aliases).
"""
from __future__ import annotations

import numpy as np

from .indexing import Cast, Clone, TakeAlongDim, ValuesIndices
from .math import (Abs, Add, Clip, Cos, Div, Exp, Log, MatMul, Max, Maximum, Mean, Mul, Neg, Pow,
                   PowTensor, Sin, Sqrt, Sub, Sum, _norm_axis, dim_index)
from .sampling import multinomial
from .shape import GetItem, Reshape, Transpose



def _dim(name, dim, axis):
    if axis is None:
        return dim
    if dim is not None and dim != axis:
        raise TypeError(f"{name}(): got dim={dim!r} and axis={axis!r}; pass one of them")
    return axis


def _keep(name, keepdim, keepdims):
    return keepdim if keepdims is None else bool(keepdims)


def _promote(a, b):
    """PyTorch's promotion for a float tensor with an integer one: the float dtype wins."""
    from ..tensor import Tensor, as_tensor_like

    if isinstance(a, Tensor) != isinstance(b, Tensor):  # a Python number or an array
        a, b = (a, as_tensor_like(b, a)) if isinstance(a, Tensor) else (as_tensor_like(a, b), b)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        fa, fb = a.dtype.kind == "f", b.dtype.kind == "f"
        if fa and not fb:
            b = b.astype(a.dtype)
        elif fb and not fa:
            a = a.astype(b.dtype)
    return a, b


def _binary(fn, reverse=False):
    if reverse:
        return lambda self, other: fn.apply(*_promote(other, self))
    return lambda self, other: fn.apply(*_promote(self, other))


def _pow(self, p):
    from ..tensor import Tensor

    if isinstance(p, Tensor):
        return PowTensor.apply(*_promote(self, p))
    return Pow.apply(self, p=p)


def _rpow(self, base):
    from ..tensor import as_tensor_like

    return PowTensor.apply(as_tensor_like(base, self), self)


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _reshape(self, *shape):
    return Reshape.apply(self, shape=_shape_args(shape))


def _permute(self, *dims):
    dims = tuple(d % max(self.ndim, 1) for d in _shape_args(dims))
    if sorted(dims) != list(range(self.ndim)):
        raise ValueError(f"permute(): dims {dims} are not a permutation of 0..{self.ndim - 1}")
    return Transpose.apply(self, axes=dims)


def _transpose(self, *dims):
    if len(dims) != 2 or not all(isinstance(d, int) for d in dims):
        raise TypeError(f"transpose(dim0, dim1) swaps two dims (PyTorch's meaning), got {dims!r}; "
                        "use permute(*dims) to reorder all of them, or .T to reverse them")
    order = list(range(self.ndim))
    d0, d1 = (d % max(self.ndim, 1) for d in dims)
    order[d0], order[d1] = order[d1], order[d0]
    return Transpose.apply(self, axes=tuple(order))


def _squeeze(self, dim=None):
    shape = self.shape
    if dim is None:
        new = tuple(n for n in shape if n != 1)
    else:
        d = dim % max(self.ndim, 1)
        new = shape[:d] + shape[d + 1:] if shape and shape[d] == 1 else shape
    return Reshape.apply(self, shape=new)


def _unsqueeze(self, dim):
    d = dim % (self.ndim + 1)
    return Reshape.apply(self, shape=self.shape[:d] + (1,) + self.shape[d:])


def _reduced_dim(name, dim, shape, hint=""):
    """The one ``dim`` that max/min/argmax/argmin reduce, checked as PyTorch checks it."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): dim must be one int, got {dim!r}{hint}")
    d = dim_index(int(dim), len(shape))
    if shape and shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size "
                         f"(the tensor's shape is {tuple(shape)})")
    return d


def _nonempty(name, self):
    if self._data.size == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for an empty tensor "
                           f"(shape {tuple(self.shape)}). Specify the reduction dim with the 'dim' argument.")


def _extreme(name):
    full, arg = (Max, "argmax") if name == "max" else (None, "argmin")

    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        from ..tensor import Tensor

        dim, keepdim = _dim(name, dim, axis), _keep(name, keepdim, keepdims)
        if dim is None:
            if keepdim:
                raise TypeError(f"{name}(): keepdim=True needs a dim; {name}() without one reduces "
                                f"the whole tensor to one value (use a{name}(dim, keepdim=True) "
                                "for several dims)")
            _nonempty(name, self)
            return full.apply(self) if full else -Max.apply(-self)
        d = _reduced_dim(name, dim, self.shape, f"; a{name}() takes a tuple of dims")
        if self.ndim == 0:  # PyTorch: the value itself, at index 0
            return ValuesIndices(Clone.apply(self), Tensor._wrap(self.backend.xp.zeros((), np.int64), self.backend))
        index = getattr(self._data, arg)(axis=d)
        values = TakeAlongDim.apply(self, dim=d, keepdim=keepdim, index=index)
        idx = Tensor._wrap(self.backend.xp.expand_dims(index, d) if keepdim else index, self.backend)
        return ValuesIndices(values, idx)

    return method


def _argextreme(name):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _dim(name, dim, axis), _keep(name, keepdim, keepdims)
        if dim is None:  # the flat index; keepdim keeps every dim, at size 1 (PyTorch's rule)
            _nonempty(name, self)
            out = getattr(self._data.reshape(-1), name)(axis=0)
            out = out.reshape((1,) * self.ndim) if keepdim else out
        else:
            out = getattr(self._data, name)(axis=_reduced_dim(name, dim, self.shape), keepdims=keepdim)
        return type(self)._wrap(out.astype(np.int64), self.backend)

    return method


def _reduction(fn, name):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        out = fn.apply(self, axis=_dim(name, dim, axis), keepdims=_keep(name, keepdim, keepdims))
        return out if dtype is None else out.astype(dtype)

    return method


def _amax(name):
    """``amax``/``amin``: over one dim or a tuple of them (all when ``dim`` is ``()`` or None);
    tied extremes share the gradient evenly, as in PyTorch."""
    def method(self, dim=(), keepdim=False):
        empty = isinstance(dim, (tuple, list)) and len(dim) == 0
        axis = None if dim is None or empty else dim
        if axis is None:
            _nonempty(name, self)
        else:
            for d in ((axis,) if isinstance(axis, (int, np.integer)) else axis):
                _reduced_dim(name, d, self.shape)
        if name == "amax":
            return Max.apply(self, axis=axis, keepdims=keepdim)
        return -Max.apply(-self, axis=axis, keepdims=keepdim)

    return method


def _var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
         keepdims=None):
    """PyTorch's var: unbiased (correction=1) by default."""
    dim, keepdim = _dim("var", dim, axis), _keep("var", keepdim, keepdims)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _norm_axis(dim, self.ndim)
    count = 1
    for ax in axes:
        count *= self.shape[ax]
    centred = self - Mean.apply(self, axis=dim, keepdims=True)
    return Sum.apply(centred * centred, axis=dim, keepdims=keepdim) / max(count - correction, 0)


def _getitem(self, index):
    from ..tensor import Tensor

    if isinstance(index, Tensor):
        index = index._data
    elif isinstance(index, tuple):
        index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(self, index=index)


def install(cls):
    """Attach the operators to the Tensor class (called once by gpunet.tensor)."""
    for dunder, fn in (("add", Add), ("sub", Sub), ("mul", Mul), ("truediv", Div),
                       ("matmul", MatMul)):
        setattr(cls, f"__{dunder}__", _binary(fn))
        setattr(cls, f"__r{dunder}__", _binary(fn, reverse=True))
    cls.__neg__ = lambda a: Neg.apply(a)
    cls.__pow__ = _pow
    cls.__rpow__ = _rpow
    cls.__getitem__ = _getitem
    cls.exp = lambda a: Exp.apply(a)
    cls.log = lambda a: Log.apply(a)
    cls.abs = cls.__abs__ = lambda a: Abs.apply(a)
    cls.all, cls.any = _truth("all"), _truth("any")
    cls.sqrt = lambda a: Sqrt.apply(a)
    cls.clip = lambda a, lo=None, hi=None: Clip.apply(a, lo=lo, hi=hi)
    cls.clamp = lambda a, min=None, max=None: Clip.apply(a, lo=min, hi=max)
    cls.sum = _reduction(Sum, "sum")
    cls.mean = _reduction(Mean, "mean")
    cls.max, cls.min = _extreme("max"), _extreme("min")
    cls.argmax, cls.argmin = _argextreme("argmax"), _argextreme("argmin")
    cls.amax, cls.amin = _amax("amax"), _amax("amin")
    cls.var = _var
    cls.std = lambda a, *args, **kw: Sqrt.apply(_var(a, *args, **kw))
    cls.reshape = cls.view = _reshape
    cls.transpose = _transpose
    cls.permute = _permute
    cls.squeeze, cls.unsqueeze = _squeeze, _unsqueeze
    cls.flatten = lambda a, start_dim=0, end_dim=-1: _reshape(
        a, a.shape[:start_dim] + (-1,) + a.shape[end_dim % max(a.ndim, 1) + 1:])
    cls.clone = lambda a: Clone.apply(a)
    cls.float = lambda a: Cast.apply(a, dtype="float32") if a.dtype.kind == "f" else a.astype("float32")
    cls.double = lambda a: Cast.apply(a, dtype="float64") if a.dtype.kind == "f" else a.astype("float64")
    cls.long = lambda a: a.astype("int64")
    cls.int = lambda a: a.astype("int32")
    cls.bool = lambda a: a.astype("bool")
    cls.pow = _pow
    cls.t = _t
    cls.contiguous = lambda a: a if a._in_c_order()._data.flags.c_contiguous else Clone.apply(a)
    cls.view_as = cls.reshape_as = lambda a, other: _reshape(a, other.shape)
    for name in ("zeros", "ones", "empty"):
        setattr(cls, f"new_{name}", _new(name))
    cls.new_full = _new_full
    cls.new_tensor = _new_tensor
    for name in ("sigmoid", "tanh", "relu", "softmax", "log_softmax"):
        setattr(cls, name, _functional(name))
    # comparisons give constant (non-differentiable) boolean tensors
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        setattr(cls, name, _comparison(name))
        setattr(cls, name.strip("_"), _comparison(name))  # t.eq(other), t.lt(other), ...
    cls.__hash__ = object.__hash__
    cls.sin, cls.cos = (lambda a: Sin.apply(a)), (lambda a: Cos.apply(a))
    cls.maximum = lambda a, other: Maximum.apply(*_promote(a, other))
    cls.minimum = lambda a, other: Maximum.apply(*_promote(a, other), lower=True)
    cls.bmm = _bmm
    cls.multinomial = lambda a, num_samples, replacement=False, *, generator=None: \
        multinomial(a, num_samples, replacement, generator=generator)
    from . import indexing, inplace, shape

    shape.install(cls)
    indexing.install(cls)
    inplace.install(cls)


def _bmm(a, b):
    """PyTorch's ``bmm``: (b, n, m) @ (b, m, p) -> (b, n, p), both 3-D with equal batches."""
    from ..tensor import Tensor

    if not isinstance(b, Tensor) or a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: batch1 and batch2 must be 3D tensors, got {a.ndim}D and "
                           f"{b.ndim if isinstance(b, Tensor) else type(b).__name__}")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"bmm: batch1 {list(a.shape)} and batch2 {list(b.shape)} do not match "
                           "(need (b, n, m) and (b, m, p))")
    return MatMul.apply(*_promote(a, b))


def _t(a):
    """PyTorch's ``t()``: a 2-D tensor transposed; 0-D and 1-D ones as they are."""
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D")
    return a if a.ndim < 2 else _transpose(a, 0, 1)


def _like(a, dtype, device, requires_grad, host):
    from .. import backends
    from ..tensor import Tensor

    be = a.backend if device is None else backends.resolve(device)
    return Tensor._wrap(be.asarray(host.astype(a.dtype if dtype is None else np.dtype(dtype))),
                        be, requires_grad)


def _new(name):
    def new(a, *size, dtype=None, device=None, requires_grad=False):
        """PyTorch's ``new_zeros/new_ones/new_empty``: this tensor's dtype and backend."""
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        host = np.zeros(size) if name != "ones" else np.ones(size)
        return _like(a, dtype, device, requires_grad, host)

    return new


def _new_full(a, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """PyTorch's ``new_full``: ``size`` filled with ``fill_value``, this tensor's dtype."""
    return _like(a, dtype, device, requires_grad, np.full(tuple(size), fill_value))


def _new_tensor(a, data, *, dtype=None, device=None, requires_grad=False):
    """PyTorch's ``new_tensor``: a copy of ``data`` with this tensor's dtype and backend."""
    return _like(a, dtype, device, requires_grad, np.array(data))


def _functional(name):
    def method(a, *args, **kwargs):
        from .. import functional as F

        return getattr(F, name)(a, *args, **kwargs)

    method.__name__ = name
    return method


def _truth(name):
    def truth(a, dim=None, keepdim=False):
        """PyTorch's all/any: a constant boolean tensor, over ``dim`` or every element."""
        from ..tensor import Tensor

        if dim is not None:
            if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
                raise TypeError(f"{name}(): dim must be one int, got {dim!r}")
            dim = dim_index(int(dim), a.ndim)
        out = getattr(a._data.astype(bool), name)(axis=dim, keepdims=keepdim)
        return Tensor._wrap(a.backend.xp.asarray(out), a.backend)

    return truth


def _comparison(name):
    def compare(a, b):
        from ..tensor import Tensor

        other = b._data if isinstance(b, Tensor) else b
        return Tensor._wrap(getattr(a._data, name)(other), a.backend)

    return compare
