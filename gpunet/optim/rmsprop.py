"""RMSprop with PyTorch's formulas (Hinton's lecture 6e; centred variant of Graves 2013).

Written with the backend's array module only (no kernel of its own):

    g = grad + weight_decay * p;  v = alpha * v + (1 - alpha) * g^2
    avg = sqrt(v - mean_g^2) + eps  (centered)  or  sqrt(v) + eps
    p -= lr * g / avg,  or with momentum:  buf = momentum * buf + g / avg;  p -= lr * buf

Example:
    >>> opt = optim.RMSprop(model.parameters(), lr=0.01, alpha=0.99)
"""
from __future__ import annotations

from .optimizer import Optimizer


class RMSprop(Optimizer):
    """Divide each gradient by a running root mean square of its recent values."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        if not 0 <= alpha <= 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha!r}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=bool(centered)))

    def _update(self, p, group, state):
        xp = p.backend.xp
        g = p.grad._data
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p._data
        alpha = group["alpha"]
        if "square_avg" not in state:
            state["square_avg"] = xp.zeros_like(p._data)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p._data)
            if group["momentum"]:
                state["momentum_buffer"] = xp.zeros_like(p._data)
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            m = state["grad_avg"]
            m *= alpha
            m += (1 - alpha) * g
            avg = xp.sqrt(v - m * m) + group["eps"]
        else:
            avg = xp.sqrt(v) + group["eps"]
        if group["momentum"]:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p._data -= group["lr"] * buf
        else:
            p._data -= group["lr"] * g / avg
