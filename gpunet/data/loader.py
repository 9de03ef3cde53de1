"""``DataLoader``: PyTorch's loader, yielding batches as gpunet Tensors on a backend.

PyTorch's arguments, defaults and rules (``sampler``/``batch_sampler``/``collate_fn``,
``batch_size=None`` for no batching, ``len(loader)``), plus gpunet's ``seed=`` and ``backend=``.
Indices are read from the sampler one batch at a time, so a sampler such as
``RandomSampler(ds, replacement=True, num_samples=10**10)`` costs nothing up front.

Shuffling (``shuffle=True``) is a ``RandomSampler`` drawing from the loader's NumPy generator:
``generator=`` if given, else one seeded by ``seed`` or, when ``seed`` is None, by a number
drawn from ``gpunet.random.host_rng()`` (so ``gn.manual_seed`` makes it repeatable).
``state_dict()`` / ``load_state_dict()`` save and restore that generator and the epoch count,
so a resumed training run draws the same permutations as an uninterrupted one.

Example:
    >>> loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
    >>> for x, y in loader:
    ...     print(tuple(x.shape), tuple(y.shape), y.dtype)
    (64, 1, 28, 28) (64,) int64
"""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import numbers
import threading

import numpy as np

from .. import backends
from .. import random as _random
from .collate import _collate_host, _convert_host, _on_backend, default_collate, default_convert
from .dataset import Dataset, Subset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]

_EXCLUSIVE = "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"


def _vectorised(dataset):
    """True when ``dataset.get_batch`` indexes its arrays in one go (not the per-item fallback)."""
    if isinstance(dataset, Subset):
        return _vectorised(dataset.dataset)
    get_batch = getattr(type(dataset), "get_batch", None)
    return get_batch is not None and get_batch is not Dataset.get_batch


class DataLoader:
    """Iterate over ``dataset`` in batches, as ``torch.utils.data.DataLoader``.

    * ``batch_size`` (1), ``shuffle``, ``sampler``, ``batch_sampler``, ``drop_last``: PyTorch's
      rules (``batch_sampler`` excludes the other four; ``sampler`` excludes ``shuffle``);
      ``batch_size=None`` yields single items, converted by ``default_convert``.
    * ``collate_fn``: gets the list of dataset items and its return is yielded as it is; by
      default ``default_collate``, with the batch on ``backend`` (for ``TensorDataset`` and
      ``Subset`` of one, each array is indexed once per batch instead of item by item). Items
      that are tuples give batches that are lists (``[x, y]``), as in torch.
    * ``num_workers``: build the next ``num_workers * prefetch_factor`` (default 2) batches
      ahead on that many *threads* (PyTorch uses processes; NumPy's copies release the GIL).
      Batches and order are the same as with ``num_workers=0``. ``timeout`` bounds the wait
      for a batch; ``worker_init_fn(worker_id)`` runs in each thread as it starts;
      ``persistent_workers`` and ``multiprocessing_context`` are checked as in PyTorch and
      otherwise have no effect (threads need no start method and cost little to restart).
    * ``pin_memory``: default-collated batches are staged through page-locked host memory on
      their way to the device when the backend offers it (a ``pinned_copy(array)`` method);
      otherwise, and always on the NumPy backend, it does nothing. ``pin_memory_device`` is
      accepted and ignored.
    * ``generator``: a ``numpy.random.Generator`` for shuffling; ``seed``: seeds one instead.
    * ``backend``: ``"numpy"``, ``"cuda"``, a Backend, or None for the current default backend
      (looked up at each ``iter()``).

    Example:
        >>> loader = DataLoader(ds, batch_size=10, shuffle=True, drop_last=True, seed=1)
        >>> len(loader)                  # batches per epoch: 64 examples, the last 4 dropped
        6
        >>> x, y = next(iter(loader))
        >>> tuple(x.shape), tuple(y.shape)
        ((10, 1, 28, 28), (10,))
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True, seed=None, backend=None):
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must support [index], got {type(dataset).__name__}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral):
            raise ValueError(f"DataLoader: num_workers must be an int, got {num_workers!r}")
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        _check_context(multiprocessing_context, num_workers)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator or None, got "
                            f"{type(generator).__name__}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: give generator= or seed=, not both")
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(f"DataLoader: sampler must be an iterable of indices with len() for len(loader), "
                            f"got {type(sampler).__name__}")
        shuffle = bool(shuffle)
        if isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool):
            batch_size = int(batch_size)  # NumPy ints too (torch's BatchSampler wants a Python int)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(_EXCLUSIVE)
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if backend is not None:
            backends.resolve(backend)  # fail now, with the backend's own message, on a bad name
        if shuffle and seed is None and generator is None:
            seed = int(_random.host_rng().integers(2**63 - 1))
        self._rng = generator if generator is not None else np.random.default_rng(seed)
        if sampler is None:
            if not hasattr(dataset, "__len__"):
                raise TypeError(f"DataLoader: dataset must support len() without a sampler, got "
                                f"{type(dataset).__name__}")
            sampler = RandomSampler(dataset, generator=self._rng) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, bool(drop_last))
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, bool(drop_last)
        self.sampler, self.batch_sampler, self.shuffle = sampler, batch_sampler, shuffle
        self.num_workers, self.prefetch_factor, self.timeout = int(num_workers), prefetch_factor, timeout
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory, self.pin_memory_device, self.in_order = bool(pin_memory), pin_memory_device, in_order
        self.worker_init_fn, self.multiprocessing_context = worker_init_fn, multiprocessing_context
        self.persistent_workers, self.generator = persistent_workers, generator
        self.backend, self.seed = backend, seed
        self.epoch = 0  # how many times iteration has started

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self):
        return len(self._index_sampler)

    def __iter__(self):
        return _DataLoaderIter(self)

    def _batches(self):
        self.epoch += 1
        be = backends.resolve(self.backend)
        builtin = self.collate_fn in (default_collate, default_convert)
        pin = getattr(be, "pinned_copy", None) if self.pin_memory else None  # a backend's, where it has one
        fast = (self.collate_fn is default_collate and isinstance(self.batch_sampler, BatchSampler)
                and _vectorised(self.dataset))
        indices = self.batch_sampler._arrays() if fast else iter(self._index_sampler)
        fetch = self._fetch_vectorised if fast else self._fetch
        finish = (lambda out: _on_backend(out, be, pin)) if builtin else (lambda out: out)
        if self.num_workers == 0:
            for idx in indices:
                yield finish(fetch(idx))
            return
        yield from self._threaded(indices, fetch, finish)

    def _threaded(self, indices, fetch, finish):
        """Fetch on worker threads, ``num_workers * prefetch_factor`` batches ahead, in order."""
        ids, lock, init = itertools.count(), threading.Lock(), self.worker_init_fn

        def start_worker():
            with lock:
                worker_id = next(ids)
            if init is not None:
                init(worker_id)

        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers, "gpunet-loader", start_worker)
        ahead, pending = max(1, self.num_workers * self.prefetch_factor), collections.deque()
        try:
            pending.extend(pool.submit(fetch, idx) for idx in itertools.islice(indices, ahead))
            while pending:
                try:
                    out = pending.popleft().result(timeout=self.timeout or None)
                except concurrent.futures.TimeoutError:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") from None
                pending.extend(pool.submit(fetch, idx) for idx in itertools.islice(indices, 1))
                yield finish(out)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def _fetch_vectorised(self, idx):
        """``get_batch``'s tuple of arrays as the list ``default_collate`` would make of its items."""
        out = self.dataset.get_batch(idx)
        return list(out) if type(out) is tuple else out

    def _fetch(self, index):
        """One batch (a list of indices) or item, collated; on the host when the collate is built in."""
        if self.batch_sampler is None:
            item = self.dataset[index]
            return _convert_host(item) if self.collate_fn is default_convert else self.collate_fn(item)
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(index) if getitems else [self.dataset[i] for i in index]
        return _collate_host(items) if self.collate_fn is default_collate else self.collate_fn(items)

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
        n = len(self.dataset) if hasattr(self.dataset, "__len__") else "?"
        try:
            batches = len(self)
        except TypeError:  # a sampler without len()
            batches = "?"
        return (f"DataLoader(n={n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={batches})")


def _check_context(context, num_workers):
    """PyTorch's checks of ``multiprocessing_context`` (gpunet's workers are threads and ignore it)."""
    if context is None:
        return
    if num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading "
                         f"(num_workers > 0), but got num_workers={num_workers}")
    if isinstance(context, str):
        valid = multiprocessing.get_all_start_methods()
        if context not in valid:
            raise ValueError(f"multiprocessing_context option should specify a valid start method in {valid!r}, "
                             f"but got multiprocessing_context={context!r}")
    elif not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={context}")


def _plain(obj):
    """NumPy scalars/0-d arrays (as ``gn.load`` returns them) -> Python ints for bit_generator.state."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray) and obj.ndim == 0:
        return obj.item()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class _DataLoaderIter:
    """What ``iter(loader)`` returns, as in torch: an iterator with ``len`` (the loader's)."""

    def __init__(self, loader):
        self._loader, self._batches = loader, loader._batches()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._batches)

    def __len__(self):
        return len(self._loader)

    def close(self):
        """Stop early: the loader's worker threads shut down now (a generator's ``close``)."""
        self._batches.close()
