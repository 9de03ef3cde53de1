"""Optimiser updates on NumPy, in place, with PyTorch's formulas (SGD with momentum, Adam, AdamW).

``*_update_many`` take lists of parameters, as the multi-tensor cuda kernels do; here they
are a loop (a NumPy call costs microseconds, not a kernel launch).

Example:
    >>> p, g = np.ones(3), np.full(3, 0.5)
    >>> sgd_update(p, g, None, lr=0.1, momentum=0, dampening=0, weight_decay=0,
    ...            nesterov=False, first_step=True)
    >>> p
    array([0.95, 0.95, 0.95])
"""
from __future__ import annotations

import numpy as np


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """One SGD step; ``buf`` is the momentum buffer (unused when momentum is 0)."""
    g = grad + weight_decay * param if weight_decay else grad
    if momentum:
        if first_step:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    param -= lr * g


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """One Adam step (L2 added to the gradient) or AdamW step (decoupled weight decay)."""
    g = grad
    if weight_decay and decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        g = grad + weight_decay * param
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def host_values(lr, step=None):
    """``lr`` and ``step`` as numbers.  Either may be an array on the device (a CUDA-graph safe
    optimiser's): a 0-d ``lr`` is read where the kernel runs, and a ``step`` array is advanced by
    one first (the kernel owns the count), so a replayed step sees the current values."""
    if isinstance(lr, np.ndarray):
        lr = float(lr)
    if isinstance(step, np.ndarray):
        step += 1
        step = int(step)
    return lr, step


def sgd_update_many(params, grads, bufs, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """:func:`sgd_update` on each parameter of ``params`` (``bufs`` None when momentum is 0)."""
    lr, _ = host_values(lr)
    for i, (p, g) in enumerate(zip(params, grads)):
        sgd_update(p, g, None if bufs is None else bufs[i], lr, momentum, dampening, weight_decay,
                   nesterov, first_step)


def adam_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """:func:`adam_update` on each parameter of ``params`` (``step``: the count, already
    advanced, or a 0-d array this call advances; see :func:`host_values`)."""
    lr, step = host_values(lr, step)
    for p, g, m, v in zip(params, grads, ms, vs):
        adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled)
