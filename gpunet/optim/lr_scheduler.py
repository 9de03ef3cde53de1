"""Learning-rate schedules: StepLR and CosineAnnealingLR, stepped once per epoch (PyTorch's semantics).

Creating a scheduler records each group's ``initial_lr`` and sets the epoch-0 rate;
``step()`` advances one epoch and writes the new rate into ``optimizer.param_groups``.

Example:
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    >>> for epoch in range(30):
    ...     loss_fn(model(x), y).backward(); opt.step(); opt.zero_grad()   # one "epoch"
    ...     sched.step()
    >>> round(opt.param_groups[0]["lr"], 6)      # 0.1 * 0.1 ** 3
    0.0001
"""
from __future__ import annotations

import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses give ``lr_at(base_lr, epoch)`` in closed form."""

    _hyper: tuple = ()

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a gpunet Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} needs 'initial_lr' in every "
                               "param group (resume with load_state_dict instead)")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def step(self):
        """Advance one epoch and set each group's lr."""
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rate of each param group after the last ``step()``."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer: last_epoch, base_lrs and the schedule's settings."""
        out = {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "_last_lr": list(self._last_lr)}
        out.update({k: getattr(self, k) for k in self._hyper})
        return out

    def load_state_dict(self, state_dict):
        """Restore from ``state_dict()`` and set the optimizer's lr to the saved last lr."""
        for key in ("last_epoch", "base_lrs", "_last_lr") + self._hyper:
            if key not in state_dict:
                raise KeyError(f"{type(self).__name__}.load_state_dict: missing {key!r}")
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = [float(v) for v in state_dict["base_lrs"]]
        self._last_lr = [float(v) for v in state_dict["_last_lr"]]
        for k in self._hyper:
            setattr(self, k, state_dict[k])
        # a freshly built scheduler has reset the lr to its epoch-0 value: put the saved one back
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size).

    Example:
        >>> sched = StepLR(opt, step_size=2, gamma=0.5)     # lr 1, 1, .5, .5, .25, ...
    """

    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Example:
        >>> sched = CosineAnnealingLR(opt, T_max=10)        # from lr down to 0 over 10 epochs
    """

    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
