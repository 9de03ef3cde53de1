"""Max and average pooling over 2-D windows."""
from __future__ import annotations

import math

from ..function import Function, is_grad_enabled
from .._arg_checks import _pair, _tensor
from .shape import stack


class MaxPool2d(Function):
    """Window maxima over the backend's pooling kernels; ties go to the first maximum."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode=False):
        keep = is_grad_enabled() and ctx.needs_input_grad[0]
        ctx.extra = {"ceil_mode": True} if ceil_mode else {}
        y, argmax = ctx.backend.max_pool2d_fwd(x, kernel, stride, padding, keep_argmax=keep,
                                               **ctx.extra)
        ctx.save_for_backward(argmax)
        ctx.args = (x.shape, kernel, stride, padding)
        return y

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.max_pool2d_bwd(gy, ctx.saved[0], *ctx.args, **ctx.extra),)


class AvgPool2d(Function):
    """Window means (padded zeros counted) over the backend's pooling kernels."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding):
        ctx.args = (x.shape, kernel, stride, padding)
        return ctx.backend.avg_pool2d_fwd(x, kernel, stride, padding)

    @staticmethod
    def backward(ctx, gy):
        return (ctx.backend.avg_pool2d_bwd(gy, *ctx.args),)


# --- the functions users call (gpunet.functional re-exports them) ---------------
def _pool_args(x, kernel_size, stride, padding):
    _tensor("x", x, 4)
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    for axis in (0, 1):
        if padding[axis] * 2 > kernel[axis]:
            raise ValueError(f"padding {padding} must be at most half of kernel_size {kernel}")
        if kernel[axis] > x.shape[2 + axis] + 2 * padding[axis]:
            raise ValueError(f"kernel_size {kernel} is larger than the padded input "
                             f"{x.shape[2:]} + 2*{padding}")
    return {"kernel": kernel, "stride": stride, "padding": padding}


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kH×kW windows (stride defaults to the kernel size); ties go to the first maximum.

    PyTorch's signature; ``ceil_mode=True`` rounds the output size up, so a partial last window
    counts (PyTorch's rule).  ``dilation`` other than 1 and ``return_indices`` are refused.

    Example:
        >>> F.max_pool2d(x, kernel_size=2).shape    # x (4, 1, 28, 28): (N, C, H//2, W//2)
        gpunet.Size([4, 1, 14, 14])
    """
    if dilation not in (1, (1, 1), [1, 1]):
        raise ValueError(f"max_pool2d: dilation must be 1 (gpunet pools dense windows), got {dilation!r}")
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported (the indices stay "
                         "inside the kernel's saved state); use return_indices=False")
    return MaxPool2d.apply(x, **_pool_args(x, kernel_size, stride, padding),
                             ceil_mode=bool(ceil_mode))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over kH×kW windows (padded zeros counted, as PyTorch's default)."""
    return AvgPool2d.apply(x, **_pool_args(x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins: bin i of n over length L spans
    [floor(i*L/n), ceil((i+1)*L/n)).  Evenly dividing sizes take one avg_pool2d.

    Example:
        >>> F.adaptive_avg_pool2d(gn.ones(1, 2, 5, 7), (2, 3)).shape
        gpunet.Size([1, 2, 2, 3])
    """
    _tensor("x", x, 4)
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    h, w = x.shape[2:]
    oh, ow = oh or h, ow or w  # None keeps that size
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    rows = []
    for i in range(oh):
        h0, h1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
        cols = [x[:, :, h0:h1, (j * w) // ow:math.ceil((j + 1) * w / ow)].mean(dim=(2, 3))
                for j in range(ow)]
        rows.append(stack(cols, dim=-1))
    return stack(rows, dim=-2)
