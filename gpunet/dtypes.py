"""PyTorch's dtype names: ``gn.float32``, ``gn.long``, ``gn.bool``, ... as NumPy dtypes.

A tensor's ``dtype`` is a NumPy dtype, so ``t.dtype == gn.float32`` holds, and every factory
and cast (``gn.zeros(3, dtype=gn.long)``, ``t.to(gn.float64)``, ``t.type(gn.int64)``) takes
these names.

Example:
    >>> gn.zeros(2, dtype=gn.long).dtype == gn.int64
    True
    >>> gn.float is gn.float32, gn.double is gn.float64
    (True, True)
"""
from __future__ import annotations

import builtins

import numpy as np

float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")  # noqa: A001 - PyTorch's names
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")  # noqa: A001
int64 = long = np.dtype("int64")
uint8 = np.dtype("uint8")
bool = np.dtype(builtins.bool)  # noqa: A001

NAMES = ("float16", "half", "float32", "float", "float64", "double", "int8", "int16", "short",
         "int32", "int", "int64", "long", "uint8", "bool")

_TENSOR_TYPES = {"float16": "HalfTensor", "float32": "FloatTensor", "float64": "DoubleTensor",
                 "int8": "CharTensor", "int16": "ShortTensor", "int32": "IntTensor",
                 "int64": "LongTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def is_dtype(value) -> builtins.bool:
    """True for a NumPy dtype or a NumPy scalar type (``np.float32``): what ``to()`` casts to."""
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


def tensor_type_name(dtype, on_gpu: builtins.bool) -> str:
    """PyTorch's ``Tensor.type()`` string for a dtype, e.g. ``gpunet.cuda.FloatTensor``.

    Example:
        >>> tensor_type_name(np.dtype("float32"), False)
        'gpunet.FloatTensor'
    """
    name = _TENSOR_TYPES.get(np.dtype(dtype).name, f"{np.dtype(dtype).name}Tensor")
    return f"gpunet.{'cuda.' if on_gpu else ''}{name}"
