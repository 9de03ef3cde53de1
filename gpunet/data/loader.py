"""``DataLoader``: batches of a dataset as gpunet Tensors on a backend, optionally shuffled.

Shuffling uses the loader's own NumPy generator, seeded by ``seed`` or, when ``seed`` is
None, by a number drawn from ``gpunet.random.host_rng()`` (so ``gn.manual_seed`` makes it
repeatable). ``state_dict()`` / ``load_state_dict()`` save and restore that generator and
the epoch count, so a resumed training run draws the same permutations as an
uninterrupted one.

Example:
    >>> loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
    >>> for x, y in loader:
    ...     print(x.shape, y.shape, y.dtype)
    (64, 1, 28, 28) (64,) int64
"""
from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backends
from .. import random as _random
from ..tensor import Tensor

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` Tensors on ``backend``.

    * ``shuffle``: a new random order every epoch (every ``iter()``).
    * ``sampler``: an iterable of indices with ``len()`` giving the order instead, e.g. a
      ``gn.distributed.DistributedSampler`` (as in PyTorch, not together with ``shuffle``).
    * ``drop_last``: skip the final batch when it is smaller than ``batch_size``.
    * ``seed``: seeds the shuffling; None draws one from ``gpunet.random.host_rng()``.
    * ``backend``: ``"numpy"``, ``"cuda"``, a Backend, or None for the current default backend
      (looked up at each ``iter()``).
    * ``num_workers``: build the next ``num_workers * prefetch_factor`` batches ahead on that
      many background threads (PyTorch uses processes; NumPy's indexing copies release the
      GIL, so threads overlap them with training). The batches and their order are the same
      as with ``num_workers=0``.

    Example:
        >>> loader = DataLoader(ds, batch_size=10, shuffle=True, drop_last=True, seed=1)
        >>> len(loader)                  # batches per epoch: 64 examples, the last 4 dropped
        6
        >>> x, y = next(iter(loader))
        >>> x.shape, y.shape
        ((10, 1, 28, 28), (10,))
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, backend=None,
                 *, sampler=None, num_workers=0, prefetch_factor=2):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must support len() and [index], got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        for name, value, least in (("num_workers", num_workers, 0), ("prefetch_factor", prefetch_factor, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"DataLoader: {name} must be an int >= {least}, got {value!r}")
        if sampler is not None and (not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__")):
            raise TypeError(f"DataLoader: sampler must be an iterable of indices with len(), got "
                            f"{type(sampler).__name__}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle=True "
                             "(the sampler decides the order)")
        self.sampler = sampler
        if backend is not None:
            backends.resolve(backend)  # fail now, with the backend's own message, on a bad name
        self.num_workers, self.prefetch_factor = int(num_workers), int(prefetch_factor)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.backend = backend
        if self.shuffle and seed is None:
            seed = int(_random.host_rng().integers(2**63 - 1))
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.epoch = 0  # how many times iteration has started

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = self._rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        n = len(order)
        self.epoch += 1
        be = backends.resolve(self.backend)
        stop = n - n % self.batch_size if self.drop_last else n
        batches = [order[s:s + self.batch_size] for s in range(0, stop, self.batch_size)]
        if self.num_workers == 0:
            for idx in batches:
                yield tuple(_to_tensor(f, be) for f in self._fields(idx))
            return
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="gpunet-loader") as pool:
            ahead = self.num_workers * self.prefetch_factor
            futures = [pool.submit(self._fields, idx) for idx in batches[:ahead]]
            for k in range(len(batches)):
                fields = futures[k].result()
                futures[k] = None
                if k + ahead < len(batches):
                    futures.append(pool.submit(self._fields, batches[k + ahead]))
                yield tuple(_to_tensor(f, be) for f in fields)

    def _fields(self, idx):
        """The host arrays of one batch."""
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is not None:
            return get_batch(idx)
        from .dataset import _collate  # a duck-typed dataset without get_batch

        return _collate([self.dataset[int(i)] for i in idx])

    # --- resumable state ---------------------------------------------------------
    def state_dict(self):
        """The epoch count and shuffling generator state (plain Python values)."""
        return {"epoch": self.epoch, "seed": self.seed, "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` returned; the next epoch continues the same sequence."""
        try:
            rng_state, epoch = state["rng"], int(state["epoch"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"DataLoader.load_state_dict: needs a dict with 'epoch' and 'rng', got {state!r}") from e
        self._rng.bit_generator.state = _plain(rng_state)
        self.epoch = epoch
        self.seed = state.get("seed", self.seed)

    def __repr__(self):
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")


def _plain(obj):
    """NumPy scalars/0-d arrays (as ``gn.load`` returns them) -> Python ints for bit_generator.state."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray) and obj.ndim == 0:
        return obj.item()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _to_tensor(field, be):
    if isinstance(field, Tensor):
        return field if field.backend is be else field.to(be)
    return Tensor(field, backend=be)
