"""Capture once, replay many times: PyTorch's CUDA-graph contract on the NumPy backend and
in Numba's simulator.

``with gn.cuda.graph(g): ...`` runs its block once, eagerly, and records every array
operation it does: each backend primitive (conv, pooling, GEMM, optimiser update, ...), each
NumPy call and operator on the region's arrays, each random draw and each device-side check,
with the buffers it read and wrote.  ``g.replay()`` runs exactly that sequence again on the
same buffers, without the Python code that produced it: host values (a Python ``if``, a
learning rate read as a float, a shape) are frozen at capture, as in a CUDA graph.

PyTorch's rules hold: warm up before capturing (optimiser state exists, so its first-step
branch is not captured), read inputs from static tensors filled with ``copy_()`` between
replays, read outputs from the tensors the capture produced, and read nothing back to the
host inside the region (a value read raises here, as it breaks a capture on a GPU).

Example:
    >>> w = gn.ones(3, requires_grad=True)
    >>> x = gn.zeros(3)
    >>> g = gn.cuda.CUDAGraph()
    >>> with gn.cuda.graph(g):
    ...     y = (w * x).sum()
    >>> _ = x.copy_(gn.tensor([1.0, 2.0, 3.0]))
    >>> g.replay()
    >>> y.item()
    6.0
"""
from __future__ import annotations

import gc

from . import graph_capture
from .graph_capture import CaptureError, is_capturing  # noqa: F401  (gn.cuda's names)


class CUDAGraph:
    """A captured sequence of array operations (PyTorch's ``torch.cuda.CUDAGraph``).

    Capture with ``with gn.cuda.graph(g):`` (or ``capture_begin()`` / ``capture_end()``),
    then ``replay()``.  On the NumPy backend and in Numba's simulator the sequence is replayed
    from the host; the buffers it reads and writes are those of the capture, kept alive by the
    graph (its private memory pool) until ``reset()``.

    Example:
        >>> g = gn.cuda.CUDAGraph()
        >>> x = gn.ones(2)
        >>> with gn.cuda.graph(g):
        ...     y = x * 2
        >>> _ = x.fill_(5.0); g.replay(); y.tolist()
        [10.0, 10.0]
    """

    def __init__(self, keep_graph=False):
        self._tape, self._recorder, self._watched, self._guards = None, None, [], []

    def capture_begin(self, pool=None, capture_error_mode="global"):
        """Start recording on every backend in use (``pool`` is accepted; each graph's buffers
        are its own here)."""
        from . import backends

        backends.get_backend()  # the current one exists, with every backend made so far
        if self._tape is not None:
            raise CaptureError("CUDAGraph.capture_begin: this graph holds a capture; reset() it "
                               "first or make a new CUDAGraph")
        gc.collect()  # as torch.cuda.graph does: tensors already dead are not inputs
        self._recorder = graph_capture.begin(graph_capture._Recorder(backends._instances.values()))

    def capture_end(self):
        """Stop recording; the graph is ready to ``replay()``."""
        if self._recorder is None:
            raise CaptureError("CUDAGraph.capture_end: capture_begin() was not called")
        rec, self._recorder = self._recorder, None
        self._tape = graph_capture.end()
        read = graph_capture.read_by(self._tape)
        self._guards = rec.guards
        self._watched = [(t, buf) for t, buf, _ in rec.inputs
                         if id(buf) in read or (buf.base is not None and id(buf.base) in read)]

    def replay(self):
        """Run the captured operations again on their buffers.

        Raises ``ValueError`` when a tensor the graph reads no longer holds its captured
        buffer (its ``.data`` was replaced, say with another shape): fill it with ``copy_()``.
        """
        if self._tape is None:
            raise CaptureError("CUDAGraph.replay: nothing captured (use `with gn.cuda.graph(g):`)")
        for t, buf in self._watched:
            if t._data is not buf:
                raise ValueError(
                    f"CUDAGraph.replay: a tensor the graph reads (captured as {tuple(buf.shape)} "
                    f"{buf.dtype}) now holds a different array ({tuple(t._data.shape)} {t._data.dtype});"
                    " a graph replays its captured buffers: fill them with .copy_(new_values)")
        for guard in self._guards:  # host values the capture froze (a number lr, say)
            guard()
        graph_capture.replay(self._tape)

    def reset(self):
        """Drop the capture (and the buffers only it holds)."""
        self._tape, self._watched, self._guards = None, [], []

    def pool(self):
        """A handle for ``graph(..., pool=)`` (accepted for PyTorch's code; unused here)."""
        return id(self)

    def __len__(self):
        return 0 if self._tape is None else len(self._tape)

    def __repr__(self):
        return f"<gpunet CUDAGraph: {len(self)} recorded operations>"


class graph:  # noqa: N801 - PyTorch's name
    """``with gn.cuda.graph(g):`` captures its block into the CUDAGraph ``g`` (PyTorch's
    ``torch.cuda.graph``; ``pool``, ``stream`` and ``capture_error_mode`` are accepted).

    Example:
        >>> g = gn.cuda.CUDAGraph()
        >>> with gn.cuda.graph(g):
        ...     pass
        >>> len(g)
        0
    """

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="global"):
        if not isinstance(cuda_graph, CUDAGraph):
            raise TypeError(f"gn.cuda.graph: expected a gn.cuda.CUDAGraph, got {type(cuda_graph).__name__}")
        self.cuda_graph = cuda_graph

    def __enter__(self):
        self.cuda_graph.capture_begin()  # returns None, as torch.cuda.graph's __enter__

    def __exit__(self, *exc):
        self.cuda_graph.capture_end()
        if exc[0] is not None:
            self.cuda_graph.reset()
