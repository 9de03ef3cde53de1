"""Layers that make images bigger: ``nn.ConvTranspose2d`` (learned) and ``nn.Upsample`` (fixed).

Example:
    >>> up = nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2)
    >>> up(gn.zeros(1, 16, 7, 7)).shape
    gpunet.Size([1, 8, 14, 14])
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv_transpose2d
from ..ops.upsample import interpolate
from .layers import _empty, _positive_int, _reset_like_pytorch
from .module import Module
from .. import functional as F


class ConvTranspose2d(Module):
    """Transposed 2-D convolution with PyTorch's arguments; weight (in_channels,
    out_channels / groups, kH, kW), initialised as PyTorch does.

    Example:
        >>> nn.ConvTranspose2d(3, 6, 3, stride=2, padding=1, output_padding=1)(gn.zeros(2, 3, 5, 5)).shape
        gpunet.Size([2, 6, 10, 10])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=np.float32):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, got {padding_mode!r}')
        self.in_channels = _positive_int("ConvTranspose2d", "in_channels", in_channels)
        self.out_channels = _positive_int("ConvTranspose2d", "out_channels", out_channels)
        self.kernel_size = F._pair("kernel_size", kernel_size, 1)
        self.stride, self.padding = F._pair("stride", stride, 1), F._pair("padding", padding, 0)
        self.output_padding = F._pair("output_padding", output_padding, 0)
        self.dilation = F._pair("dilation", dilation, 1)
        self.groups = _positive_int("ConvTranspose2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: groups={groups} must divide in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        self.weight = _empty((in_channels, out_channels // groups) + self.kernel_size, dtype, device)
        if bias:
            self.bias = _empty((out_channels,), dtype, device)
        else:
            self.register_parameter("bias", None)
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:  # PyTorch: pick the output padding that reaches output_size
            want = tuple(output_size)[-2:]
            base = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                    zip(input.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
            output_padding = tuple(w - b for w, b in zip(want, base))
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                self.groups, self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Upsample(Module):
    """``F.interpolate`` as a layer: ``size`` or ``scale_factor``, ``mode`` "nearest" or
    "bilinear", PyTorch's ``align_corners``.

    Example:
        >>> nn.Upsample(scale_factor=2, mode="bilinear")(gn.zeros(1, 3, 4, 4)).shape
        gpunet.Size([1, 3, 8, 8])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self):
        what = f"scale_factor={float(self.scale_factor)}" if self.scale_factor is not None else f"size={self.size}"
        return f"{what}, mode={self.mode!r}"
