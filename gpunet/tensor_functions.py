"""PyTorch's function forms of Tensor methods: ``gn.max(x, 1)`` is ``x.max(1)``.

Each takes ``input`` first and then the method's own arguments, with PyTorch's names and
defaults, so ``torch.flatten(x, 1)`` and ``torch.max(outputs, 1)`` port by changing the import.

Example:
    >>> scores = gn.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    >>> values, indices = gn.max(scores, 1)
    >>> indices
    tensor([1, 0])
    >>> gn.flatten(gn.zeros(2, 3, 4), 1).shape
    gpunet.Size([2, 12])
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import functional as F
from .function import no_grad
from .ops.indexing import gather, masked_fill, sort, topk
from .ops.sampling import multinomial
from .ops.shape import chunk, narrow, roll, split, tril, triu
from .tensor import Tensor

__all__ = ["abs", "amax", "amin", "argmax", "argmin", "bmm", "chunk", "clamp", "cos", "eq", "exp",
           "flatten", "gather", "ge", "gt", "inference_mode", "le", "log", "log_softmax", "lt",
           "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "multinomial",
           "narrow", "ne", "numel", "pow", "randperm", "relu", "reshape", "roll", "sigmoid", "sin", "softmax",
           "sort", "split", "sqrt", "squeeze", "sum", "tanh", "topk", "transpose", "tril", "triu",
           "unsqueeze"]


def _tensor(name, value):
    if not isinstance(value, Tensor):
        raise TypeError(f"gn.{name}(): input must be a gpunet Tensor, got {type(value).__name__}")
    return value


def _extreme(name):
    def extreme(input, dim=None, keepdim=False, *, out=None):
        _tensor(name, input)
        if out is not None:
            raise TypeError(f"gn.{name}(): out= is not supported; use the returned tensor")
        if isinstance(dim, Tensor):  # torch.max(input, other): the elementwise form
            return getattr(input, "maximum" if name == "max" else "minimum")(dim)
        return getattr(input, name)() if dim is None else getattr(input, name)(dim, keepdim)

    extreme.__name__ = extreme.__qualname__ = name
    extreme.__doc__ = (f"``input.{name}()`` over all elements, or ``(values, indices)`` along "
                       f"``dim`` as in PyTorch.\n\n    Example:\n        >>> gn.{name}(gn.tensor([[1., 5.], "
                       f"[3., 2.]]), 1).indices.tolist()\n        {[1, 0] if name == 'max' else [0, 1]}\n")
    return extreme


max = _extreme("max")  # noqa: A001 - PyTorch's name
min = _extreme("min")  # noqa: A001


def _method(name, doc):
    def function(input, *args, **kwargs):
        return getattr(_tensor(name, input), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


abs = _method("abs", "Elementwise |input|.\n\n    Example:\n        >>> gn.abs(gn.tensor([-2.0, 3.0])).tolist()\n        [2.0, 3.0]\n")  # noqa: A001,E501
exp = _method("exp", "Elementwise e**input.\n\n    Example:\n        >>> gn.exp(gn.zeros(2)).tolist()\n        [1.0, 1.0]\n")  # noqa: E501
log = _method("log", "Elementwise natural log.\n\n    Example:\n        >>> gn.log(gn.ones(2)).tolist()\n        [0.0, 0.0]\n")  # noqa: E501
sqrt = _method("sqrt", "Elementwise square root.\n\n    Example:\n        >>> gn.sqrt(gn.tensor([4.0])).tolist()\n        [2.0]\n")  # noqa: E501
sum = _method("sum", "Sum over all elements or ``dim`` (``keepdim``).\n\n    Example:\n        >>> gn.sum(gn.ones(2, 3), 1).tolist()\n        [3.0, 3.0]\n")  # noqa: A001,E501
mean = _method("mean", "Mean over all elements or ``dim`` (``keepdim``).\n\n    Example:\n        >>> gn.mean(gn.ones(2, 3)).item()\n        1.0\n")  # noqa: E501
argmax = _method("argmax", "Index of the maximum (flat, or along ``dim``).\n\n    Example:\n        >>> gn.argmax(gn.tensor([1.0, 3.0, 2.0])).item()\n        1\n")  # noqa: E501
argmin = _method("argmin", "Index of the minimum (flat, or along ``dim``).\n\n    Example:\n        >>> gn.argmin(gn.tensor([1.0, 3.0, 0.5])).item()\n        2\n")  # noqa: E501
amax = _method("amax", "Maximum values over ``dim`` (a tensor, no indices).\n\n    Example:\n        >>> gn.amax(gn.tensor([[1.0, 4.0], [3.0, 2.0]]), 0).tolist()\n        [3.0, 4.0]\n")  # noqa: E501
amin = _method("amin", "Minimum values over ``dim`` (a tensor, no indices).\n\n    Example:\n        >>> gn.amin(gn.tensor([[1.0, 4.0], [3.0, 2.0]]), 0).tolist()\n        [1.0, 2.0]\n")  # noqa: E501
clamp = _method("clamp", "Clamp into ``[min, max]`` (either may be None).\n\n    Example:\n        >>> gn.clamp(gn.tensor([-2.0, 0.5, 3.0]), min=0.0, max=1.0).tolist()\n        [0.0, 0.5, 1.0]\n")  # noqa: E501
reshape = _method("reshape", "``input`` with another shape (one dimension may be -1).\n\n    Example:\n        >>> gn.reshape(gn.zeros(6), (2, 3)).shape\n        gpunet.Size([2, 3])\n")  # noqa: E501
transpose = _method("transpose", "``input`` with dimensions ``dim0`` and ``dim1`` swapped.\n\n    Example:\n        >>> gn.transpose(gn.zeros(2, 3), 0, 1).shape\n        gpunet.Size([3, 2])\n")  # noqa: E501
squeeze = _method("squeeze", "``input`` without its size-1 dimensions (or only ``dim``).\n\n    Example:\n        >>> gn.squeeze(gn.zeros(2, 1, 3)).shape\n        gpunet.Size([2, 3])\n")  # noqa: E501
unsqueeze = _method("unsqueeze", "``input`` with a size-1 dimension inserted at ``dim``.\n\n    Example:\n        >>> gn.unsqueeze(gn.zeros(2, 3), 0).shape\n        gpunet.Size([1, 2, 3])\n")  # noqa: E501
eq = _method("eq", "Elementwise ``input == other`` (a bool tensor).\n\n    Example:\n        >>> gn.eq(gn.tensor([1, 2]), gn.tensor([1, 3])).tolist()\n        [True, False]\n")  # noqa: E501
ne = _method("ne", "Elementwise ``input != other``.\n\n    Example:\n        >>> gn.ne(gn.tensor([1, 2]), 2).tolist()\n        [True, False]\n")  # noqa: E501
lt = _method("lt", "Elementwise ``input < other``.\n\n    Example:\n        >>> gn.lt(gn.tensor([1, 2]), 2).tolist()\n        [True, False]\n")  # noqa: E501
le = _method("le", "Elementwise ``input <= other``.\n\n    Example:\n        >>> gn.le(gn.tensor([1, 2]), 1).tolist()\n        [True, False]\n")  # noqa: E501
gt = _method("gt", "Elementwise ``input > other``.\n\n    Example:\n        >>> gn.gt(gn.tensor([1, 2]), 1).tolist()\n        [False, True]\n")  # noqa: E501
sin = _method("sin", "Elementwise sine.\n\n    Example:\n        >>> gn.sin(gn.zeros(1)).tolist()\n        [0.0]\n")  # noqa: E501
cos = _method("cos", "Elementwise cosine.\n\n    Example:\n        >>> gn.cos(gn.zeros(1)).tolist()\n        [1.0]\n")  # noqa: E501
maximum = _method("maximum", "Elementwise maximum of two tensors (a tie splits the gradient).\n\n    Example:\n        >>> gn.maximum(gn.tensor([1.0, 4.0]), gn.tensor([3.0, 2.0])).tolist()\n        [3.0, 4.0]\n")  # noqa: E501
minimum = _method("minimum", "Elementwise minimum of two tensors.\n\n    Example:\n        >>> gn.minimum(gn.tensor([1.0, 4.0]), gn.tensor([3.0, 2.0])).tolist()\n        [1.0, 2.0]\n")  # noqa: E501
bmm = _method("bmm", "Batched matrix product of two 3-D tensors, (b, n, m) @ (b, m, p).\n\n    Example:\n        >>> gn.bmm(gn.ones(2, 3, 4), gn.ones(2, 4, 5)).shape\n        gpunet.Size([2, 3, 5])\n")  # noqa: E501
ge = _method("ge", "Elementwise ``input >= other``.\n\n    Example:\n        >>> gn.ge(gn.tensor([1, 2]), 2).tolist()\n        [False, True]\n")  # noqa: E501


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one, as ``torch.flatten``.

    Example:
        >>> gn.flatten(gn.zeros(2, 3, 4), 1).shape
        gpunet.Size([2, 12])
    """
    return _tensor("flatten", input).flatten(start_dim, end_dim)


def matmul(input, other):
    """``input @ other`` with NumPy/PyTorch broadcasting of batch dimensions.

    Example:
        >>> gn.matmul(gn.ones(2, 3), gn.ones(3, 4)).shape
        gpunet.Size([2, 4])
    """
    return _tensor("matmul", input) @ other


def sigmoid(input):
    """Elementwise logistic function.

    Example:
        >>> gn.sigmoid(gn.zeros(1)).tolist()
        [0.5]
    """
    return F.sigmoid(_tensor("sigmoid", input))


def tanh(input):
    """Elementwise hyperbolic tangent.

    Example:
        >>> gn.tanh(gn.zeros(1)).tolist()
        [0.0]
    """
    return F.tanh(_tensor("tanh", input))


def relu(input):
    """Elementwise max(input, 0).

    Example:
        >>> gn.relu(gn.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return F.relu(_tensor("relu", input))


def softmax(input, dim, dtype=None):
    """Softmax along ``dim`` (computed in ``dtype`` when given), as ``torch.softmax``.

    Example:
        >>> gn.softmax(gn.zeros(1, 4), 1).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    x = _tensor("softmax", input)
    return F.softmax(x if dtype is None else x.to(dtype), dim)


def log_softmax(input, dim, dtype=None):
    """Log-softmax along ``dim``, as ``torch.log_softmax``.

    Example:
        >>> round(gn.log_softmax(gn.zeros(1, 2), 1)[0, 0].item(), 4)
        -0.6931
    """
    x = _tensor("log_softmax", input)
    return F.log_softmax(x if dtype is None else x.to(dtype), dim)


def numel(input) -> int:
    """The number of elements.

    Example:
        >>> gn.numel(gn.zeros(2, 3))
        6
    """
    return int(np.prod(_tensor("numel", input).shape, dtype=np.int64))


def pow(input, exponent):  # noqa: A001 - PyTorch's name
    """``input ** exponent`` elementwise; either may be a number, as ``torch.pow``.

    Example:
        >>> gn.pow(gn.tensor([1.0, 2.0]), 3).tolist(), gn.pow(2, gn.tensor([3.0])).tolist()
        ([1.0, 8.0], [8.0])
    """
    number = isinstance(input, (int, float, np.number))
    if isinstance(input, Tensor) or (number and isinstance(exponent, Tensor)):
        return input ** exponent
    raise TypeError(f"gn.pow(): input or exponent must be a gpunet Tensor, got {type(input).__name__} "
                    f"and {type(exponent).__name__}")


def randperm(n, *, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0 .. n-1`` (int64), drawn from gpunet's seeded host generator.

    Example:
        >>> gn.manual_seed(0)
        >>> sorted(gn.randperm(5).tolist())
        [0, 1, 2, 3, 4]
    """
    from . import backends
    from .random import host_rng

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm(): n must be a non-negative int, got {n!r}")
    perm = host_rng().permutation(int(n)).astype(np.dtype(dtype) if dtype is not None else np.int64)
    be = backends.resolve(device)
    return Tensor._wrap(be.asarray(perm), be, requires_grad)


def inference_mode(mode=True):
    """``torch.inference_mode``: no autograd graph inside (gpunet's ``no_grad``); usable as a
    context manager or a decorator.

    Example:
        >>> with gn.inference_mode():
        ...     model(x).requires_grad
        False
    """
    return no_grad() if mode else contextlib.nullcontext()
