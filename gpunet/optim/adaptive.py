"""Adadelta and Adagrad with PyTorch's formulas, arguments, defaults and error messages.

Written with the backend's array module only (no kernel of its own), one parameter at a time,
in the parameter's own dtype (float32 stays float32, float64 stays float64):

    Adadelta:  g = grad + wd * p;  v = rho * v + (1 - rho) * g^2
               delta = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho * u + (1 - rho) * delta^2
               p -= lr * delta
    Adagrad:   g = grad + wd * p;  clr = lr / (1 + (step - 1) * lr_decay);  s += g^2
               p -= clr * g / (sqrt(s) + eps)

``maximize=True`` ascends (the gradient's sign is flipped first), as in PyTorch. ``foreach`` is
accepted for PyTorch's signature and has no effect (there is one implementation).

Example:
    >>> opt = optim.Adagrad(model.parameters(), lr=0.01, lr_decay=1e-4)
    >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    >>> opt.state_dict()["state"][0]["step"]
    1
"""
from __future__ import annotations

from .optimizer import Optimizer


def _check(name, value, text):
    if not 0.0 <= value:
        raise ValueError(f"Invalid {text}: {value}")


class Adadelta(Optimizer):
    """ADADELTA (Zeiler 2012): per-coordinate steps from running averages of g^2 and of the steps.

    ``Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, maximize=False)``;
    state per parameter: ``step``, ``square_avg``, ``acc_delta``.

    Example:
        >>> opt = optim.Adadelta(model.parameters(), rho=0.95, weight_decay=1e-4)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        >>> sorted(opt.state_dict()["state"][0])
        ['acc_delta', 'square_avg', 'step']
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 maximize=False):
        _check("lr", lr, "learning rate")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check("eps", eps, "epsilon value")
        _check("weight_decay", weight_decay, "weight_decay value")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, maximize=bool(maximize)))

    def _update(self, p, group, state):
        xp = p.backend.xp
        g = -p.grad._data if group["maximize"] else p.grad._data
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p._data
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p._data)
            state["acc_delta"] = xp.zeros_like(p._data)
        state["step"] += 1
        rho, eps = group["rho"], group["eps"]
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * g * g
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        p._data -= group["lr"] * delta


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011): each coordinate's step divided by the root of its summed g^2.

    ``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, foreach=None, *, maximize=False)``. As in PyTorch the state (``step`` = 0 and
    ``sum`` filled with ``initial_accumulator_value``) is created with the optimiser.

    Example:
        >>> opt = optim.Adagrad(model.parameters(), initial_accumulator_value=0.5)
        >>> float(opt.state_dict()["state"][0]["sum"].max())
        0.5
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False):
        _check("lr", lr, "learning rate")
        _check("lr_decay", lr_decay, "lr_decay value")
        _check("weight_decay", weight_decay, "weight_decay value")
        _check("initial_accumulator_value", initial_accumulator_value, "initial_accumulator_value value")
        _check("eps", eps, "epsilon value")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=bool(maximize)))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, self.state.setdefault(id(p), {}))

    @staticmethod
    def _init_state(p, group, state):
        state["step"] = 0
        state["sum"] = p.backend.xp.full_like(p._data, group["initial_accumulator_value"])

    def _update(self, p, group, state):
        if "sum" not in state:  # a group added later, or a state dict without this parameter
            self._init_state(p, group, state)
        xp = p.backend.xp
        g = -p.grad._data if group["maximize"] else p.grad._data
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p._data
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        std = xp.sqrt(s) + group["eps"]
        p._data += (-clr * g) / std  # PyTorch's addcdiv order: (value * g) / std
