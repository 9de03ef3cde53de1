"""``fit(..., capture=True)``: the training step captured once as a graph and replayed.

The first batch of each ``fit`` call is an eager step (the warm-up: momentum buffers and
Adam's moments exist before the capture); the second is captured, which runs it; every
later batch of the same shape and dtype is copied into the static input tensors and the
graph replayed.  A batch of another shape (the last, smaller one) runs eagerly on the same
weights and optimiser state.  For the graph to follow the schedule and the step count, the
optimiser's ``lr`` becomes a float64 tensor (the same value) and Adam's groups
``capturable``, which computes the same numbers.

Example:
    >>> step = CapturedStep(model, nn.CrossEntropyLoss(), opt)
    >>> out, loss = step(x, y)          # the warm-up step, eager
"""
from __future__ import annotations

from .graphs import CUDAGraph, graph
from .tensor import Tensor


class CapturedStep:
    """A callable ``(x, y) -> (output, loss)`` doing one training step, eager or replayed."""

    def __init__(self, model, loss_fn, optimizer):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.graph = self.static = None
        self.warm = False
        if not getattr(optimizer, "_capture_safe", False):
            raise ValueError(f"fit(capture=True): {type(optimizer).__name__}'s step runs partly on "
                             "the host and cannot be captured; use SGD, Adam or AdamW")
        for group in getattr(optimizer, "param_groups", ()):
            if not isinstance(group["lr"], Tensor):  # the schedule refills it between replays
                group["lr"] = Tensor(float(group["lr"]), dtype="float64",
                                     backend=group["params"][0].backend)  # where the kernels run
            if "capturable" in group:
                group["capturable"] = True

    def _eager(self, x, y):
        out = self.model(x)
        loss = self.loss_fn(out, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return out, loss

    def __call__(self, x, y):
        if not self.warm:
            self.warm = True
            return self._eager(x, y)
        if self.graph is None:
            self.static = (x.detach().clone(), y.detach().clone())
            self.graph = CUDAGraph()
            self.optimizer.zero_grad(set_to_none=True)
            with graph(self.graph):
                out, loss = self._eager(*self.static)
            self.outputs = (out, loss)
            return out, loss
        sx, sy = self.static
        if (x.shape, x.dtype, y.shape, y.dtype) != (sx.shape, sx.dtype, sy.shape, sy.dtype):
            return self._eager(x, y)  # another shape: the graph's buffers cannot hold it
        sx._data[...] = x._data
        sy._data[...] = y._data
        self.graph.replay()
        return self.outputs
