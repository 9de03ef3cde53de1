"""gpunet.optim: SGD, Adam, AdamW and learning-rate schedules, with state dicts that resume exactly.

Example:
    >>> from gpunet import optim
    >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
"""
from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer
from .rmsprop import RMSprop

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR", "lr_scheduler"]
