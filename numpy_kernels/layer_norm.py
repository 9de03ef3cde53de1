"""Layer normalisation on NumPy: each row of an (R, D) array normalised over its D values.

    y = (x - mean) * rstd * weight + bias,   rstd = 1 / sqrt(biased var + eps)
    gx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   g = gy * weight,  xhat = (x - mean) * rstd

Example:
    >>> y, saved = layer_norm_fwd(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 1e-5)
    >>> np.round(y, 3)
    array([[-1.,  1.]])
"""
from __future__ import annotations

import numpy as np


def layer_norm_fwd(x, weight, bias, eps):
    """Rows of ``x`` (R, D) normalised; ``weight``/``bias`` (D,) or None. Returns (y, (mean, rstd))."""
    mean = x.mean(axis=1, keepdims=True)
    xc = x - mean
    rstd = 1 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + x.dtype.type(eps))
    y = xc * rstd
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias
    return y, (mean, rstd)


def layer_norm_bwd(gy, x, weight, saved):
    """Gradients ``(gx, gweight, gbias)`` (the last two None without affine parameters)."""
    mean, rstd = saved
    xhat = (x - mean) * rstd
    g = gy * weight if weight is not None else gy
    gx = rstd * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    gw = (gy * xhat).sum(axis=0) if weight is not None else None
    return gx, gw, gy.sum(axis=0) if weight is not None else None
