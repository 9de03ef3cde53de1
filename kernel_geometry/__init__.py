"""Window geometry beneath both kernel packages: output sizes of conv and pooling windows.

Written once here, used by ``numpy_kernels``, ``cuda_kernels`` and gpunet's argument checks
alike, so they can never disagree on a shape or on the error for a window that does not fit.
It imports nothing, so the kernel packages import nothing from ``gpunet`` (issue 20).

Example:
    >>> out_size(28, 5, 1, 2)
    28
    >>> out_hw((8, 1, 28, 28), (2, 2), (2, 2), (0, 0))
    (14, 14)
"""
from __future__ import annotations


def out_size(size, k, s, p, ceil_mode=False):
    """Output length of a window of ``k`` with stride ``s`` over ``size`` padded by ``p`` each side.

    ``ceil_mode`` (pooling) rounds up, as PyTorch does, but never starts a window in the right
    padding: the last window must begin inside the input or its left padding.
    """
    if not ceil_mode:
        return (size + 2 * p - k) // s + 1
    out = -(-(size + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


def out_hw(x_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """(Ho, Wo) of a window over NCHW ``x_shape``; ValueError when the window does not fit.

    A dilated window of k taps spans ``dilation * (k - 1) + 1`` elements.

    Example:
        >>> out_hw((1, 1, 3, 3), (5, 5), (1, 1), (0, 0))
        Traceback (most recent call last):
        ValueError: window (5, 5) does not fit input (1, 1, 3, 3) with padding (0, 0)
    """
    span = [dilation[i] * (kernel[i] - 1) + 1 for i in (0, 1)]
    ho = out_size(x_shape[2], span[0], stride[0], padding[0], ceil_mode)
    wo = out_size(x_shape[3], span[1], stride[1], padding[1], ceil_mode)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"window {tuple(kernel)} does not fit input {tuple(x_shape)} "
                         f"with padding {tuple(padding)}")
    return ho, wo


def transposed_out_size(size, k, s, p, dilation=1, output_padding=0):
    """Output length of a transposed convolution (the input length of the conv it transposes,
    plus ``output_padding``) along one axis.

    Example:
        >>> transposed_out_size(7, 3, 2, 1, output_padding=1)
        14
    """
    return (size - 1) * s - 2 * p + dilation * (k - 1) + output_padding + 1


def int_geometry(kernel, stride, padding):
    """``(kh, kw, sh, sw, ph, pw)`` as plain ints, the argument order of every window kernel."""
    return (int(kernel[0]), int(kernel[1]), int(stride[0]), int(stride[1]),
            int(padding[0]), int(padding[1]))
