"""Fused softmax cross-entropy on NumPy: log-sum-exp stable loss and its gradient, with
PyTorch's class ``weight``, ``ignore_index`` and ``label_smoothing``.

For row i with label y (ignored rows count 0), w the class weights (ones when None), C classes
and smoothing e:  loss_i = (1 - e) w_y (lse_i - x_iy) + e / C * sum_c w_c (lse_i - x_ic).
A "mean" divides the sum by sum_i w_y (the rows not ignored, weighted), as PyTorch does.

Example:
    >>> loss, probs, wsum = softmax_cross_entropy_fwd(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss[0]), 4), wsum.tolist()
    (0.6931, [1.0, 2.0])
"""
from __future__ import annotations

import numpy as np

from ._parallel import chunk_for, parallel_for


def _row_weights(labels, weight, ignore_index, dtype):
    """(safe labels, w_y per row with 0 where ignored)."""
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    wy = valid.astype(dtype) if weight is None else np.where(valid, weight[safe], 0).astype(dtype)
    return safe, wy, valid


def softmax_cross_entropy_fwd(logits, labels, reduction="none", weight=None, ignore_index=-100,
                              label_smoothing=0.0):
    """``(loss, probs, wsum)``: per-row loss (or its "mean" or "sum", a 0-d array), the softmax,
    and ``wsum = [sum of the rows' w_y, sum of the class weights]`` for the backward."""
    n, n_classes = logits.shape
    safe, wy, valid = _row_weights(labels, weight, ignore_index, logits.dtype)
    probs = np.empty_like(logits)
    picked, lse = np.empty(n, logits.dtype), np.empty(n, logits.dtype)
    spread = np.empty(n, logits.dtype) if label_smoothing else None
    w = None if weight is None else weight.astype(logits.dtype)

    def rows(lo, hi):  # shifted logits, their label's entry, then exp and the row sums in place
        p = probs[lo:hi]
        np.subtract(logits[lo:hi], logits[lo:hi].max(axis=1, keepdims=True), out=p)
        picked[lo:hi] = p[np.arange(hi - lo), safe[lo:hi]]
        if spread is not None:
            spread[lo:hi] = p.sum(axis=1) if w is None else p @ w
        np.exp(p, out=p)
        s = p.sum(axis=1, keepdims=True)
        p /= s
        # NOTE: log(s) - (x_label - m), not log(s) + m - x_label: adding the max back first
        # would round it at the logits' magnitude (2e-4 relative error at ~1e4 in float32).
        np.log(s[:, 0], out=lse[lo:hi])

    step = chunk_for(2 * n_classes * logits.itemsize, n, 1 << 40)
    if step >= n:  # one chunk: no region to set up (a small batch's loss is ~12 us in all)
        rows(0, n)
    else:
        parallel_for(n, step, rows)
    loss = (1 - label_smoothing) * wy * (lse - picked)
    class_total = float(n_classes) if weight is None else weight.sum(dtype=logits.dtype)
    if label_smoothing:
        loss = loss + np.where(valid, label_smoothing / n_classes * (class_total * lse - spread), 0)
    loss = loss.astype(logits.dtype, copy=False)
    wsum = np.array([wy.sum(), class_total], dtype=logits.dtype)
    if reduction == "none":
        return loss, probs, wsum
    with np.errstate(invalid="ignore", divide="ignore"):  # the mean of no rows is NaN, as in PyTorch
        total = loss.sum() / wsum[0] if reduction == "mean" else loss.sum()
    return np.asarray(total, dtype=loss.dtype), probs, wsum


def softmax_cross_entropy_bwd(probs, labels, gloss, reduction="none", weight=None, ignore_index=-100,
                              label_smoothing=0.0, wsum=None):
    """d loss / d logits: ``(1 - e) w_y (probs - onehot(y)) + e / C (W probs - w)`` per row
    (zero for ignored rows), times g = ``gloss[row]`` for "none", else the upstream gradient
    of the sum, or of the mean divided by ``wsum[0]``."""
    n, n_classes = probs.shape
    gloss = np.asarray(gloss, dtype=probs.dtype)
    safe, wy, valid = _row_weights(labels, weight, ignore_index, probs.dtype)
    g = probs * ((1 - label_smoothing) * wy)[:, None]
    g[np.arange(n), safe] -= (1 - label_smoothing) * wy
    if label_smoothing:
        w = np.ones(n_classes, probs.dtype) if weight is None else weight.astype(probs.dtype)
        g += np.where(valid[:, None], label_smoothing / n_classes * (w.sum() * probs - w), 0)
    if reduction == "none":
        return g * gloss.reshape(-1, 1)
    scale = gloss.reshape(())
    if reduction == "mean":
        scale = scale / (wsum[0] if wsum is not None else n)
    return g * scale
