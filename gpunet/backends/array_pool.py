"""A small pool of reusable NumPy buffers, keyed by shape and dtype.

Large temporaries (im2col columns, padded images) cost page faults every step when they are
allocated afresh.  The pool hands a buffer out again only when nothing else references it: the
pool's own list is then the array's only owner, which ``sys.getrefcount`` sees exactly (every
view of a buffer holds a reference to it through ``.base``, and so does any exported buffer).
A buffer still saved in the autograd graph, or wrapped in a Tensor a user holds, is never reused.

Example:
    >>> pool = ArrayPool()
    >>> a = pool.empty((4, 5), np.float32)
    >>> b = pool.empty((4, 5), np.float32)   # a is alive, so b is another buffer
    >>> a is b
    False
    >>> del a
    >>> pool.empty((4, 5), np.float32) is not None
    True
"""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np


def _free_refcount() -> int:
    """The reference count ``ArrayPool._take`` sees for a buffer nothing else holds."""
    probe = [np.empty(1)]
    for a in probe:
        return sys.getrefcount(a)
    raise AssertionError("unreachable")


class ArrayPool:
    """Reusable buffers of at least ``min_bytes``, at most ``per_key`` per shape, ``max_bytes`` in all.

    Smaller requests get a plain ``np.empty`` (the allocator's own caches serve them well).
    """

    def __init__(self, min_bytes=1 << 18, max_bytes=1 << 29, per_key=3):
        self.min_bytes, self.max_bytes, self.per_key = min_bytes, max_bytes, per_key
        self._bufs: OrderedDict = OrderedDict()  # key -> list of arrays, least recently used first
        self._bytes = 0
        self._lock = threading.Lock()
        self._free_refs = _free_refcount()
        self.hits = self.misses = 0

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous array, reused when a free one of this shape exists.

        Example:
            >>> cols = pool.empty((150, 6400), np.float32)
        """
        shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        nbytes = dtype.itemsize * int(np.prod(shape))
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        key = (shape, dtype.str)
        with self._lock:
            found = self._take(key)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            arr = np.empty(shape, dtype)
            self._add(key, arr, nbytes)
            return arr

    def zeros(self, shape, dtype):
        """Like ``empty`` but filled with zeros."""
        arr = self.empty(shape, dtype)
        arr.fill(0)
        return arr

    def _take(self, key):
        bufs = self._bufs.get(key)
        if not bufs:
            return None
        for a in bufs:
            if sys.getrefcount(a) <= self._free_refs:
                self._bufs.move_to_end(key)
                return a
        return None

    def _add(self, key, arr, nbytes):
        bufs = self._bufs.setdefault(key, [])
        if len(bufs) >= self.per_key or nbytes > self.max_bytes:
            return  # all busy: this one is not pooled, it is simply freed after use
        self._evict(self.max_bytes - nbytes)
        bufs.append(arr)
        self._bufs.move_to_end(key)
        self._bytes += nbytes

    def _evict(self, budget):
        """Drop free buffers, least recently used keys first, until the pool fits ``budget``."""
        for key in list(self._bufs):
            if self._bytes <= budget:
                return
            bufs = self._bufs[key]
            for a in list(bufs):
                if self._bytes <= budget:
                    break
                if sys.getrefcount(a) <= self._free_refs + 1:  # +1: this loop's own `a`
                    bufs.remove(a)
                    self._bytes -= a.nbytes
            if not bufs:
                del self._bufs[key]

    def clear(self) -> None:
        """Forget every pooled buffer (arrays still in use stay valid: they are owned elsewhere)."""
        with self._lock:
            self._bufs.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held by the pool."""
        return self._bytes
