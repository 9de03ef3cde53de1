"""Numerical versus analytic gradients: central finite differences in float64.

Example:
    >>> x = gn.tensor(np.random.randn(3, 4), requires_grad=True)   # float64
    >>> gn.gradcheck(lambda x: (x * x).sum(), [x])
    True
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the worst element."""


def numerical_grad(fn, inputs, index, eps):
    """d sum(fn(*inputs) * probe) / d inputs[index] by central differences, on the host."""
    x = inputs[index]
    host = x.numpy().astype(np.float64)
    grad = np.zeros_like(host)
    be = x.backend
    probe = _probe(fn, inputs)
    flat, gflat = host.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        values = []
        for delta in (eps, -eps):
            flat[k] = old + delta
            x._data = be.asarray(host)
            values.append(float((_scalar(fn(*inputs), probe))))
        flat[k] = old
        gflat[k] = (values[0] - values[1]) / (2 * eps)
    x._data = be.asarray(host)
    return grad


def _probe(fn, inputs):
    """A fixed random weighting of the output, so non-scalar outputs are checked in every entry."""
    out = fn(*inputs)
    rng = np.random.default_rng(1234)
    return rng.standard_normal(out.shape) if out.numel() > 1 else np.ones(out.shape)


def _scalar(out, probe):
    return (out.numpy().astype(np.float64) * probe).sum()


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True):
    """Compare backprop with finite differences for every float64 input with requires_grad.

    Returns True, or raises GradcheckError naming the input and worst element.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need "
                            "float64 inputs")
    probe = _probe(fn, inputs)
    for i in checked:
        inputs[i].grad = None
    out = fn(*inputs)
    out.backward(Tensor._wrap(out.backend.asarray(probe.astype(out.dtype)), out.backend))
    for i in checked:
        analytic = inputs[i].grad.numpy() if inputs[i].grad is not None else np.zeros(inputs[i].shape)
        numeric = numerical_grad(fn, inputs, i, eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            k = np.unravel_index(int(err.argmax()), err.shape)
            msg = (f"gradcheck: input {i} (shape {tuple(inputs[i].shape)}) disagrees at index {k}: "
                   f"analytic {analytic[k]:.8g}, numerical {numeric[k]:.8g} "
                   f"(atol {atol}, rtol {rtol}; {int((err > 0).sum())} of {err.size} elements off)")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
