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
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
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
        raise ValueError(f"{fn}: input has shape {tuple(input.shape)} but target has shape {tuple(target.shape)}; "
                         "they must match")
    if target.dtype != input.dtype and not target.requires_grad:
        target = target.astype(input.dtype)  # integer 0/1 targets are fine
    return target


def _conv2d_args(x, weight, bias, stride, padding, dilation, groups):
    """Check conv2d's arguments; returns (stride, padding, dilation) as pairs."""
    _tensor("x", x, 4)
    _tensor("weight", weight, 4)
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be an int >= 1, got {groups!r}")
    if x.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the input channels ({x.shape[1]}) "
                         f"and the output channels ({weight.shape[0]})")
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels (shape {tuple(x.shape)}) but weight "
                         f"{tuple(weight.shape)} with groups={groups} expects {weight.shape[1] * groups}")
    if x.dtype != weight.dtype:
        raise TypeError(f"conv2d: x is {x.dtype} but weight is {weight.dtype}; they must match")
    for axis, name in ((0, "height"), (1, "width")):
        padded = x.shape[2 + axis] + 2 * padding[axis]
        span = dilation[axis] * (weight.shape[2 + axis] - 1) + 1
        if span > padded:
            raise ValueError(f"conv2d: kernel {name} {weight.shape[2 + axis]} (dilation "
                             f"{dilation[axis]}) spans {span}, more than the padded input {name} "
                             f"{padded} (input {tuple(x.shape)}, padding {padding})")
    if bias is not None and _tensor("bias", bias, 1).shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias has shape {tuple(bias.shape)}, needs ({weight.shape[0]},)")
    return stride, padding, dilation
