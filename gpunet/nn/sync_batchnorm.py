"""``nn.SyncBatchNorm``: batch normalisation whose batch statistics span every rank of a
``gn.distributed`` job, as PyTorch's ``SyncBatchNorm``.

In training each rank sums its values per channel; all-reduces give the global mean, then the
global (biased) variance, from the same two-pass formula as BatchNorm, so K ranks at batch B
normalise exactly as one process at batch K*B. The backward all-reduces the two per-channel
sums its formula needs. Eval mode, and a one-process job, behave as ``BatchNorm``.

Example:
    >>> model = nn.SyncBatchNorm.convert_sync_batchnorm(model)    # every BatchNorm*d replaced
    >>> model = gn.distributed.DataParallel(model)
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..ops.batch_norm import _channel_shape, batch_norm_backward, scale_shift, update_running
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _communicator():
    from .. import distributed
    return distributed.get_communicator() if distributed.is_initialized() else None


class _SyncBatchNormOp(Function):
    @staticmethod
    def forward(ctx, x, *affine, eps=1e-5, running=None, comm=None):
        be = ctx.backend
        xp, axes, shape = be.xp, (0,) + tuple(range(2, x.ndim)), _channel_shape(x)
        local = xp.concatenate([x.sum(axis=axes).astype(x.dtype), xp.asarray([x.size // x.shape[1]], x.dtype)])
        comm.allreduce_array(local, be, "sum")
        count = int(round(float(be.to_host(local[-1:])[0])))
        if count <= 1:
            raise ValueError(f"SyncBatchNorm: training needs more than 1 value per channel over all "
                             f"ranks, got {count} (input shape {tuple(x.shape)} here)")
        mean = (local[:-1] / count).reshape(shape)
        centred = x - mean
        sq = (centred * centred).sum(axis=axes)
        comm.allreduce_array(sq, be, "sum")
        var = (sq / count).reshape(shape)  # biased: used to normalise
        inv_std = 1 / xp.sqrt(var + eps)
        xhat = centred * inv_std
        update_running(running, mean, var, count)
        ctx.axes, ctx.count, ctx.comm = axes, count, comm
        ctx.save_for_backward(xhat, inv_std, affine[0] if affine else None)
        return scale_shift(xhat, affine)

    @staticmethod
    def backward(ctx, gy):
        return batch_norm_backward(
            ctx, gy, lambda sums: ctx.comm.allreduce_array(sums, ctx.backend, "sum"))


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) inputs with statistics over the whole job's batch.

    Example:
        >>> bn = nn.SyncBatchNorm(16)     # same arguments as nn.BatchNorm2d
    """

    _ndims, _layout = (2, 3, 4), "2-D (N, C), 3-D (N, C, L) or 4-D (N, C, H, W)"

    def forward(self, x):
        comm = _communicator()
        if not self.training or comm is None or comm.size == 1:
            return super().forward(x)
        self._check_input(x)
        factor, running = self.momentum, None
        if self.track_running_stats:
            count = self.num_batches_tracked._data
            count += 1  # in place: a CUDA-graph capture replays the add on this buffer
            if factor is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
            running = (self.running_mean._data, self.running_var._data, factor)
        affine = [self.weight, self.bias] if self.affine else []
        return _SyncBatchNormOp.apply(x, *affine, eps=self.eps, running=running, comm=comm)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Return ``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm sharing its
        parameters and buffers (``module`` itself when it is a BatchNorm: a new layer).

        Example:
            >>> net = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(4)))
            >>> type(net[0]).__name__
            'SyncBatchNorm'
        """
        if process_group is not None:
            raise NotImplementedError("convert_sync_batchnorm: process groups are not supported; "
                                      "statistics always span every rank (pass process_group=None)")
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls.__new__(cls)
            ref = next(iter(list(module.parameters()) + list(module.buffers())), None)
            _BatchNorm.__init__(out, module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, dtype=np.float32 if ref is None else ref.dtype,
                                backend=None if ref is None else ref.backend)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(out, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if module._buffers.get(name) is not None:
                    out._buffers[name] = module._buffers[name]
            out.training = module.training
            return out
        for name, child in list(module._modules.items()):
            module._modules[name] = cls.convert_sync_batchnorm(child)
        return module

