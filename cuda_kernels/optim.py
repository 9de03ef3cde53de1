"""Fused in-place optimiser updates, multi-tensor: one launch updates up to ``MAX_TENSORS``
parameters (their gradients and state), no temporary arrays.

The parameters travel as tuples of 1-D arrays (Numba passes a tuple as its members' fields,
each array costing one argument's marshalling, and compiles once per tuple length); block row
``blockIdx.y`` picks the tensor and the x blocks stride over its elements.  A launch's
argument block is limited (4 KiB before CUDA 12.1, 56 bytes per 1-D array here), hence the
cap.  Scalars are cast to the parameter dtype on the host so float32 parameters are updated
in float32 arithmetic; bias corrections depend only on the host step count, so no value is
read back from the device.  A capturable optimiser's step count (and a tensor lr) live in
device memory: a one-thread kernel advances the count and writes the corrections, which the
update kernel reads, so a captured step replays with the current values.

Example:
    >>> from cuda_kernels import optim                                                  # doctest: +SKIP
    >>> optim.sgd_update_many([p], [g], [buf], 0.1, 0.9, 0.0, 0.0, False, first_step=True)  # doctest: +SKIP
"""
from __future__ import annotations

import math

from numba import cuda

from . import _launch

MAX_TENSORS = 16  # SGD: 3 arrays a tensor; Adam: 4 (16 * 4 * 56 bytes = 3.5 KiB)


def _on_device(value):
    return hasattr(value, "shape")


@_launch.cached_jit
def sgd_lr_kernel(params, grads, bufs, lr, momentum, one_minus_damp, wd, nesterov, first_step):
    """sgd_update_kernel with the learning rate read from device memory (``lr[0]``)."""
    _sgd_body(params, grads, bufs, lr[0], momentum, one_minus_damp, wd, nesterov, first_step)


@_launch.cached_jit
def adam_hyper_kernel(step, lr, beta1, beta2, wd, hyper):
    """One thread: advance the step count on the device and write the update's step size,
    sqrt(1 - beta2^t) and decoupled decay factor to ``hyper`` (what the host path passes)."""
    if cuda.blockIdx.x == 0 and cuda.threadIdx.x == 0:
        t = step[0] + 1.0
        step[0] = t
        rate = lr[0]
        hyper[0] = rate / (1.0 - beta1 ** t)
        hyper[1] = math.sqrt(1.0 - beta2 ** t)
        hyper[2] = 1.0 - rate * wd


@_launch.cached_jit
def adam_device_kernel(params, grads, ms, vs, beta1, beta2, one_minus_b1, one_minus_b2, eps,
                       wd, decoupled, hyper):
    """adam_update_kernel with the step size, bias correction and decay read from ``hyper``."""
    _adam_body(params, grads, ms, vs, beta1, beta2, one_minus_b1, one_minus_b2, eps, wd,
               decoupled, hyper[2], hyper[0], hyper[1])


@_launch.cached_jit
def sgd_update_kernel(params, grads, bufs, lr, momentum, one_minus_damp, wd, nesterov, first_step):
    """PyTorch's SGD: L2 weight decay, momentum buffer with dampening, optional Nesterov."""
    _sgd_body(params, grads, bufs, lr, momentum, one_minus_damp, wd, nesterov, first_step)


@cuda.jit(device=True, inline=True)
def _sgd_body(params, grads, bufs, lr, momentum, one_minus_damp, wd, nesterov, first_step):
    param = params[cuda.blockIdx.y]
    grad = grads[cuda.blockIdx.y]
    buf = bufs[cuda.blockIdx.y]
    start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    for i in range(start, param.size, cuda.gridDim.x * cuda.blockDim.x):
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


@_launch.cached_jit
def adam_update_kernel(params, grads, ms, vs, lr, beta1, beta2, one_minus_b1, one_minus_b2, eps,
                       wd, decoupled, decay, step_size, bc2_sqrt):
    """PyTorch's Adam (L2 in the gradient) or AdamW (decoupled decay p *= 1 - lr*wd)."""
    _adam_body(params, grads, ms, vs, beta1, beta2, one_minus_b1, one_minus_b2, eps, wd,
               decoupled, decay, step_size, bc2_sqrt)


@cuda.jit(device=True, inline=True)
def _adam_body(params, grads, ms, vs, beta1, beta2, one_minus_b1, one_minus_b2, eps, wd,
               decoupled, decay, step_size, bc2_sqrt):
    param = params[cuda.blockIdx.y]
    grad = grads[cuda.blockIdx.y]
    m = ms[cuda.blockIdx.y]
    v = vs[cuda.blockIdx.y]
    start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    for i in range(start, param.size, cuda.gridDim.x * cuda.blockDim.x):
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


def _flat_grads(grads, dtype):
    """1-D views (or contiguous copies) of the gradients, cast to ``dtype``."""
    return [_launch.contiguous(g).reshape(-1).astype(dtype, copy=False) for g in grads]


def _flat_in_place(arrays):
    """``(flat views, originals)`` of arrays a kernel updates in place: a non-contiguous array
    is updated through a contiguous copy, written back by ``_launch.write_back``."""
    pairs = [_launch.in_place(a) for a in arrays]
    return [flat for flat, _ in pairs], [back for _, back in pairs]


def _launch_many(kernel, tensors, scalars):
    """Launch ``kernel`` over ``tensors`` (a list of per-role lists of flat arrays) in chunks
    of MAX_TENSORS, one block row per tensor."""
    n = len(tensors[0])
    for lo in range(0, n, MAX_TENSORS):
        chunk = [tuple(role[lo:lo + MAX_TENSORS]) for role in tensors]
        size = max(a.size for a in chunk[0])
        if size:
            _launch.launch(kernel, (_launch.blocks_for(size), len(chunk[0])), _launch.TPB,
                           *chunk, *scalars)


def sgd_update_many(params, grads, bufs, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """One SGD step on every array of ``params`` (same dtype) in place, with their ``grads``
    and momentum ``bufs`` (None when momentum == 0): ceil(len / MAX_TENSORS) launches.

    Example:
        >>> sgd_update_many([p1, p2], [g1, g2], None, 0.1, 0.0, 0.0, 0.0, False, True)   # doctest: +SKIP
    """
    dt = params[0].dtype
    p, p_back = _flat_in_place(params)
    g = _flat_grads(grads, dt)
    # Without momentum the kernel never touches buf: pass grad (never param, which the
    # simulator would copy back over the update).
    b, b_back = (g, [None] * len(g)) if bufs is None or momentum == 0 else _flat_in_place(bufs)
    for i, (pi, gi, bi) in enumerate(zip(p, g, b)):
        if pi.dtype != dt or gi.size != pi.size or bi.size != pi.size:
            raise ValueError(f"sgd_update: params[{i}] ({pi.dtype}, {pi.size} values), its grad "
                             f"({gi.size}) and buf ({bi.size}) must match params[0]'s dtype {dt} "
                             "and each other's size")
    s = _launch.scalar
    # a tensor lr: read on the device, in the parameters' dtype as the host path casts it
    kernel, rate = ((sgd_lr_kernel, lr.reshape(1).astype(dt)) if _on_device(lr)
                    else (sgd_update_kernel, s(lr, dt)))
    _launch_many(kernel, [p, g, b],
                 (rate, s(momentum, dt), s(1.0 - dampening, dt), s(weight_decay, dt),
                  bool(nesterov), bool(first_step)))
    for flat, original in zip(p + b, p_back + b_back):
        _launch.write_back(flat, original)


def adam_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """One Adam / AdamW step (``step`` counts from 1, the same for all) on every array of
    ``params`` (same dtype), ``ms`` and ``vs`` in place.

    Example:
        >>> adam_update_many([p], [g], [m], [v], 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False)   # doctest: +SKIP
    """
    dt = params[0].dtype
    (p, p_back), (mf, m_back), (vf, v_back) = (_flat_in_place(a) for a in (params, ms, vs))
    g = _flat_grads(grads, dt)
    for i, (pi, gi, mi, vi) in enumerate(zip(p, g, mf, vf)):
        if pi.dtype != dt or not (gi.size == mi.size == vi.size == pi.size):
            raise ValueError(f"adam_update: params[{i}], its grad, m and v must have the same size "
                             f"and params[0]'s dtype {dt}")
    s = _launch.scalar
    if _on_device(step):  # a capturable optimiser's: the count, lr and corrections stay on the device
        hyper = _launch.xp.empty(3, dt)
        # the rate in float64, as the host path divides it by the correction in Python
        rate = lr.reshape(1).astype("float64") if _on_device(lr) else _launch.xp.full(1, lr, "float64")
        _launch.launch(adam_hyper_kernel, 1, 1, step.reshape(1), rate, float(beta1), float(beta2),
                       float(weight_decay), hyper)
        _launch_many(adam_device_kernel, [p, g, mf, vf],
                     (s(beta1, dt), s(beta2, dt), s(1.0 - beta1, dt), s(1.0 - beta2, dt),
                      s(eps, dt), s(weight_decay, dt), bool(decoupled), hyper))
        for flat, original in zip(p + mf + vf, p_back + m_back + v_back):
            _launch.write_back(flat, original)
        return
    if _on_device(lr):
        lr = float(lr)  # a tensor lr with a host step count: read back (not capturable)
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    _launch_many(adam_update_kernel, [p, g, mf, vf],
                 (s(lr, dt), s(beta1, dt), s(beta2, dt), s(1.0 - beta1, dt), s(1.0 - beta2, dt),
                  s(eps, dt), s(weight_decay, dt), bool(decoupled), s(1.0 - lr * weight_decay, dt),
                  s(lr / bc1, dt), s(math.sqrt(bc2), dt)))
    for flat, original in zip(p + mf + vf, p_back + m_back + v_back):
        _launch.write_back(flat, original)


def sgd_update(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """One SGD step on one ``param`` (``buf`` unused, and may be None, when momentum == 0).

    Example:
        >>> sgd_update(p, g, None, 0.1, 0.0, 0.0, 0.0, False, True)   # doctest: +SKIP
    """
    sgd_update_many([param], [grad], None if buf is None else [buf], lr, momentum, dampening,
                    weight_decay, nesterov, first_step)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """One Adam / AdamW step on one ``param``, ``m`` and ``v`` in place.

    Example:
        >>> adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False)   # doctest: +SKIP
    """
    adam_update_many([param], [grad], [m], [v], lr, beta1, beta2, eps, weight_decay, step, decoupled)
