"""Samplers (PyTorch's ``torch.utils.data`` samplers): which dataset indices a ``DataLoader`` reads.

They have PyTorch's signatures, defaults, ``len()`` and argument errors, and they draw
lazily: ``RandomSampler(ds, replacement=True, num_samples=10**10)`` draws 32 indices at a
time, so iterating it needs constant memory.  ``generator=`` is a ``numpy.random.Generator``
(gpunet has no generator class of its own); with ``generator=None`` each ``iter()`` seeds a
fresh generator from ``gpunet.random.host_rng()``, so ``gn.manual_seed`` makes the draws
repeatable.  The values differ from torch's (another generator); the distributions do not.

Example:
    >>> from gpunet.data import BatchSampler, RandomSampler, SequentialSampler
    >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    >>> gn.manual_seed(0)
    >>> sorted(RandomSampler(range(5)))
    [0, 1, 2, 3, 4]
"""
from __future__ import annotations

import itertools
from typing import Generic, TypeVar

import numpy as np

from .. import random as _random

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
           "WeightedRandomSampler"]

_T_co = TypeVar("_T_co", covariant=True)
_CHUNK = 32  # indices drawn at a time with replacement (as torch's RandomSampler)


def _generator(generator, who):
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{who}: generator must be a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def _rng(generator):
    """The generator for one ``iter()``: the given one, or a fresh one seeded from the host's."""
    if generator is not None:
        return generator
    return np.random.default_rng(int(_random.host_rng().integers(2**63 - 1)))


class Sampler(Generic[_T_co]):
    """Base class: subclasses define ``__iter__`` (indices, or lists of them) and usually ``__len__``.

    Example:
        >>> class Evens(Sampler):
        ...     def __init__(self, n): self.n = n
        ...     def __iter__(self): return iter(range(0, self.n, 2))
        ...     def __len__(self): return (self.n + 1) // 2
        >>> list(Evens(7)), len(Evens(7))
        ([0, 2, 4, 6], 4)
    """

    def __iter__(self):
        raise NotImplementedError

    def _chunks(self):
        """The same indices as ``iter(self)``, as NumPy int64 arrays (for the loader's fast path)."""
        it = iter(self)
        while chunk := list(itertools.islice(it, 1024)):
            yield np.asarray(chunk, dtype=np.int64)


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``, always in that order.

    Example:
        >>> list(SequentialSampler(range(4))), len(SequentialSampler(range(4)))
        ([0, 1, 2, 3], 4)
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)

    def _chunks(self):
        n = len(self.data_source)
        for start in range(0, n, 4096):
            yield np.arange(start, min(start + 4096, n), dtype=np.int64)


class RandomSampler(Sampler[int]):
    """Random indices of ``data_source``: a new permutation per ``iter()``, or with
    ``replacement=True`` ``num_samples`` independent uniform draws (32 at a time).

    Without replacement, ``num_samples`` larger than the dataset chains permutations, as torch.

    Example:
        >>> s = RandomSampler(range(10), replacement=True, num_samples=10**10)
        >>> len(s), all(0 <= i < 10 for i in itertools.islice(s, 100))
        (10000000000, True)
        >>> sorted(RandomSampler(range(4), generator=np.random.default_rng(0)))
        [0, 1, 2, 3]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = _generator(generator, "RandomSampler")
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        # the dataset's size may change after construction
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        return (int(i) for chunk in self._chunks() for i in chunk.tolist())

    def _chunks(self):
        n, total, rng = len(self.data_source), self.num_samples, _rng(self.generator)
        if self.replacement:
            for _ in range(total // _CHUNK):
                yield rng.integers(0, n, size=_CHUNK, dtype=np.int64)
            if total % _CHUNK:
                yield rng.integers(0, n, size=total % _CHUNK, dtype=np.int64)
        else:
            for _ in range(total // n):
                yield rng.permutation(n)
            if total % n:
                yield rng.permutation(n)[:total % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The elements of ``indices`` in a random order (a new one per ``iter()``).

    Example:
        >>> sorted(SubsetRandomSampler([7, 3, 5]))
        [3, 5, 7]
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = _generator(generator, "SubsetRandomSampler")

    def __iter__(self):
        for i in _rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices of ``0 .. len(weights) - 1`` drawn with probability proportional
    to ``weights`` (``self.weights``: a float64 NumPy array), with or without replacement.

    With replacement the draws are lazy (32 at a time, by inverting the cumulative weights);
    without, they are successive weighted draws of distinct indices (once the non-zero weights
    are used up, the zero-weight indices follow, as torch's CPU ``multinomial`` does).  Bad weights
    (negative, not finite, all zero; ``num_samples > len(weights)`` without replacement) raise
    ``RuntimeError`` when iterating, as torch's ``multinomial`` does.

    Example:
        >>> s = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], num_samples=6)
        >>> len(s), set(s) <= {1, 3}
        (6, True)
        >>> sorted(WeightedRandomSampler([0.9, 0.4, 0.05, 0.2], 4, replacement=False))
        [0, 1, 2, 3]
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        if hasattr(weights, "numpy") and not isinstance(weights, np.ndarray):
            weights = weights.numpy()
        weights = np.array(weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(weights.shape)}")
        self.weights, self.num_samples, self.replacement = weights, num_samples, replacement
        self.generator = _generator(generator, "WeightedRandomSampler")

    def _checked(self):
        w = self.weights
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if w.sum() <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not self.replacement and self.num_samples > w.size:
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        return w

    def __iter__(self):
        return (int(i) for chunk in self._chunks() for i in chunk.tolist())

    def _chunks(self):
        w, rng = self._checked(), _rng(self.generator)
        if not self.replacement:  # sort by E_i / w_i (E_i ~ Exp(1)): successive weighted draws
            with np.errstate(divide="ignore"):
                keys = rng.standard_exponential(w.size) / w
            yield np.argsort(keys, kind="stable")[:self.num_samples]
            return
        cdf = np.cumsum(w)
        last = int(np.flatnonzero(w)[-1])  # rounding at the top must not pick a trailing zero weight
        for start in range(0, self.num_samples, _CHUNK):
            u = rng.random(min(_CHUNK, self.num_samples - start)) * cdf[-1]
            yield np.minimum(np.searchsorted(cdf, u, side="right"), last).astype(np.int64)

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Lists of ``batch_size`` indices from ``sampler`` (any iterable); ``drop_last`` drops a
    short final list.  Lazy: it reads ``sampler`` one batch at a time.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=True))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
        >>> len(BatchSampler(range(10), 3, False))
        4
    """

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def _arrays(self):
        """The same batches as NumPy int64 arrays, built from the sampler's chunks (no Python loop
        over the indices when the sampler is one of gpunet's)."""
        chunks = self.sampler._chunks() if isinstance(self.sampler, Sampler) else Sampler._chunks(self.sampler)
        pending, have, size = [], 0, self.batch_size
        for chunk in chunks:
            pending.append(chunk)
            have += len(chunk)
            while have >= size:
                joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
                yield joined[:size]
                rest = joined[size:]
                pending, have = ([rest] if len(rest) else []), len(rest)
        if have and not self.drop_last:
            yield np.concatenate(pending)

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
