"""``DataParallel``: the same model on every rank, gradients averaged in buckets after backward.

At construction rank 0's parameters and buffers are broadcast to every rank. Each parameter
gets a post-accumulate-grad hook; when ``backward()`` has filled every gradient of a bucket
(about ``bucket_cap_mb`` of gradients, parameters taken in reverse order, roughly the order
backward produces them), the bucket's gradients are flattened into one array, averaged with
one all-reduce and written back. BatchNorm statistics stay per rank (PyTorch's DDP with
``broadcast_buffers=False``); ``nn.SyncBatchNorm`` shares them.

Example:
    >>> comm = gn.distributed.init()
    >>> ddp = gn.distributed.DataParallel(model)
    >>> opt = optim.SGD(ddp.parameters(), lr=0.1)
    >>> loss_fn(ddp(x), y).backward()          # gradients are now the mean over ranks
    >>> opt.step()
"""
from __future__ import annotations

import contextlib
import numbers

from ..function import is_grad_enabled
from ..nn.module import Module
from ..tensor import Tensor
from .comm import get_communicator, init

__all__ = ["DataParallel"]


class _Bucket:
    def __init__(self, params):
        self.params = params  # [(name, Parameter)]
        self.ready = set()

    def nbytes(self):
        return sum(p._data.nbytes for _, p in self.params)


def _buckets(named_params, cap_bytes):
    """Parameters in reverse order, cut into runs of one backend and dtype of at most cap_bytes."""
    buckets, run, size = [], [], 0
    for name, p in reversed(named_params):
        key = (p.backend, p.dtype)
        if run and (size + p._data.nbytes > cap_bytes or (run[-1][1].backend, run[-1][1].dtype) != key):
            buckets.append(_Bucket(run))
            run, size = [], 0
        run.append((name, p))
        size += p._data.nbytes
    if run:
        buckets.append(_Bucket(run))
    return buckets


class DataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of ``gn.distributed.init()``.

    ``state_dict()`` keys carry the ``module.`` prefix, as PyTorch's DDP; ``.module`` is the
    wrapped model. ``no_sync()`` skips the averaging (gradient accumulation): the next
    synchronised backward averages what has accumulated.

    Example:
        >>> model = DataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
        >>> model.module[0].weight.shape
        gpunet.Size([8, 4])
    """

    def __init__(self, module, comm=None, bucket_cap_mb=25):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be a gpunet nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, numbers.Real) or not bucket_cap_mb > 0:
            raise ValueError(f"DataParallel: bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        self.module = module
        object.__setattr__(self, "comm", comm if comm is not None else init())
        object.__setattr__(self, "_sync", True)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        object.__setattr__(self, "buckets", _buckets(named, int(bucket_cap_mb * 2**20)))
        object.__setattr__(self, "_bucket_of", {})
        object.__setattr__(self, "_handles", [])
        for bucket in self.buckets:
            for _, p in bucket.params:
                self._bucket_of[id(p)] = bucket
                self._handles.append(p.register_post_accumulate_grad_hook(self._grad_ready))
        for t in list(module.parameters()) + list(module.buffers()):
            self.comm.broadcast_array(t._data, t.backend, root=0)

    def forward(self, *args, **kwargs):
        if is_grad_enabled():
            self._check_last_backward()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside this block leave gradients unaveraged (accumulate locally).

        Example:
            >>> ddp = gn.distributed.DataParallel(model)
            >>> with ddp.no_sync():
            ...     loss_fn(ddp(x[:2]), y[:2]).backward()
            >>> loss_fn(ddp(x[2:]), y[2:]).backward()     # averages the sum of both
        """
        object.__setattr__(self, "_sync", False)
        try:
            yield
        finally:
            object.__setattr__(self, "_sync", True)

    def _grad_ready(self, p):
        if not self._sync:
            return
        bucket = self._bucket_of[id(p)]
        bucket.ready.add(id(p))
        if len(bucket.ready) == len(bucket.params):
            self._reduce(bucket)

    def _reduce(self, bucket):
        first = bucket.params[0][1]
        be = first.backend
        grads = [p.grad._data.reshape(-1) for _, p in bucket.params]
        flat = be.xp.concatenate(grads) if len(grads) > 1 else grads[0].copy()
        self.comm.allreduce_array(flat, be, "mean")
        offset = 0
        for _, p in bucket.params:
            n = p._data.size
            p.grad = Tensor._wrap(flat[offset:offset + n].reshape(p._data.shape), be)
            offset += n
        bucket.ready.clear()

    def _check_last_backward(self):
        # NOTE: a bucket left half-filled means some parameter got no gradient while others did;
        # their gradients were not averaged, so the ranks' weights would drift apart silently.
        missing = [name for b in self.buckets if b.ready for name, p in b.params if id(p) not in b.ready][::-1]
        for b in self.buckets:
            b.ready.clear()
        if missing:
            raise RuntimeError(f"DataParallel: the last backward() gave no gradient to {', '.join(missing)} "
                               "while other parameters of its bucket got one, so that bucket was never "
                               "averaged across ranks; every parameter must take part in the loss (or "
                               "freeze unused ones with requires_grad_(False) before wrapping)")

    def extra_repr(self):
        return f"ranks={self.comm.size}, buckets={len(self.buckets)}"
