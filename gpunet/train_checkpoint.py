"""fit()'s checkpoints: one file per epoch holding the model, optimiser, scheduler, history,
early-stopping, loader and random-generator state, written atomically, and read back so a
resumed run continues with the same bits.

Example:
    >>> _save_checkpoint("ckpt.npz", 3, model, opt, None, loader, None, history, None, be)  # doctest: +SKIP
"""
from __future__ import annotations

import os

import numpy as np

from . import random as _random
from . import serialization

CHECKPOINT_FORMAT = "gpunet.checkpoint"


def _rng_state(be):
    # The host generator (init, shuffling) and the backend's (dropout): NumPy's bit-generator
    # state, or the cuda backend's counter-based (seed, offset), so resume is exact on both.
    return {"host": _random.host_rng().bit_generator.state, "backend": be.rng_state()}


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (np.ndarray, np.generic)) and np.ndim(obj) == 0:
        return obj.item()
    return obj


def _restore_rng(state, be):
    _random.host_rng().bit_generator.state = _plain(state["host"])
    if state.get("backend") is not None:
        be.set_rng_state(_plain(state["backend"]))


def _state_of(obj):
    return obj.state_dict() if obj is not None and hasattr(obj, "state_dict") else None


def _load_checkpoint(path, model, optimizer, scheduler, train_loader, val_loader, be):
    if not os.path.exists(path):
        raise FileNotFoundError(f"fit: resume={path!r} does not exist; pass the checkpoint= path of an earlier run")
    ck = serialization.load(path)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"fit: resume={path!r} is not a gpunet training checkpoint (written by fit(checkpoint=...))")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler") is not None:
        scheduler.load_state_dict(ck["scheduler"])
    for loader, key in ((train_loader, "loader"), (val_loader, "val_loader")):
        if ck.get(key) is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(ck[key])
    _restore_rng(ck["rng"], be)
    return ck


def _save_checkpoint(path, epoch, model, optimizer, scheduler, train_loader, val_loader, history, es, be,
                     meta=None):
    ck = {
        "format": CHECKPOINT_FORMAT, "version": 1, "epoch": epoch,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": _state_of(scheduler), "history": history.to_dict(),
        "loader": _state_of(train_loader), "val_loader": _state_of(val_loader),
        "rng": _rng_state(be), "early_stopping": es,
    }
    if meta is not None:
        ck["meta"] = meta  # what the caller wants to check on resume (the CLI: its options)
    serialization.save(ck, os.fspath(path))
