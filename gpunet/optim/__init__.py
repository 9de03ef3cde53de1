"""gpunet.optim: SGD, Adam, AdamW and learning-rate schedules, with state dicts that resume exactly.

Also RMSprop, Adadelta, Adagrad and LBFGS, and the schedules MultiStepLR, ExponentialLR, LambdaLR,
OneCycleLR and ReduceLROnPlateau, all with PyTorch's arguments and maths.

Example:
    >>> from gpunet import optim
    >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
"""
from . import lr_scheduler
from .adaptive import Adadelta, Adagrad
from .lbfgs import LBFGS
from .lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LRScheduler, MultiStepLR, OneCycleLR,
                           ReduceLROnPlateau, StepLR)
from .adam import Adam, AdamW
from .optimizer import SGD, Optimizer
from .rmsprop import RMSprop

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad", "LBFGS", "CosineAnnealingLR",
           "ExponentialLR", "LambdaLR", "LRScheduler", "MultiStepLR", "OneCycleLR", "Optimizer",
           "ReduceLROnPlateau", "StepLR", "lr_scheduler"]
