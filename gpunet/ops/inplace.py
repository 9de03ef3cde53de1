"""In-place ops (``x.add_(y)``, ``x[idx] = v``, ``x += 1``) with PyTorch's autograd rules.

The result is written into the tensor's own storage, so views, ``.data`` and ``detach()``
handles see it, and the storage's version counter goes up by one.  Under autograd:

* a leaf that requires grad cannot change in place (PyTorch's error), except under ``no_grad``;
* a non-leaf changes and its gradient flows through the in-place op to the value it had;
* an array some op saved for backward and then changed in place makes that backward raise
  PyTorch's "modified by an inplace operation" error instead of giving a wrong gradient.

Example:
    >>> x = gn.zeros(2, 3)
    >>> x[0] = 1.0
    >>> _ = x[:, 1].add_(5)
    >>> x.tolist(), x._version
    ([[1.0, 6.0, 1.0], [0.0, 5.0, 0.0]], 2)
"""
from __future__ import annotations

import numpy as np

from ..function import Function, is_grad_enabled, no_grad
from ..tensor import Tensor, as_tensor_like
from .shape import _is_basic_index

_KIND_NAMES = {"b": "Bool", "i": "Long", "u": "Byte", "f": "Float"}


def _bump(t):
    if t._vc is None:
        t._vc = [0]
    t._vc[0] += 1


def _check_overlap(self, name):
    """PyTorch's error for writing into a broadcast (expanded) tensor: elements share memory."""
    a = self._data
    if any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the tensor "
                           "before performing the operation.")


def _check_broadcast(self, name, other):
    """PyTorch's error when ``other`` does not broadcast to this tensor's shape."""
    shape = getattr(other, "shape", None)
    if shape is None or tuple(shape) == tuple(self.shape):
        return
    try:
        wide = np.broadcast_shapes(tuple(shape), tuple(self.shape))
    except ValueError:
        wide = None
    if wide != tuple(self.shape):
        raise RuntimeError(f"{name}: the size of tensor {list(shape)} does not broadcast to the "
                           f"size of this tensor {list(self.shape)}")


def _write(self, name, out):
    """Copy the array ``out`` into ``self``'s storage with PyTorch's shape and cast rules."""
    _check_overlap(self, name)
    order = "biuf"
    if order.index(out.dtype.kind) > order.index(self.dtype.kind):
        raise RuntimeError(f"{name}: result type {_KIND_NAMES[out.dtype.kind]} can't be cast to "
                           f"the desired output type {_KIND_NAMES[self.dtype.kind]} "
                           f"(this tensor is {self.dtype})")
    if out.shape != self._data.shape:
        try:
            wide = np.broadcast_shapes(out.shape, self._data.shape)
        except ValueError:
            wide = out.shape
        if wide != self._data.shape:
            raise RuntimeError(f"{name}: output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(wide)}")
    if out is not self._data:
        self._data[...] = out
    _bump(self)


def apply_inplace(self, name, compute, *others):
    """Run ``compute(t)`` (an out-of-place op on tensors) and write its result into ``self``."""
    if not isinstance(self, Tensor):
        raise TypeError(f"{name}: expected a gpunet Tensor, got {type(self).__name__}")
    needs = self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    if not (is_grad_enabled() and needs):
        with no_grad():
            out = compute(self)
        _write(self, name, out._data if isinstance(out, Tensor) else out)
        return self
    if self._node is None and self.requires_grad:
        raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an "
                           "in-place operation. Change it under `with gn.no_grad():` (as an "
                           "optimiser does), or work on a clone()")
    if getattr(self, "_view_base", None) is not None:
        raise RuntimeError(f"{name}: in-place change of a view (a slice, reshape or transpose) "
                           "while autograd records it is not supported in gpunet; write "
                           "`x = x.clone()` first, or build the value out of place")
    before = Tensor._wrap(self._data.copy(), self.backend, self.requires_grad)
    before._node = self._node  # the value this tensor had: where earlier gradients go
    out = compute(before)
    _write(self, name, out._data)
    self._node, self.requires_grad = out._node, out.requires_grad
    return self


class SetItem(Function):
    """``a`` with ``a[index] = value``: the gradient of ``a`` is zero where it was overwritten;
    ``value`` gets the gradient of the places it went to."""

    @staticmethod
    def forward(ctx, a, value, index):
        ctx.index = index
        out = a.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, gy):
        ga = None
        if ctx.needs_input_grad[0]:
            ga = gy.copy()
            ga[ctx.index] = 0
        return ga, gy[ctx.index] if ctx.needs_input_grad[1] else None


def _index(index):
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return index


def setitem(self, index, value):
    """``x[index] = value`` for slices, ints, integer and boolean masks (PyTorch's rules)."""
    index = _index(index)
    given_tensor = isinstance(value, Tensor)
    if not isinstance(value, Tensor):
        if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim):
            value = Tensor(np.asarray(value), backend=self.backend)
        elif self.backend.is_array(value):
            value = Tensor._wrap(value, self.backend)
        else:
            value = as_tensor_like(value, self)
    elif value.backend is not self.backend:
        raise ValueError(f"x[...] = value: value is on backend {value.backend.name!r}, x on "
                         f"{self.backend.name!r}; move it with .to({self.backend.name!r})")
    _check_overlap(self, "x[...] = value")
    if given_tensor and value.dtype != self.dtype and not _is_basic_index(index):
        items = index if isinstance(index, tuple) else (index,)
        mask_fill = len(items) == 1 and getattr(items[0], "dtype", None) == np.bool_ and value.ndim == 0
        if not mask_fill:  # PyTorch's index_put_ casts only numbers (and a 0-d value under a mask)
            raise RuntimeError(f"x[...] = value: Index put requires the source and destination dtypes "
                               f"match, got {self.dtype} for the destination and {value.dtype} for the source")
    while value.ndim and value.shape[0] == 1:  # PyTorch drops a value's leading size-1 dims
        value = value.reshape(value.shape[1:])
    needs = self.requires_grad or value.requires_grad
    try:  # a value of another dtype is cast to this tensor's, as PyTorch's index_put_ does
        if not (is_grad_enabled() and needs):
            self._data[index] = value._data
            _bump(self)
            return
        apply_inplace(self, "x[...] = value", lambda t: SetItem.apply(
            t, value if value.dtype == t.dtype else value.astype(t.dtype), index=index), value)
    except ValueError as exc:  # NumPy's "could not broadcast": PyTorch raises RuntimeError
        raise RuntimeError(f"x[...] = value: {exc}") from None


def _binary(name, op):
    def method(self, other, *, alpha=None):
        if alpha is not None:
            other = other * alpha
        _check_broadcast(self, f"{name}()", other)
        return apply_inplace(self, f"{name}()", lambda t: op(t, other), other)

    method.__name__ = name
    method.__doc__ = f"PyTorch's in-place ``{name}``: writes into this tensor, returns it."
    return method


def _unary(name, fn):
    def method(self, *args, **kwargs):
        return apply_inplace(self, f"{name}()", lambda t: fn(t, *args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"PyTorch's in-place ``{name}``: writes into this tensor, returns it."
    return method


def _filled(self, host):
    """A constant tensor of this tensor's shape and dtype from host values."""
    return Tensor._wrap(self.backend.asarray(np.asarray(host).astype(self.dtype)), self.backend)


def _replace(t, value):
    """``value`` (broadcast, in ``t``'s dtype) in place of every element of ``t``, in the graph:
    ``value`` gets the gradient, ``t`` zero (PyTorch's fill_/copy_ gradients), and no
    arithmetic with ``t``'s old values (``t * 0`` would turn an inf or nan into nan)."""
    from ..creation import Where

    value = value if value.dtype == t.dtype else value.to(t.dtype)
    return Where.apply(value, t, condition=t.backend.xp.ones(t.shape, dtype=bool))


def fill_(self, value):
    """Every element set to ``value`` (a number or a one-element tensor)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_: only supports a 0-dimension value tensor, got shape {list(value.shape)}")
        return apply_inplace(self, "fill_()", lambda t: _replace(t, value), value)
    return apply_inplace(self, "fill_()", lambda t: _replace(t, _filled(t, value)))


def copy_(self, src, non_blocking=False):
    """``src``'s values (broadcast to this shape, cast to this dtype) written into this tensor."""
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_: src must be a gpunet Tensor, got {type(src).__name__}")
    if src.backend is not self.backend:
        src = src.to(self.backend)
    _check_broadcast(self, "copy_()", src)
    return apply_inplace(self, "copy_()", lambda t: _replace(t, src), src)


def uniform_(self, a=0.0, b=1.0):
    """Fill with U(a, b) from gpunet's seeded host generator (``gn.manual_seed``)."""
    from ..random import host_rng

    return apply_inplace(self, "uniform_()", lambda t: _replace(t, _filled(t, host_rng().uniform(a, b, t.shape))))


def normal_(self, mean=0.0, std=1.0):
    """Fill with N(mean, std²) from gpunet's seeded host generator (``gn.manual_seed``)."""
    from ..random import host_rng

    return apply_inplace(self, "normal_()", lambda t: _replace(t, _filled(t, host_rng().normal(mean, std, t.shape))))


def install(cls):
    """Attach the in-place methods and operators to Tensor."""
    import operator

    cls.__setitem__ = setitem
    for name, op in (("add_", operator.add), ("sub_", operator.sub), ("mul_", operator.mul),
                     ("div_", operator.truediv)):
        setattr(cls, name, _binary(name, op))
    cls.true_divide_ = cls.div_
    cls.pow_ = _binary("pow_", operator.pow)
    for dunder, name in (("iadd", "add_"), ("isub", "sub_"), ("imul", "mul_"), ("itruediv", "div_"),
                         ("ipow", "pow_")):
        setattr(cls, f"__{dunder}__", getattr(cls, name))
    cls.zero_ = lambda t: fill_(t, 0)
    cls.fill_, cls.copy_, cls.uniform_, cls.normal_ = fill_, copy_, uniform_, normal_
    unary = {"exp_": lambda t: t.exp(), "log_": lambda t: t.log(), "sqrt_": lambda t: t.sqrt(),
             "abs_": lambda t: t.abs(), "neg_": lambda t: -t, "sigmoid_": lambda t: t.sigmoid(),
             "tanh_": lambda t: t.tanh(), "relu_": lambda t: t.relu(),
             "clamp_": lambda t, min=None, max=None: t.clamp(min, max),
             "masked_fill_": lambda t, mask, value: t.masked_fill(mask, value)}
    for name, fn in unary.items():
        setattr(cls, name, _unary(name, fn))
    cls.clip_ = cls.clamp_
