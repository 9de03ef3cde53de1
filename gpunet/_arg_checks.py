"""Argument checks shared by the functional API: each raises naming the argument, what it got
and what it needs.

Example:
    >>> _pair("stride", 2, 1)
    (2, 2)
"""
from __future__ import annotations

from .tensor import Tensor, as_tensor_like

REDUCTIONS = ("mean", "sum", "none")


def _pair(name, value, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def _tensor(name, x, ndim=None, float_=True):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a gpunet Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if float_ and x.dtype.kind != "f":
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
    return x


def _reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _same_shape(fn, input, target):
    if not isinstance(target, Tensor):
        target = as_tensor_like(target, input)
    if input.shape != target.shape:
        raise ValueError(f"{fn}: input has shape {input.shape} but target has shape {target.shape}; "
                         "they must match")
    if target.dtype != input.dtype and not target.requires_grad:
        target = target.astype(input.dtype)  # integer 0/1 targets are fine
    return target


