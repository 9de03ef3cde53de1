"""Python operators and methods on Tensor (``+``, ``@``, ``.sum()``, ``[...]``…), each one Function."""
from __future__ import annotations

from . import math as M


def _reverse(fn):
    return lambda self, other: fn.apply(other, self)


def _pow(self, p):
    from ..tensor import Tensor

    if isinstance(p, Tensor):
        return M.Exp.apply(M.Mul.apply(p, M.Log.apply(self)))  # a ** b = exp(b log a)
    return M.Pow.apply(self, p=p)


def _reshape(self, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return M.Reshape.apply(self, shape=shape)


def _transpose(self, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return M.Transpose.apply(self, axes=axes or None)


def _getitem(self, index):
    from ..tensor import Tensor

    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return M.GetItem.apply(self, index=index)


def install(cls):
    """Attach the operators to the Tensor class (called once by gpunet.tensor)."""
    cls.__add__ = lambda a, b: M.Add.apply(a, b)
    cls.__radd__ = _reverse(M.Add)
    cls.__sub__ = lambda a, b: M.Sub.apply(a, b)
    cls.__rsub__ = _reverse(M.Sub)
    cls.__mul__ = lambda a, b: M.Mul.apply(a, b)
    cls.__rmul__ = _reverse(M.Mul)
    cls.__truediv__ = lambda a, b: M.Div.apply(a, b)
    cls.__rtruediv__ = _reverse(M.Div)
    cls.__matmul__ = lambda a, b: M.MatMul.apply(a, b)
    cls.__rmatmul__ = _reverse(M.MatMul)
    cls.__neg__ = lambda a: M.Neg.apply(a)
    cls.__pow__ = _pow
    cls.__getitem__ = _getitem
    cls.exp = lambda a: M.Exp.apply(a)
    cls.log = lambda a: M.Log.apply(a)
    cls.abs = lambda a: M.Abs.apply(a)
    cls.clip = lambda a, lo=None, hi=None: M.Clip.apply(a, lo=lo, hi=hi)
    cls.sum = lambda a, axis=None, keepdims=False: M.Sum.apply(a, axis=axis, keepdims=keepdims)
    cls.mean = lambda a, axis=None, keepdims=False: M.Mean.apply(a, axis=axis, keepdims=keepdims)
    cls.max = lambda a, axis=None, keepdims=False: M.Max.apply(a, axis=axis, keepdims=keepdims)
    cls.reshape = _reshape
    cls.transpose = _transpose
    cls.flatten = lambda a, start_dim=0: _reshape(a, a.shape[:start_dim] + (-1,))
    cls.argmax = lambda a, axis=None: type(a)._wrap(a.data.argmax(axis=axis), a.backend)
    # comparisons give constant (non-differentiable) boolean tensors
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        setattr(cls, name, _comparison(name))
    cls.__hash__ = object.__hash__


def _comparison(name):
    def compare(a, b):
        from ..tensor import Tensor

        other = b.data if isinstance(b, Tensor) else b
        return Tensor._wrap(getattr(a.data, name)(other), a.backend)

    return compare
