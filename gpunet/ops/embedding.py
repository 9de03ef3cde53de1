"""Embedding lookups: rows of a table at integer ids, and the deterministic scatter-add back."""
from __future__ import annotations

from ..function import Function
from .._arg_checks import _tensor
from ..tensor import Tensor


class Embedding(Function):
    """Rows of ``weight`` at integer ``indices``; the backward sums gradients per row through the
    backend's deterministic ``embedding_bwd`` (no atomics, the same order on every backend)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        ctx.save_for_backward(indices)
        ctx.num, ctx.padding_idx = weight.shape[0], padding_idx
        # the ids were range-checked (on a GPU the error surfaces at the next read): clipping
        # keeps an out-of-range id from reading outside the table meanwhile
        return weight[ctx.backend.xp.clip(indices, 0, weight.shape[0] - 1)]

    @staticmethod
    def backward(ctx, gy):
        (indices,) = ctx.saved
        g = ctx.backend.embedding_bwd(gy, indices, ctx.num)
        if ctx.padding_idx is not None:
            g[ctx.padding_idx] = 0  # PyTorch: the padding row gets no gradient
        return (g,)


# --- the functions users call (gpunet.functional re-exports them) ---------------
def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, D) at the integer ids in ``input`` -> input.shape + (D,).

    Example:
        >>> table = gn.randn(10, 4)                       # 10 ids, 4 numbers each
        >>> F.embedding(gn.tensor([[1, 2]]), table).shape
        gpunet.Size([1, 2, 4])
    """
    _tensor("weight", weight, 2)
    ids = input if isinstance(input, Tensor) else Tensor(input, backend=weight.backend)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer ids, got dtype {ids.dtype}")
    weight.backend.check_range(ids._data, 0, weight.shape[0] - 1,
                               f"embedding: ids must be in [0, {weight.shape[0]})")
    return Embedding.apply(weight, indices=ids._data, padding_idx=padding_idx)
