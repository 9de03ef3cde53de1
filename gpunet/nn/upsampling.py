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
from kernel_geometry import transposed_out_size

from .layers import _conv_geometry, _conv_repr, _empty, _reset_like_pytorch
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
        _conv_geometry("ConvTranspose2d", self, in_channels, out_channels, kernel_size, stride,
                       padding, dilation, groups)
        self.output_padding = F._pair("output_padding", output_padding, 0)
        self.weight = _empty((in_channels, out_channels // groups) + self.kernel_size, dtype, device)
        if bias:
            self.bias = _empty((out_channels,), dtype, device)
        else:
            self.register_parameter("bias", None)
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:  # PyTorch: pick the output padding that reaches output_size
            output_padding = tuple(
                want - transposed_out_size(n, k, s, p, d) for want, n, k, s, p, d in
                zip(tuple(output_size)[-2:], input.shape[2:], self.kernel_size, self.stride,
                    self.padding, self.dilation))
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                self.groups, self.dilation)

    def extra_repr(self):
        return _conv_repr(self, (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))))


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
