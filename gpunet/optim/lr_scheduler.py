"""Learning-rate schedules (PyTorch's): StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LambdaLR,
OneCycleLR (stepped once per batch) and ReduceLROnPlateau (stepped with a metric).

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

import copy
import math
import numbers
import types
from collections import Counter

from .optimizer import Optimizer
from .scheduler_base import LRScheduler, set_lr


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


class MultiStepLR(LRScheduler):
    """Multiply each group's lr by gamma when the epoch reaches a milestone (by gamma ** n for a
    milestone given n times), as PyTorch does: from the current ``group["lr"]``.

    Example:
        >>> sched = MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
        >>> for _ in range(5): sched.step()
        >>> sched.get_last_lr()                              # 0.1 * 0.5 * 0.5
        [0.025]
    """

    _hyper = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        ms = list(milestones) if isinstance(milestones, (list, tuple, set, range, Counter)) else [None]
        if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) for m in ms):
            raise ValueError(f"MultiStepLR: milestones must be a list of epoch numbers (ints), got {milestones!r}")
        self.milestones, self.gamma = Counter(int(m) for m in ms), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        n = self.milestones[self.last_epoch] if self.last_epoch in self.milestones else 0
        return [g["lr"] * self.gamma ** n if n else g["lr"] for g in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    """Multiply each group's lr by gamma every epoch.

    Example:
        >>> sched = ExponentialLR(opt, gamma=0.5)
        >>> sched.step(); sched.step()
        >>> sched.get_last_lr()
        [0.025]
    """

    _hyper = ("gamma",)

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:  # building it (or rebuilding it to resume) leaves the lr alone
            return [g["lr"] for g in self.optimizer.param_groups]
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), with one function for all groups or a list of one per group.

    ``state_dict()`` saves, as PyTorch does, the ``__dict__`` of callable objects and None for
    plain functions and lambdas (which cannot be saved).

    Example:
        >>> sched = LambdaLR(opt, lr_lambda=lambda epoch: 0.9 ** epoch)
        >>> sched.step(); sched.step()
        >>> round(sched.get_last_lr()[0], 6)                 # 0.1 * 0.9 ** 2
        0.081
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)) and len(lr_lambda) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if not all(callable(fn) for fn in self.lr_lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch or a list of them, got {lr_lambda}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        out = super().state_dict()
        out["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                             for fn in self.lr_lambdas]
        return out

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for fn, saved in zip(self.lr_lambdas, state_dict.get("lr_lambdas", ())):
            fn.__dict__.update(saved or {})


def _per_group(name, optimizer, value):
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. {name} has "
                             f"{len(value)} values, param_groups has {len(optimizer.param_groups)}.")
        return list(value)
    return [value] * len(optimizer.param_groups)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith 2018), stepped once per batch: lr rises from max_lr / div_factor to
    max_lr over ``pct_start`` of the steps, then falls to initial_lr / final_div_factor, while
    'momentum' (or Adam's betas[0]) moves inversely between max_momentum and base_momentum.

    Example:
        >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=10)    # lr 0.04 up to 1.0 at step 2
        >>> opt.param_groups[0]["momentum"]
        0.95
        >>> sched.step(); sched.step()
        >>> sched.get_last_lr(), opt.param_groups[0]["momentum"]
        ([1.0], 0.85)
    """

    _hyper = ("total_steps", "_schedule_phases", "_anneal_func_type", "cycle_momentum", "use_beta1")

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if total_steps is None and (epochs is None or steps_per_epoch is None):
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        for name, value in ((("total_steps", total_steps),) if total_steps is not None else
                            (("epochs", epochs), ("steps_per_epoch", steps_per_epoch))):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Expected positive integer {name}, but got {value}")
        self.total_steps = total_steps if total_steps is not None else epochs * steps_per_epoch
        n, keys = self.total_steps, ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")
        phases = [(float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")]
        if three_phase:
            phases += [(float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                       (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases += [(n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        self._schedule_phases = [dict(zip(keys, phase)) for phase in phases]
        if not isinstance(pct_start, float) or pct_start < 0 or pct_start > 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for m, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum, self.use_beta1 = bool(cycle_momentum), "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
            maxes = _per_group("max_momentum", optimizer, max_momentum)
            bases = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m, b, group in zip(maxes, bases, optimizer.param_groups):
                    self._set_momentum(group, m)
                    group["max_momentum"], group["base_momentum"] = m, b
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):  # PyTorch's _annealing_cos / _annealing_linear
        return (end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1) if self._anneal_func_type == "cos"
                else (end - start) * pct + start)

    def get_lr(self):
        """The rates for ``last_epoch``; with ``cycle_momentum`` it also sets each group's momentum."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start = phase["end_step"]
            if self.cycle_momentum:
                self._set_momentum(group, momentum)  # a side effect of get_lr, as in PyTorch
        return lrs

    def _set_momentum(self, group, value):
        group.update({"betas": (value, *group["betas"][1:])} if self.use_beta1 else {"momentum": value})

    def load_state_dict(self, state_dict):
        """Restore, and put back the momentum of the restored step too (the lr is restored by the base)."""
        super().load_state_dict(state_dict)
        if self.cycle_momentum:
            self.get_lr()


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` once the metric given to ``step(metric)`` has not improved
    (by ``threshold``, relative or absolute) for more than ``patience`` steps; then wait
    ``cooldown`` steps; never below ``min_lr``, and not at all when the change would be <= eps.

    Example:
        >>> sched = ReduceLROnPlateau(opt, patience=1)
        >>> for val_loss in [1.0, 0.9, 0.95, 0.95]:
        ...     sched.step(val_loss)
        >>> [round(lr, 6) for lr in sched.get_last_lr()]     # two steps without improvement
        [0.01]
    """

    _KEYS = ("factor", "min_lrs", "default_min_lr", "patience", "cooldown", "eps", "last_epoch", "_last_lr",
             "mode", "threshold", "threshold_mode", "mode_worse", "best", "cooldown_counter", "num_bad_epochs")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.factor, self.optimizer = factor, optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * len(optimizer.param_groups)
        self.patience, self.cooldown, self.eps, self.last_epoch = patience, cooldown, eps, 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]
        self._init_is_better(mode, threshold, threshold_mode)
        self.best, self.cooldown_counter, self.num_bad_epochs = self.mode_worse, 0, 0

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError("mode " + str(mode) + " is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError("threshold mode " + str(threshold_mode) + " is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode

    def _is_better(self, a, best):
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics):
        """One epoch with validation metric ``metrics`` (a number or a one-element tensor)."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown are ignored
        if self.num_bad_epochs > self.patience:
            n = len(self.optimizer.param_groups)
            if n != len(self.min_lrs):
                if self.default_min_lr is None:
                    raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {n} param groups but min_lr "
                                       f"gave {len(self.min_lrs)}; set min_lrs to match")
                self.min_lrs = [self.default_min_lr] * n
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    set_lr(self.optimizer, group, new_lr)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        """PyTorch's entries: every setting and counter (``best``, ``num_bad_epochs``...), not the optimizer."""
        return {k: copy.copy(getattr(self, k)) for k in self._KEYS}

    def load_state_dict(self, state_dict):
        """Restore from ``state_dict()``; the lrs themselves come back with the optimizer's state."""
        self.__dict__.update({k: copy.copy(state_dict[k]) for k in self._KEYS})
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)
