"""The base of the learning-rate schedules: ``LRScheduler`` (epochs, ``get_last_lr``,
``state_dict``) and ``set_lr``, which writes a rate into a param group."""
from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer


def _value(lr):
    return float(lr) if isinstance(lr, Tensor) else lr


def set_lr(optimizer, group, lr):
    """Set a param group's learning rate: a tensor lr (read by a captured graph) is filled in
    place, as PyTorch's schedulers do; a number is replaced, unless a CUDA graph captured the
    optimiser's step with it (the graph would go on with the old rate: refused).

    Example:
        >>> opt = optim.SGD(model.parameters(), lr=gn.tensor(0.1))
        >>> set_lr(opt, opt.param_groups[0], 0.05); round(float(opt.param_groups[0]["lr"]), 6)
        0.05
    """
    if isinstance(group["lr"], Tensor):
        group["lr"].fill_(float(lr))
        return
    if id(group) in getattr(optimizer, "_captured_groups", ()) and float(lr) != float(group["lr"]):
        raise RuntimeError(
            f"{type(optimizer).__name__}: a CUDA graph captured step() with lr={group['lr']!r}, "
            f"a number frozen into the graph, so the new lr {lr!r} would be ignored by replay(); "
            "build the optimiser with lr=gn.tensor(...) to schedule a captured step")
    group["lr"] = lr


class LRScheduler:
    """Base class: subclasses give ``lr_at(base_lr, epoch)`` in closed form, or override ``get_lr()``
    (the rates for ``last_epoch``, PyTorch's name) to compute them from the current ``group["lr"]``."""

    _hyper: tuple = ()
    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a gpunet Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:  # a tensor lr's value: the schedule refills the tensor
                group.setdefault("initial_lr", _value(group["lr"]))
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} needs 'initial_lr' in every "
                               "param group (resume with load_state_dict instead)")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = True  # the first step sets the epoch-0 rates
        self.step()
        self._is_initial = False

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def get_lr(self):
        """The rate of each group for ``self.last_epoch`` (by default ``lr_at`` of each base lr)."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self):
        """Advance one epoch and set each group's lr."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            set_lr(self.optimizer, group, lr)
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
            set_lr(self.optimizer, group, lr)
