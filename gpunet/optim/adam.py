"""Adam and AdamW (PyTorch's formulas), with ``capturable=True``: the step count on the device,
advanced by the update kernel, so a CUDA-graph replay of the step sees the current count.

Example:
    >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    >>> opt = optim.AdamW(model.parameters(), lr=gn.tensor(1e-3), capturable=True)
"""
from __future__ import annotations

import numpy as np

from .. import graph_capture as graphs
from .optimizer import Optimizer, _before_capture, _is_array, lr_argument


class Adam(Optimizer):
    """Adam (Kingma & Ba) as PyTorch computes it; ``weight_decay`` adds L2 to the gradient.

    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps).

    Example:
        >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    """

    _decoupled = False

    _capture_safe = True  # with capturable=True (refused below otherwise)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *,
                 capturable=False):
        betas = tuple(betas) if isinstance(betas, (tuple, list)) else betas
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      capturable=bool(capturable)))

    def _update_group(self, params, group):
        capturable = group["capturable"]
        if graphs.is_capturing() and not capturable:
            raise RuntimeError(f"Attempting CUDA graph capture of step() for an instance of "
                               f"{type(self).__name__} but param_groups' capturable is False.")
        buckets = {}  # one multi-tensor call per (backend, dtype, step count or step array)
        for p in params:
            state = self.state.setdefault(id(p), {})
            if not state:
                _before_capture(self, "its moment estimates")
                state["step"] = 0
                state["exp_avg"] = p.backend.xp.zeros_like(p._data)
                state["exp_avg_sq"] = p.backend.xp.zeros_like(p._data)
            if not capturable:
                state["step"] += 1
        if capturable:  # the counts live in arrays the kernel advances (CUDA-graph safe)
            _device_steps(self, group, params)
        for p in params:
            state = self.state[id(p)]
            key = id(state["step"]) if capturable else state["step"]
            buckets.setdefault((id(p.backend), p.dtype, key), []).append((p, state))
        beta1, beta2 = group["betas"]
        lr = lr_argument(group)
        for items in buckets.values():
            ps = [p for p, _ in items]
            ps[0].backend.adam_update_many(
                [p._data for p in ps], [p.grad._data for p in ps], [st["exp_avg"] for _, st in items],
                [st["exp_avg_sq"] for _, st in items], lr, beta1, beta2, group["eps"],
                group["weight_decay"], items[0][1]["step"], self._decoupled)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # a capturable group's counts go back on the device
            if group.get("capturable"):
                _device_steps(self, group, [p for p in group["params"] if id(p) in self.state])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd before the Adam step.

    Example:
        >>> opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 capturable=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         capturable=capturable)


def _device_steps(opt, group, params):
    """Give ``params`` (of a capturable group) step-count arrays the kernels advance: host
    counts become one shared array per (backend, dtype, count); parameters that share an
    array but are not all stepped now get their own copy (their counts part)."""
    fresh, by_array = {}, {}
    for p in params:
        st = opt.state[id(p)]
        if not _is_array(st["step"]):
            _before_capture(opt, "its step count on the device")
            key = (id(p.backend), p.dtype, int(st["step"]))
            if key not in fresh:
                fresh[key] = p.backend.asarray(np.array(float(st["step"])))
            st["step"] = fresh[key]
        by_array.setdefault(id(st["step"]), []).append(p)
    for stepped in by_array.values():
        count = opt.state[id(stepped[0])]["step"]
        sharers = sum(1 for q in group["params"] if opt.state.get(id(q), {}).get("step") is count)
        if sharers != len(stepped):
            _before_capture(opt, "a step count of its own for the parameters stepped without the others")
            own = count.copy()
            for p in stepped:
                opt.state[id(p)]["step"] = own
