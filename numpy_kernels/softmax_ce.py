"""Fused softmax cross-entropy on NumPy: log-sum-exp stable loss and its gradient.

Example:
    >>> loss, probs = softmax_cross_entropy_fwd(np.array([[0.0, 0.0]]), np.array([1]))
    >>> round(float(loss[0]), 4)
    0.6931
"""
from __future__ import annotations

import numpy as np


def softmax_cross_entropy_fwd(logits, labels):
    """Per-row loss ``logsumexp(row) - row[label]`` and the softmax probabilities."""
    rows = np.arange(logits.shape[0])
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    probs = e / s
    # NOTE: log(s) - (x_label - m), not log(s) + m - x_label: adding the max back first would
    # round it at the logits' magnitude (2e-4 relative error at logits ~1e4 in float32).
    loss = np.log(s[:, 0]) - shifted[rows, labels]
    return loss, probs


def softmax_cross_entropy_bwd(probs, labels, gloss):
    """``(probs - onehot(labels)) * gloss[:, None]``."""
    g = probs.copy()
    g[np.arange(g.shape[0]), labels] -= 1
    g *= gloss.reshape(-1, 1)
    return g
