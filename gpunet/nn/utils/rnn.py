"""``nn.utils.rnn``: variable-length sequences as PyTorch packs them.

Pad a batch of sequences to the longest, pack it with their lengths, and hand the
``PackedSequence`` to ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``: each sequence's state stops
at its own last step (``h_n`` is the state after step ``lengths[i]``), and the output comes
back packed; ``pad_packed_sequence`` turns it into a zero-padded tensor again.

Example:
    >>> x = gn.tensor(np.zeros((5, 3, 8), np.float32))            # (T, N, F), padded
    >>> packed = pack_padded_sequence(x, [5, 2, 3], enforce_sorted=False)
    >>> out, (h, c) = nn.LSTM(8, 16)(packed)                      # h (1, 3, 16): steps 5, 2, 3
    >>> padded, lengths = pad_packed_sequence(out)                # (5, 3, 16), zeros past each length
    >>> lengths.tolist()
    [5, 2, 3]
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import functional as F
from ...tensor import Tensor


class PackedSequence(NamedTuple):
    """PyTorch's packed layout: ``data`` (sum of lengths, *) holds step 0 of every sequence,
    then step 1 of those that have one, …, longest first; ``batch_sizes[t]`` counts the
    sequences at step t; ``sorted_indices`` (None when the batch came sorted) orders the batch
    longest first and ``unsorted_indices`` undoes it.  The index arrays are int64 host tensors."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _host_ints(name, value):
    arr = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D sequence of ints, got {arr.dtype} of shape {tuple(arr.shape)}")
    return arr.astype(np.int64)


def _packed_rows(batch_sizes, order):
    """(step, batch position) of every row of ``data``, in packed order."""
    steps = np.repeat(np.arange(len(batch_sizes)), batch_sizes)
    ranks = np.concatenate([np.arange(b) for b in batch_sizes])
    return steps, order[ranks]


def _on(like, index):
    """Index arrays moved to ``like``'s backend (the device, on cuda)."""
    return tuple(like.backend.asarray(i) for i in index) if isinstance(index, tuple) else \
        like.backend.asarray(index)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, N, *) (``batch_first``: (N, T, *)) with each sequence's length.

    ``enforce_sorted=True`` needs ``lengths`` in decreasing order; ``False`` sorts (stably).

    Example:
        >>> seqs = gn.randn(3, 2, 5)                          # (T, N, F)
        >>> pack_padded_sequence(seqs, [3, 1]).batch_sizes.tolist()
        [2, 1, 1]
    """
    if not isinstance(input, Tensor) or input.ndim < 2:
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ValueError(f"pack_padded_sequence: input must be a Tensor (T, N, *) or (N, T, *), got {got}")
    lengths = _host_ints("pack_padded_sequence: lengths", lengths)
    x = input.transpose(0, 1) if batch_first else input
    steps, n = x.shape[0], x.shape[1]
    if len(lengths) != n or (n and (lengths.min() < 1 or lengths.max() > steps)):
        raise ValueError(f"pack_padded_sequence: lengths must hold {n} values in [1, {steps}] "
                         f"(one per sequence, at most the padded length), got {lengths.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError(f"pack_padded_sequence: lengths must be sorted in decreasing order when "
                             f"enforce_sorted=True, got {lengths.tolist()}; pass enforce_sorted=False")
        order, sorted_t, unsorted_t = np.arange(n), None, None
    else:
        order = np.argsort(-lengths, kind="stable")
        sorted_t = Tensor(order, backend="numpy")
        unsorted_t = Tensor(np.argsort(order), backend="numpy")
    batch_sizes = (lengths[None, :] > np.arange(lengths.max())[:, None]).sum(axis=1)
    rows = _packed_rows(batch_sizes, order)
    return PackedSequence(x[_on(x, rows)], Tensor(batch_sizes.astype(np.int64), backend="numpy"),
                          sorted_t, unsorted_t)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo :func:`pack_padded_sequence`: ``(padded (T, N, *), lengths)``, the batch in its
    original order, ``padding_value`` past each length, T = ``total_length`` or the longest.

    Example:
        >>> packed = pack_padded_sequence(gn.randn(2, 3, 5), [3, 1], batch_first=True)
        >>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
        >>> padded.shape, lengths.tolist()
        (gpunet.Size([2, 3, 5]), [3, 1])
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: sequence must be a PackedSequence, got "
                        f"{type(sequence).__name__}")
    data = sequence.data
    batch_sizes = _host_ints("batch_sizes", sequence.batch_sizes)
    steps, n = len(batch_sizes), int(batch_sizes[0])
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"pad_packed_sequence: total_length must be at least the longest "
                             f"sequence, {steps}, got {total_length}")
        steps = int(total_length)
    order = (np.arange(n) if sequence.sorted_indices is None
             else _host_ints("sorted_indices", sequence.sorted_indices))
    # Row of data for every (step, sequence); the padding row (index len(data)) elsewhere.
    where = np.full((steps, n), data.shape[0], np.int64)
    where[_packed_rows(batch_sizes, order)] = np.arange(data.shape[0])
    pad = Tensor._wrap(data.backend.xp.full((1,) + data.shape[1:], padding_value, data.dtype),
                       data.backend)
    padded = F.concat([data, pad], axis=0)[_on(data, where)]
    lengths = (where < data.shape[0]).sum(axis=0)
    return (padded.transpose(0, 1) if batch_first else padded,
            Tensor(lengths.astype(np.int64), backend="numpy"))


def repack_like(padded, like):
    """A time-major padded tensor (T, N, *) packed with the lengths and order of ``like``."""
    order = (np.arange(padded.shape[1]) if like.sorted_indices is None
             else _host_ints("sorted_indices", like.sorted_indices))
    rows = _packed_rows(_host_ints("batch_sizes", like.batch_sizes), order)
    return PackedSequence(padded[_on(padded, rows)], like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def pad_sequence(sequences, batch_first=False, padding_value=0.0):
    """Stack tensors (L_i, *) into one (T, N, *) (``batch_first``: (N, T, *)), padded to the longest.

    Example:
        >>> pad_sequence([gn.ones(3, 2), gn.ones(1, 2)]).shape
        gpunet.Size([3, 2, 2])
    """
    sequences = list(sequences)
    if not sequences or not all(isinstance(s, Tensor) and s.ndim >= 1 for s in sequences):
        raise ValueError("pad_sequence: sequences must be a non-empty list of Tensors (L_i, *)")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        if s.shape[0] < longest:
            fill = s.backend.xp.full((longest - s.shape[0],) + s.shape[1:], padding_value, s.dtype)
            s = F.concat([s, Tensor._wrap(fill, s.backend)], axis=0)
        padded.append(s)
    return F.stack(padded, axis=0 if batch_first else 1)
