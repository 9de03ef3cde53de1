"""Training loop: ``fit`` and ``evaluate``, with progress bars, early stopping and exact resume.

``fit`` trains a classifier (or any model whose loss_fn returns a scalar Tensor), keeps a
``History`` of per-epoch metrics, and, given ``checkpoint=path``, writes after every epoch one
file (atomically, via ``gpunet.serialization.save``) holding the model, optimiser, scheduler,
history, early-stopping and loader/RNG state. ``fit(..., resume=path)`` continues from it and,
on the NumPy backend, ends with bit-for-bit the weights an uninterrupted run would have.

Example:
    >>> import tempfile, os
    >>> ckpt = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
    ...               train_loader, epochs=3, val_loader=test_loader, early_stopping=3,
    ...               checkpoint=ckpt, progress=False)
    >>> len(history.val_acc), os.path.exists(ckpt)
    (3, True)
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import time

import numpy as np

from . import backends
from .distributed import training as _dist
from .function import no_grad
from .optim.lr_scheduler import ReduceLROnPlateau
from .train_capture import CapturedStep
from .train_checkpoint import CHECKPOINT_FORMAT, _load_checkpoint, _save_checkpoint  # noqa: F401

__all__ = ["History", "NonFiniteLossError", "fit", "evaluate", "predict"]


@dataclasses.dataclass
class History:
    """Per-epoch metrics; ``val_*`` are NaN when there is no validation loader.

    Example:
        >>> h = fit(model, loss_fn, opt, train_loader, epochs=2, progress=False)
        >>> len(h.train_loss), h.to_dict()["val_acc"]          # no val_loader: NaN
        (2, [nan, nan])
    """

    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_acc: list = dataclasses.field(default_factory=list)
    epoch_time: list = dataclasses.field(default_factory=list)
    images_per_sec: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch whose weights early stopping kept
    stopped_early: bool = False

    def __len__(self):
        return len(self.train_loss)

    def to_dict(self):
        """A plain dict (JSON-ready: lists of floats, ints, bools)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Rebuild from ``to_dict()`` output (also as ``gn.load`` returns it)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {}
        for k, v in d.items():
            if k in fields:
                kw[k] = [float(x) for x in v] if isinstance(v, (list, tuple)) else v
        if kw.get("best_epoch") is not None:
            kw["best_epoch"] = int(kw["best_epoch"])
        kw["stopped_early"] = bool(kw.get("stopped_early", False))
        return cls(**kw)


# --- helpers -------------------------------------------------------------------------
def _model_backend(model):
    for p in model.parameters():
        return p.backend
    return None


def _split_batch(batch, who):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        n = len(batch) if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"{who}: each batch must be an (inputs, targets) pair, got {n}")
    return batch


def _on(t, be):
    return t if be is None or t.backend is be else t.to(be)


def _correct(out, y):
    """Number of correct class predictions as a backend array, or None if not a classifier."""
    if out.ndim != 2 or y.dtype.kind not in "iu" or y.shape != out.shape[:1]:
        return None
    return (out._data.argmax(axis=1) == y._data).sum()


def _host_float(x, be=None):
    """A device scalar as a Python float, through the backend so device-side errors surface."""
    if be is not None:
        return float(be.to_host(x))
    return float(np.asarray(x))


def _host_copy(state):
    return {k: np.array(backends.to_host(v), copy=True) for k, v in state.items()}


def _set_mode(model, training):
    model.train() if training else model.eval()


# --- evaluation ----------------------------------------------------------------------
def evaluate(model, loss_fn, loader):
    """Mean loss and accuracy over ``loader`` in eval mode without recording gradients.

    Accuracy is NaN when the model is not a classifier (outputs not (N, C) with int targets).

    Example:
        >>> test_loss, test_acc = evaluate(model, nn.CrossEntropyLoss(), test_loader)
    """
    was_training = getattr(model, "training", True)
    model.eval()
    be = _model_backend(model)
    total_loss = total_correct = None
    n = 0
    try:
        with no_grad():
            for batch in loader:
                x, y = _split_batch(batch, "evaluate")
                x, y = _on(x, be), _on(y, be)
                out = model(x)
                bs = x.shape[0]
                loss = loss_fn(out, y)._data * bs
                total_loss = loss if total_loss is None else total_loss + loss
                c = _correct(out, y)
                if c is not None:
                    total_correct = c if total_correct is None else total_correct + c
                n += bs
    finally:
        _set_mode(model, was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    acc = math.nan if total_correct is None else _host_float(total_correct, be) / n
    return _host_float(total_loss, be) / n, acc


def predict(model, loader):
    """Predicted class ids and targets over ``loader`` as host NumPy arrays ``(pred, target)``.

    Example:
        >>> pred, target = predict(model, test_loader)
        >>> pred.shape, target.shape, pred.dtype
        ((32,), (32,), dtype('int64'))
        >>> accuracy = (pred == target).mean()
    """
    was_training = getattr(model, "training", True)
    model.eval()
    be = _model_backend(model)
    preds, targets = [], []
    try:
        with no_grad():
            for batch in loader:
                x, y = _split_batch(batch, "predict")
                out = model(_on(x, be))
                preds.append(out.argmax(axis=1).numpy())
                targets.append(y.numpy())
    finally:
        _set_mode(model, was_training)
    return np.concatenate(preds), np.concatenate(targets)


# --- progress display --------------------------------------------------------------------
class _Progress:
    """A tqdm bar per epoch (tqdm imported lazily), else one printed line per epoch."""

    def __init__(self, enabled, epoch, epochs, total):
        self.enabled, self.bar = enabled, None
        self.label = f"epoch {epoch}/{epochs}"
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=self.label, unit="batch", leave=True, dynamic_ncols=True)

    def update(self, n, metrics):
        if self.bar is not None:
            self.bar.update(n)
            if metrics:
                self.bar.set_postfix_str(_format(metrics), refresh=False)

    def close(self, metrics):
        if self.bar is not None:
            self.bar.set_postfix_str(_format(metrics), refresh=False)
            self.bar.close()
        elif self.enabled:
            print(f"{self.label}: {_format(metrics)}", flush=True)


def _format(metrics):
    parts = []
    for k, v in metrics.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        parts.append(f"{k}={v:.0f}" if k == "img/s" else f"{k}={v:.4f}")
    return " ".join(parts)


# --- fit ----------------------------------------------------------------------------------------
def _check_args(epochs, early_stopping, val_loader):
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if early_stopping is not None:
        if isinstance(early_stopping, bool) or not isinstance(early_stopping, numbers.Integral) or early_stopping < 1:
            raise ValueError(f"fit: early_stopping must be a patience in epochs (int >= 1) or None, "
                             f"got {early_stopping!r}")
        if val_loader is None:
            raise ValueError("fit: early_stopping needs a val_loader (a held-out tuning set) to watch")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (``fit`` stops, as Keras' ``TerminateOnNaN``)."""


def _check_finite(window, epoch, be):
    """Raise for the first NaN/inf among ``window``'s (batch, loss) pairs (one host read)."""
    if not window:
        return
    losses = [loss for _, loss in window]
    values = np.asarray(be.to_host(be.xp.stack(losses)) if be is not None else
                        [float(v) for v in losses], dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(values))
    batches = [number for number, _ in window]
    window.clear()
    if bad.size:
        k = bad[0]
        raise NonFiniteLossError(
            f"fit: the training loss is {values[k]} at epoch {epoch}, batch {batches[k]}; training "
            "stopped (the checkpoint of the last finished epoch is unchanged). Look for NaN or inf "
            "in the inputs or targets, or lower the learning rate")


def _train_epoch(model, loss_fn, optimizer, loader, be, bar, epoch=1, step=None):
    model.train()
    total_loss = total_correct = None
    n, shown, start = 0, time.perf_counter(), time.perf_counter()
    pending = 0
    window = []  # (batch number, loss on the device) not yet read back
    # NOTE: where reading a value back is free (the CPU) the loss is checked before the update,
    # so the weights stay finite; on a GPU it is read back with the progress bar (no sync per
    # step) and the error still names the first bad batch.
    check_now = be is None or be.reads_are_free
    for number, batch in enumerate(loader, 1):
        x, y = _split_batch(batch, "fit")
        x, y = _on(x, be), _on(y, be)
        if step is not None:  # fit(capture=True): replayed; the loss is checked after the update
            out, loss = step(x, y)
        else:
            out = model(x)
            loss = loss_fn(out, y)
        window.append((number, loss._data if step is None else loss._data.copy()))
        if check_now:
            _check_finite(window, epoch, be)
        if step is None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        bs = x.shape[0]
        total_loss = loss._data * bs if total_loss is None else total_loss + loss._data * bs
        c = _correct(out, y)
        if c is not None:
            total_correct = c if total_correct is None else total_correct + c
        n += bs
        pending += 1
        now = time.perf_counter()
        if now - shown > 0.5:  # read device values back rarely, not every step
            shown = now
            _check_finite(window, epoch, be)
            bar.update(pending, _metrics(total_loss, total_correct, n, now - start, be))
            pending = 0
    _check_finite(window, epoch, be)
    if be is not None:
        be.synchronize()
    elapsed = time.perf_counter() - start
    if n == 0:
        raise ValueError("fit: train_loader yielded no batches (drop_last with too few samples?)")
    bar.update(pending, None)
    comm = _dist.active()
    if comm is not None:  # the whole job's metrics: every rank's sums added up (host floats)
        (total_loss, total_correct, n), be = _dist.sum_totals(comm, total_loss, total_correct, n, be), None
    return _metrics(total_loss, total_correct, n, elapsed, be), elapsed


def _metrics(total_loss, total_correct, n, elapsed, be=None):
    return {"loss": _host_float(total_loss, be) / n,
            "acc": math.nan if total_correct is None else _host_float(total_correct, be) / n,
            "img/s": n / max(elapsed, 1e-9)}


def fit(model, loss_fn, optimizer, train_loader, epochs, val_loader=None, early_stopping=None,
        checkpoint=None, resume=None, scheduler=None, progress=True, checkpoint_meta=None,
        capture=False):
    """Train for ``epochs`` epochs; return a :class:`History`.

    * ``val_loader``: a held-out tuning set evaluated after each epoch (``val_loss``/``val_acc``).
    * ``early_stopping``: patience in epochs; stop when ``val_loss`` has not improved for that
      many epochs, and load the best epoch's weights back into ``model`` at the end.
    * ``checkpoint``: path written atomically after every epoch (model, optimiser, scheduler,
      history, loader and RNG state); ``resume``: such a path to continue from exactly.
    * ``scheduler``: stepped once per epoch (``StepLR``, ``CosineAnnealingLR``...); a
      ``ReduceLROnPlateau`` with the epoch's ``val_loss`` (the train loss without ``val_loader``).
    * ``progress``: a tqdm bar per epoch (a printed line per epoch without tqdm); False = silent.
    * ``capture``: the step captured once as a graph and replayed (``train_capture.py``); the
      same history as eager, the loss checked for NaN after the update instead of before.
    * In a ``gn.distributed`` job of several ranks: metrics are averaged over ranks, rank 0 alone
      shows progress and writes the checkpoint, and its early-stopping decision is broadcast.

    Example:
        >>> import tempfile, os
        >>> ckpt = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> h = fit(model, nn.CrossEntropyLoss(), opt, train_loader, epochs=2,
        ...         val_loader=test_loader, early_stopping=3, checkpoint=ckpt, progress=False)
        >>> h = fit(model, loss_fn, opt, train_loader, epochs=4, resume=ckpt, progress=False)
        >>> len(h.train_loss)                  # epochs 1-2 from the checkpoint, 3-4 run now
        4
    """
    _check_args(epochs, early_stopping, val_loader)
    be = _model_backend(model)
    comm = _dist.active()
    if comm is not None and comm.rank != 0:  # rank 0 alone reports and writes
        progress, checkpoint = False, None
    history = History()
    start, best_loss, bad_epochs, best_state = 0, math.inf, 0, None
    step = CapturedStep(model, loss_fn, optimizer) if capture else None
    if resume is not None:
        ck = _load_checkpoint(os.fspath(resume), model, optimizer, scheduler, train_loader, val_loader, be)
        start = int(ck["epoch"])
        history = History.from_dict(ck["history"])
        es = ck.get("early_stopping") or {}
        best_loss = float(es.get("best_loss", math.inf))
        bad_epochs = int(es.get("bad_epochs", 0))
        best_state = es.get("best_state") or None
    for epoch in range(start, epochs):
        if history.stopped_early:
            break
        bar = _Progress(progress, epoch + 1, epochs, len(train_loader) if hasattr(train_loader, "__len__") else None)
        lr = _current_lr(optimizer)
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler: this epoch's permutation
            sampler.set_epoch(epoch)
        train_m, elapsed = _train_epoch(model, loss_fn, optimizer, train_loader, be, bar, epoch + 1,
                                        step)
        val_loss = val_acc = math.nan
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, loss_fn, val_loader)
            if comm is not None:  # per-rank BatchNorm statistics can make these differ
                val_loss, val_acc = (v / comm.size for v in _dist.sum_over_ranks(comm, [val_loss, val_acc]))
        if isinstance(scheduler, ReduceLROnPlateau):  # the job-wide loss, the same on every rank
            scheduler.step(val_loss if val_loader is not None else train_m["loss"])
        elif scheduler is not None:
            scheduler.step()
        for name, value in (("train_loss", train_m["loss"]), ("train_acc", train_m["acc"]),
                            ("val_loss", val_loss), ("val_acc", val_acc), ("epoch_time", elapsed),
                            ("images_per_sec", train_m["img/s"]), ("lr", lr)):
            getattr(history, name).append(float(value))
        bar.close({**train_m, "val_loss": val_loss, "val_acc": val_acc})
        if early_stopping is not None:
            improved = val_loss < best_loss
            if comm is not None:  # decided on rank 0, so every rank stops at the same epoch
                improved = _dist.share_decision(comm, improved)
            if improved:
                best_loss, bad_epochs, history.best_epoch = val_loss, 0, epoch + 1
                best_state = _host_copy(model.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= early_stopping:
                    history.stopped_early = True
                    if progress:
                        print(f"early stopping: val_loss has not improved for {bad_epochs} epochs; "
                              f"keeping epoch {history.best_epoch} (val_loss={best_loss:.4f})", flush=True)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, epoch + 1, model, optimizer, scheduler, train_loader, val_loader,
                             history, {"best_loss": best_loss, "bad_epochs": bad_epochs,
                                       "best_state": best_state}, be, checkpoint_meta)
    if early_stopping is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history


def _current_lr(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else math.nan
