"""Batch-parallel work for the NumPy kernels: chunks over a small thread pool, per-thread scratch.

NumPy ufuncs, copies and BLAS calls release the GIL, so a kernel that splits its batch into
cache-sized chunks runs them on ``num_threads()`` threads at once.  Inside such a region the
BLAS library is held to one thread (through ``threadpoolctl`` when it is installed; without it
the chunks run one after another in the calling thread), so the two levels of threading never
fight over the cores.  A chunk's result never depends on which thread ran it, and reductions
are summed per chunk in chunk order, so results repeat bit for bit for a given thread count
(``chunk_for`` sizes chunks by the thread count, so another count may round differently).

Example:
    >>> out = np.empty(10)
    >>> parallel_for(10, 4, lambda lo, hi: out.__setitem__(slice(lo, hi), lo))
    >>> out.tolist()
    [0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 8.0, 8.0]
"""
from __future__ import annotations

import itertools
import os
import queue
import threading

import numpy as np

# Smallest working set worth a thread of its own: waking a pool thread and waiting for it
# costs about 0.1 ms (measured on a 2-core VM), the time NumPy needs for a few MB.
MIN_CHUNK_BYTES = 1 << 21

_local = threading.local()
_lock = threading.Lock()
_state = {"threads": None, "team": None, "blas": None, "inside": 0, "saved": None}


def _default_threads() -> int:
    env = os.environ.get("GPUNET_NUM_THREADS", "").strip()
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def num_threads() -> int:
    """Threads the NumPy backend splits a batch over (``GPUNET_NUM_THREADS``, else the cores)."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for batch-parallel kernels (1: everything in the calling thread)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    with _lock:
        _state["threads"] = int(n)
        if _state["team"] is not None:
            _state["team"].retire()
            _state["team"] = None


def _blas_controllers():
    """``(get, set)`` thread-count functions of each BLAS library NumPy loaded, found by
    threadpoolctl; [] when threadpoolctl is not installed (chunks then run serially)."""
    if _state["blas"] is None:
        _state["blas"] = []
        try:
            from threadpoolctl import ThreadpoolController

            for c in ThreadpoolController().lib_controllers:
                if c.user_api == "blas":
                    _state["blas"].append(_raw_thread_setters(c))
        except Exception:  # not installed, or an unknown BLAS: run chunks serially
            _state["blas"] = []
    return _state["blas"]


def _raw_thread_setters(controller):
    """The library's own get/set functions: threadpoolctl's ``set_num_threads`` costs ~5 us
    and obeys only the first Python thread that called it; the C functions cost ~0.3 us."""
    get_fn = lambda: controller.num_threads  # noqa: E731
    set_fn = controller.set_num_threads
    if controller.internal_api == "openblas" and getattr(controller, "threading_layer", "") != "openmp":
        raw_set = getattr(controller, "_get_symbol", lambda name: None)("openblas_set_num_threads")
        raw_get = getattr(controller, "_get_symbol", lambda name: None)("openblas_get_num_threads")
        if raw_set is not None and raw_get is not None:
            get_fn, set_fn = raw_get, raw_set
    return get_fn, set_fn


def can_parallelise() -> bool:
    """True when chunks may run on several threads (more than one, and BLAS can be held to one)."""
    return num_threads() > 1 and bool(_blas_controllers()) and not getattr(_local, "worker", False)


def blas_held() -> bool:
    """True in a thread running a parallel region's chunks, where BLAS is held at one thread
    until the region ends (a BLAS call may go straight in)."""
    return getattr(_local, "worker", False) or getattr(_local, "regions", 0) > 0


class _OneBlasThread:
    """Holds every BLAS library at one thread while any parallel region is running."""

    def __enter__(self):
        with _lock:
            if _state["inside"] == 0:
                _state["saved"] = [get() for get, _ in _blas_controllers()]
                for _, set_threads in _blas_controllers():
                    set_threads(1)
            _state["inside"] += 1

    def __exit__(self, *exc):
        with _lock:
            _state["inside"] -= 1
            if _state["inside"] == 0:
                for (_, set_threads), n in zip(_blas_controllers(), _state["saved"]):
                    set_threads(n)


class _Region:
    """One ``parallel_for`` call: its chunks are claimed one at a time by whichever thread is
    free.  The caller starts at once, so a region that ends before a parked worker wakes
    (waking one costs tens of microseconds on a VM) simply runs in the caller, and the caller
    waits only for chunks a worker actually took."""

    def __init__(self, fn, starts, chunk, n):
        self.fn, self.starts, self.chunk, self.n = fn, starts, chunk, n
        self.claims = itertools.count()  # next() on it is atomic under the GIL
        self.lock = threading.Lock()
        self.active = 0  # chunks running on workers
        self.waiting = False
        self.done = threading.Lock()
        self.done.acquire()
        self.error = None

    def _claim(self):
        i = next(self.claims)
        return self.starts[i] if i < len(self.starts) and self.error is None else None

    def _run(self, lo):
        try:
            self.fn(lo, min(lo + self.chunk, self.n))
        except BaseException as exc:  # re-raised in the caller; the others stop claiming
            if self.error is None:
                self.error = exc

    def work_in_worker(self):
        while True:
            with self.lock:
                lo = self._claim()
                if lo is None:
                    return
                self.active += 1
            self._run(lo)
            with self.lock:
                self.active -= 1
                if self.active == 0 and self.waiting:
                    self.waiting = False
                    self.done.release()

    def work_in_caller(self):
        """Run chunks here until none are left, wait for the workers' last ones, re-raise."""
        lo = self._claim()
        while lo is not None:
            self._run(lo)
            lo = self._claim()
        with self.lock:
            self.waiting = self.active > 0
        if self.waiting:
            self.done.acquire()
        if self.error is not None:
            raise self.error


class _Team:
    """``size`` daemon threads parked on a queue; a region is offered to each of them.

    One caller uses the team at a time; a second concurrent caller runs its chunks itself.
    """

    def __init__(self, size):
        self.busy = threading.Lock()
        self.size = size
        self.offers = queue.SimpleQueue()
        for i in range(size):
            threading.Thread(target=self._serve, daemon=True, name=f"gpunet-numpy-{i}").start()

    def _serve(self):
        _local.worker = True
        while True:
            region = self.offers.get()
            if region is None:  # retired by set_num_threads
                return
            region.work_in_worker()

    def run(self, region, helpers):
        for _ in range(helpers):
            self.offers.put(region)
        region.work_in_caller()

    def retire(self):
        for _ in range(self.size):
            self.offers.put(None)


def _team(threads):
    with _lock:
        if _state["team"] is None:
            _state["team"] = _Team(threads - 1)
        return _state["team"]


def parallel_for(n: int, chunk: int, fn) -> None:
    """Call ``fn(lo, hi)`` for the chunks ``[0, chunk), [chunk, 2*chunk) … n``, on several threads.

    Each free thread takes the next chunk (the caller first); exceptions are re-raised in the
    caller.  BLAS is held to one thread throughout (its own idle workers would spin on the
    cores we use).
    """
    chunk = max(1, int(chunk))
    starts = list(range(0, n, chunk))
    threads = min(num_threads(), len(starts)) if can_parallelise() else 1

    def run_here():
        for lo in starts:
            fn(lo, min(lo + chunk, n))

    if not _blas_controllers() or getattr(_local, "worker", False):
        return run_here()
    with _OneBlasThread():
        _local.regions = getattr(_local, "regions", 0) + 1
        try:
            return _run_region(fn, starts, chunk, n, threads, run_here)
        finally:
            _local.regions -= 1


def _run_region(fn, starts, chunk, n, threads, run_here):
    """The chunks on the team (the caller among them), or all here when it is busy."""
    team = _team(num_threads()) if threads > 1 else None
    if team is None or not team.busy.acquire(blocking=False):
        return run_here()
    try:
        team.run(_Region(fn, starts, chunk, n), threads - 1)
    finally:
        team.busy.release()


def concurrently(*thunks):
    """The results of ``thunks`` as a tuple, each run by whichever thread is free (kernels they
    call run their own chunks serially meanwhile).

    Example:
        >>> concurrently(lambda: 1, lambda: 2)
        (1, 2)
    """
    out = [None] * len(thunks)

    def run(lo, hi):
        for i in range(lo, hi):
            out[i] = thunks[i]()

    parallel_for(len(thunks), 1, run)
    return tuple(out)


def chunk_for(per_item_bytes: int, n: int, target_bytes: int, align: int = 1) -> int:
    """Items per chunk for ``n`` items of ``per_item_bytes`` working set each.

    Chunks hold about ``target_bytes`` (cache-sized where a kernel makes several passes over
    its data; as big as the batch allows where it is made of many small slab operations, each
    a NumPy call under the GIL).  Work is spread over as many threads as get at least
    ``MIN_CHUNK_BYTES`` each (handing work to another thread costs about 0.1 ms), in a
    multiple of that many chunks so the threads finish together.  With ``align``, chunks
    hold a multiple of that many items where the batch allows (for kernels whose rows are a
    chunk long, which vectorise best at whole SIMD widths).
    """
    per_item_bytes, n = max(1, int(per_item_bytes)), max(1, int(n))
    total = n * per_item_bytes
    threads = max(1, min(num_threads(), total // MIN_CHUNK_BYTES))
    chunks = max(threads, -(-total // max(1, int(target_bytes))))
    chunks = min(n, -(-chunks // threads) * threads)
    step = -(-n // chunks)
    return -(-step // align) * align if step >= align else step


def keep_freed_memory() -> None:
    """Ask glibc to reuse freed blocks of up to 256 MB instead of returning them to the OS.

    A training step frees and reallocates the same large arrays every time; by default glibc
    maps them afresh (``mmap``) or trims the heap, and every 4 KB page of the new block then
    costs a page fault (measured: 4,700 faults, a quarter of a batch-256 LeNet step).  With
    these two ``mallopt`` settings the blocks are reused.  Linux with glibc only; set
    ``GPUNET_KEEP_FREED_MEMORY=0`` to leave malloc alone.
    """
    if _state.get("mallopt_done") or os.environ.get("GPUNET_KEEP_FREED_MEMORY", "1") == "0":
        return
    _state["mallopt_done"] = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        libc.mallopt(m_mmap_threshold, 1 << 28)
        libc.mallopt(m_trim_threshold, 1 << 29)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def per_channel(v, s: int) -> np.ndarray:
    """(C,) values -> a C-contiguous (C, s) array, each value repeated ``s`` times: NumPy's
    ufuncs run up to twice as fast against it as against the broadcast (C, 1) view, whose
    inner stride is 0 (float32 (8, 16, 1024) times it: 14 against 23 us; += 8 against 17).

    Example:
        >>> per_channel(np.array([1.0, 2.0]), 3).tolist()
        [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    """
    v = np.asarray(v).reshape(-1, 1)
    return v if s == 1 else np.repeat(v, s, axis=1)


def scratch(tag: str, shape, dtype) -> np.ndarray:
    """A per-thread reusable buffer for temporaries that never leave a kernel call.

    Each thread keeps one growing buffer per ``tag``; the returned array is a view of it, valid
    until the same thread asks for the same tag again.  It never fails for any shape.
    """
    dtype = np.dtype(dtype)
    size = 1
    for s in shape:
        size *= int(s)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get((tag, dtype))
    if buf is None or buf.size < size:
        buf = bufs[(tag, dtype)] = np.empty(max(size, 1), dtype)
    return buf[:size].reshape(shape)


def scratch_kept(tag: str, shape, dtype, key) -> tuple[np.ndarray, bool]:
    """:func:`scratch`, and whether this thread last took the same buffer for the same
    ``shape`` and ``key``: then whatever the caller wrote and did not overwrite since (a
    padded image's border, say) is still there.

    Example:
        >>> buf, kept = scratch_kept("pad", (2, 3), np.float32, 0.0)
        >>> buf[:] = 0.0
        >>> scratch_kept("pad", (2, 3), np.float32, 0.0)[1]
        True
    """
    buf = scratch(tag, shape, dtype)
    marks = getattr(_local, "marks", None)
    if marks is None:
        marks = _local.marks = {}
    mark = (buf.__array_interface__["data"][0], buf.shape, key)
    kept = marks.get((tag, buf.dtype)) == mark
    marks[(tag, buf.dtype)] = mark
    return buf, kept
