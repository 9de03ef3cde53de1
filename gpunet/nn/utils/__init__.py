"""``nn.utils``: gradient clipping, and ``nn.utils.rnn`` (variable-length sequences), as PyTorch
users call them.

Example:
    >>> loss_fn(model(x), y).backward()
    >>> total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # the norm before
    >>> opt.step()
"""
from __future__ import annotations

import math

from ...function import no_grad
from ...tensor import Tensor
from . import rnn  # noqa: F401  (nn.utils.rnn.pack_padded_sequence, as in PyTorch)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients in place so their joint ``norm_type`` norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor), as PyTorch does.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    be = grads[0].backend
    xp = be.xp
    with no_grad():
        if math.isinf(norm_type):
            total = xp.max(xp.stack([xp.abs(g._data).max().astype("float64") for g in grads]))
        else:
            total = sum((xp.abs(g._data.astype("float64")) ** norm_type).sum() for g in grads)
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(float(be.to_host(total))):
            raise RuntimeError(f"clip_grad_norm_: the total {norm_type} norm of the gradients is "
                               f"{float(be.to_host(total))}; set error_if_nonfinite=False to clip anyway")
        # NOTE: the scale stays on the device (no host read per step), as in PyTorch
        scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
        for g in grads:
            g._data *= scale.astype(g._data.dtype)
    return Tensor._wrap(xp.asarray(total), be)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient elementwise to [-clip_value, clip_value], as PyTorch; returns None.

    ``foreach`` is accepted for PyTorch's signature (one loop either way).

    Example:
        >>> w = gn.tensor([1.0, -2.0], requires_grad=True)
        >>> (w * gn.tensor([5.0, 0.5])).sum().backward()
        >>> nn.utils.clip_grad_value_([w], clip_value=1.0)
        >>> w.grad.tolist()
        [1.0, 0.5]
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    clip_value = float(clip_value)
    with no_grad():
        for p in params:
            g = p.grad
            if g is not None:
                # a new array: a gradient array can be shared by two leaves (a + b)
                g._data = g.backend.xp.clip(g._data, -clip_value, clip_value)
