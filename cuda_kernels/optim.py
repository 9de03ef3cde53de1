"""Fused in-place optimiser updates: one launch per parameter, no temporary arrays.

Scalars are cast to the parameter dtype on the host so float32 parameters are updated in
float32 arithmetic; bias corrections depend only on the host step count, so no value is
read back from the device.

Example:
    >>> from cuda_kernels import optim                                           # doctest: +SKIP
    >>> optim.sgd_update(p, g, buf, 0.1, 0.9, 0.0, 0.0, False, first_step=True)   # doctest: +SKIP
"""
from __future__ import annotations

import math

from numba import cuda

from . import _launch


@cuda.jit
def sgd_update_kernel(param, grad, buf, lr, momentum, one_minus_damp, wd, nesterov, first_step):
    """PyTorch's SGD: L2 weight decay, momentum buffer with dampening, optional Nesterov."""
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        p = param[i]
        d = grad[i]
        if wd != 0:
            d += wd * p
        if momentum != 0:
            if first_step:
                b = d
            else:
                b = momentum * buf[i] + one_minus_damp * d
            buf[i] = b
            if nesterov:
                d += momentum * b
            else:
                d = b
        param[i] = p - lr * d


@cuda.jit
def adam_update_kernel(param, grad, m, v, lr, beta1, beta2, one_minus_b1, one_minus_b2, eps,
                       wd, decoupled, decay, step_size, bc2_sqrt):
    """PyTorch's Adam (L2 in the gradient) or AdamW (decoupled decay p *= 1 - lr*wd)."""
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        p = param[i]
        g = grad[i]
        if wd != 0:
            if decoupled:
                p *= decay  # decay = 1 - lr * wd
            else:
                g += wd * p
        mi = beta1 * m[i] + one_minus_b1 * g
        vi = beta2 * v[i] + one_minus_b2 * g * g
        m[i] = mi
        v[i] = vi
        # NOTE: PyTorch's form: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), so eps is
        # added after the bias correction of v, not before.
        param[i] = p - step_size * mi / (math.sqrt(vi) / bc2_sqrt + eps)


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """One SGD step on ``param`` (and ``buf``, unused and may be None when momentum == 0).

    Example:
        >>> sgd_update(p, g, None, 0.1, 0.0, 0.0, 0.0, False, True)   # doctest: +SKIP
    """
    dt = param.dtype
    p, p_back = _launch.in_place(param)  # a non-contiguous parameter is updated via a copy
    g = _launch.contiguous(grad).reshape(-1).astype(dt, copy=False)
    # Without momentum the kernel never touches buf: pass grad (never param, which the
    # simulator would copy back over the update).
    b, b_back = (g, None) if buf is None or momentum == 0 else _launch.in_place(buf)
    if g.size != p.size or b.size != p.size:
        raise ValueError("sgd_update: param, grad and buf must have the same size")
    s = _launch.scalar
    _launch.launch(sgd_update_kernel, _launch.blocks_for(p.size), _launch.TPB,
                   p, g, b, s(lr, dt), s(momentum, dt), s(1.0 - dampening, dt),
                   s(weight_decay, dt), bool(nesterov), bool(first_step))
    _launch.write_back(p, p_back)
    _launch.write_back(b, b_back)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """One Adam / AdamW step (``step`` counts from 1) on ``param``, ``m`` and ``v`` in place.

    Example:
        >>> adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False)   # doctest: +SKIP
    """
    dt = param.dtype
    (p, p_back), (mf, m_back), (vf, v_back) = (_launch.in_place(a) for a in (param, m, v))
    g = _launch.contiguous(grad).reshape(-1).astype(dt, copy=False)
    if not (g.size == mf.size == vf.size == p.size):
        raise ValueError("adam_update: param, grad, m and v must have the same size")
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    s = _launch.scalar
    _launch.launch(adam_update_kernel, _launch.blocks_for(p.size), _launch.TPB,
                   p, g, mf, vf, s(lr, dt), s(beta1, dt), s(beta2, dt), s(1.0 - beta1, dt),
                   s(1.0 - beta2, dt), s(eps, dt), s(weight_decay, dt), bool(decoupled),
                   s(1.0 - lr * weight_decay, dt), s(lr / bc1, dt), s(math.sqrt(bc2), dt))
    for flat, original in ((p, p_back), (mf, m_back), (vf, v_back)):
        _launch.write_back(flat, original)
