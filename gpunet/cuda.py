"""``gn.cuda``: PyTorch's ``torch.cuda`` questions, answered for gpunet's GPU backend.

``is_available()`` is True only where the ``cuda`` backend runs on a real GPU (Numba's
simulator does not count, as ``auto`` never picks it), so the usual
``device = "cuda" if gn.cuda.is_available() else "cpu"`` chooses what ``auto`` chooses.

Example:
    >>> dev = gn.device("cuda" if gn.cuda.is_available() else "cpu")
    >>> gn.zeros(2, device=dev).device == dev or gn.cuda.is_available()
    True
"""
from __future__ import annotations

from . import backends as _backends
from . import random as _random


def is_available() -> bool:
    """True when the ``cuda`` backend can run here on a real GPU."""
    if _backends.simulator_on():
        return False
    return _backends.cuda_unavailable_reason() is None


def device_count() -> int:
    """The number of GPUs CuPy sees (0 where the ``cuda`` backend cannot run)."""
    if not is_available():
        return 0
    return _backends.backend("cuda").device_count()


def current_device() -> int:
    """The index of the current GPU (CuPy's current device)."""
    if not is_available():
        raise RuntimeError("gn.cuda.current_device(): no GPU here "
                           f"({_backends.cuda_unavailable_reason() or 'the simulator is on'})")
    return _backends.backend("cuda").current_device()


def synchronize() -> None:
    """Wait for the GPU's queued work (a no-op where the cuda backend is not in use)."""
    if is_available():
        _backends.backend("cuda").synchronize()


def manual_seed(seed: int) -> None:
    """Seed every backend's generators, as ``gn.manual_seed`` does (PyTorch seeds the GPU's)."""
    _random.manual_seed(seed)


manual_seed_all = manual_seed
get_rng_state, set_rng_state = _random.get_rng_state, _random.set_rng_state


# --- streams and graphs (PyTorch's names) -------------------------------------------------
from .graphs import CaptureError, CUDAGraph, graph, is_capturing  # noqa: E402
from .graphed_callables import make_graphed_callables  # noqa: E402

is_current_stream_capturing = is_capturing


class Stream:
    """PyTorch's ``torch.cuda.Stream``, for code that warms up on a side stream before a capture.

    gpunet queues all work in one order (the CPU and the simulator run it at once; the cuda
    backend on its one stream), so a Stream orders nothing more: ``wait_stream``,
    ``synchronize`` and ``with gn.cuda.stream(s):`` are accepted and keep that order.

    Example:
        >>> s = gn.cuda.Stream()
        >>> s.wait_stream(gn.cuda.current_stream())
        >>> with gn.cuda.stream(s):
        ...     pass
        >>> s.query()
        True
    """

    def __init__(self, device=None, priority=0):
        self.device, self.priority = device, priority

    def wait_stream(self, stream) -> None:
        """Order this stream after ``stream``'s queued work (already so: one order)."""

    def wait_event(self, event) -> None:
        """Order this stream after ``event`` (already so: one order)."""

    def synchronize(self) -> None:
        """Wait for the work queued so far."""
        synchronize()

    def query(self) -> bool:
        """True when the queued work is done (after a synchronize, always)."""
        synchronize()
        return True

    def __repr__(self):
        return "<gpunet.cuda.Stream (gpunet's one queue)>"


    def record_event(self, event=None):
        """An Event marking the work queued so far (``event`` when given)."""
        event = Event() if event is None else event
        event.record(self)
        return event


class Event:
    """PyTorch's ``torch.cuda.Event``: a mark in the one queue (``elapsed_time`` is not timed
    here: the profiler times kernels, ``gn.profiler.profile()``).

    Example:
        >>> e = gn.cuda.current_stream().record_event()
        >>> e.synchronize(); e.query()
        True
    """

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        self.enable_timing = enable_timing

    def record(self, stream=None) -> None:
        """Mark the work queued so far."""

    def wait(self, stream=None) -> None:
        """Order ``stream`` after this mark (already so: one order)."""

    def synchronize(self) -> None:
        """Wait for the work before the mark."""
        synchronize()

    def query(self) -> bool:
        """True when the work before the mark is done."""
        synchronize()
        return True


_default_stream = Stream()
_streams = [_default_stream]  # the ``with gn.cuda.stream(s):`` blocks entered, innermost last


def current_stream(device=None) -> Stream:
    """The stream of the innermost ``with gn.cuda.stream(s):`` block, else the default one."""
    return _streams[-1]


def default_stream(device=None) -> Stream:
    """The stream work goes to outside any ``with gn.cuda.stream(s):`` block."""
    return _default_stream


class stream:  # noqa: N801 - PyTorch's name
    """``with gn.cuda.stream(s):`` queues the block's work on ``s`` (one order in gpunet)."""

    def __init__(self, stream_):
        self.stream = stream_

    def __enter__(self):
        if self.stream is not None:
            _streams.append(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self.stream is not None:
            _streams.pop()
        return False


def graph_pool_handle():
    """A memory-pool handle to share between captures (accepted; each graph keeps its own)."""
    return object()
