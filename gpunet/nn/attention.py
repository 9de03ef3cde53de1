"""Multi-head attention, as PyTorch's ``nn.MultiheadAttention``: the same constructor, parameter
names and shapes (a checkpoint loads key for key), masks and outputs.

It is composed from existing ops (``F.linear``, batched ``@``, ``F.softmax``, ``F.dropout``), so
it runs, and backpropagates, on every backend.  Masks follow PyTorch: a boolean mask is True
where attention is *not* allowed (it becomes -inf), a float mask is added to the scores.  A row
that allows no key at all gives NaN with ``need_weights=True`` and zero weights with
``need_weights=False`` (what the transformer layers use), as PyTorch's two paths do.

Example:
    >>> mha = nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)
    >>> q = gn.randn(3, 5, 8)                               # (batch, target length, embed_dim)
    >>> out, weights = mha(q, q, q)
    >>> tuple(out.shape), tuple(weights.shape)
    ((3, 5, 8), (3, 5, 5))
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..creation import where
from ..ops.shape import concat
from ..tensor import Tensor
from . import init
from .layers import Linear, _empty
from .module import Module


class _ArgumentError(ValueError, AssertionError):
    """A bad argument or shape: a ValueError (gpunet's rule) that is also the AssertionError
    PyTorch raises for it."""


class _MaskShapeError(ValueError, RuntimeError):
    """An attn_mask of the wrong shape: a ValueError that is also PyTorch's RuntimeError."""


def _float_mask(mask, name, ref):
    """PyTorch's ``_canonical_mask``: a bool mask -> 0 / -inf in ``ref``'s dtype; a float one as
    it is (cast to ``ref``'s dtype, still differentiable); other dtypes are refused."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = Tensor(np.asarray(mask), backend=ref.backend)
    if mask.dtype.kind == "b":
        xp = mask.backend.xp
        neg_inf, zero = ref.dtype.type(-np.inf), ref.dtype.type(0)
        return Tensor._wrap(xp.where(mask._data, neg_inf, zero).astype(ref.dtype), mask.backend)
    if mask.dtype.kind != "f":
        raise _ArgumentError(f"only bool and floating types of {name} are supported, got {mask.dtype}")
    return mask if mask.dtype == ref.dtype else mask.to(ref.dtype)


def _zeros(ref, shape):
    return Tensor._wrap(ref.backend.xp.zeros(tuple(shape), dtype=ref.dtype), ref.backend)


def _pad_key(mask):
    """One more allowed key (a 0 column) at the end of the last dim."""
    return None if mask is None else concat([mask, _zeros(mask, mask.shape[:-1] + (1,))], dim=-1)


def _each(fn, query, key, value):
    """``fn`` on query, key and value, keeping which of them are the same tensor."""
    if key is value:
        if query is key:
            query = key = value = fn(query)
            return query, key, value
        query, key = fn(query), fn(key)
        return query, key, key
    return fn(query), fn(key), fn(value)


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's ``_mha_shape_check``: True for batched (3-D) input, False for unbatched (2-D)."""
    if query.ndim not in (2, 3):
        raise _ArgumentError(f"query should be unbatched 2D or batched 3D tensor but received "
                             f"{query.ndim}-D query tensor")
    batched = query.ndim == 3
    kind = "batched (3-D)" if batched else "unbatched (2-D)"
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise _ArgumentError(f"For {kind} `query`, expected `key` and `value` to be {query.ndim}-D "
                             f"but found {key.ndim}-D and {value.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise _ArgumentError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
                             f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor instead")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise _ArgumentError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or "
                                 f"3-D but found {attn_mask.ndim}-D tensor instead")
        want = (num_heads, query.shape[0], key.shape[0])
        if not batched and attn_mask.ndim == 3 and tuple(attn_mask.shape) != want:
            raise _ArgumentError(f"Expected `attn_mask` shape to be {want} but got "
                                 f"{tuple(attn_mask.shape)}")
    return batched


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of ``embed_dim // num_heads`` features each.

    Parameters as PyTorch's: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,), or
    ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim) when
    kdim/vdim differ from E; ``out_proj`` a Linear(E, E); ``bias_k``/``bias_v`` (1, 1, E) with
    ``add_bias_kv``.  Inputs are (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E).

    ``forward`` returns ``(output, weights)``; ``weights`` is (N, L, S) averaged over heads,
    (N, num_heads, L, S) with ``average_attn_weights=False``, or None when ``need_weights=False``.

    Example:
        >>> mha = nn.MultiheadAttention(8, 2)
        >>> q, kv = gn.randn(4, 2, 8), gn.randn(6, 2, 8)        # (L, N, E), (S, N, E)
        >>> pad = gn.tensor([[False] * 5 + [True], [False] * 6])   # True: key not attended
        >>> out, w = mha(q, kv, kv, key_padding_mask=pad)
        >>> tuple(out.shape), tuple(w.shape), float(w[0, :, 5].abs().sum())
        ((4, 2, 8), (2, 4, 6), 0.0)
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"MultiheadAttention: {name} must be an int, got {v!r}")
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise _ArgumentError(f"MultiheadAttention: embed_dim must be divisible by num_heads, "
                                 f"got embed_dim={embed_dim} and num_heads={num_heads}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be a probability in [0, 1), "
                             f"got {dropout!r}")
        super().__init__()
        dtype = np.float32 if dtype is None else dtype
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim = self.embed_dim if kdim is None else int(kdim)
        self.vdim = self.embed_dim if vdim is None else int(vdim)
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.head_dim = self.embed_dim // self.num_heads
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _empty((3 * E, E), dtype, device)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = _empty((E, E), dtype, device)
            self.k_proj_weight = _empty((E, self.kdim), dtype, device)
            self.v_proj_weight = _empty((E, self.vdim), dtype, device)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = _empty((3 * E,), dtype, device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, backend=device)
        if add_bias_kv:
            self.bias_k = _empty((1, 1, E), dtype, device)
            self.bias_v = _empty((1, 1, E), dtype, device)
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = bool(add_zero_attn)
        self._reset_parameters()

    def _reset_parameters(self):
        """PyTorch's initialisation: xavier_uniform_ projections, zero biases, xavier_normal_
        bias_k / bias_v (out_proj.weight keeps Linear's)."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a gpunet Tensor, got "
                                f"{type(t).__name__}")
        key_padding_mask = _float_mask(key_padding_mask, "key_padding_mask", query)
        attn_mask = _float_mask(attn_mask, "attn_mask", query)
        batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, self.num_heads)
        if not batched:
            query, key, value = _each(lambda t: t.unsqueeze(1), query, key, value)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = _each(lambda t: t.transpose(0, 1), query, key, value)
        out, weights = self._attend(query, key, value, key_padding_mask, bool(need_weights),
                                    attn_mask, bool(average_attn_weights), bool(is_causal))
        if not batched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _in_projection(self, query, key, value):
        E, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if not self._qkv_same_embed_dim:
            return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                    F.linear(value, self.v_proj_weight, bv))
        w = self.in_proj_weight
        if key is value and query is key:  # self-attention: one GEMM, as PyTorch
            proj = F.linear(query, w, b)
            return proj[..., :E], proj[..., E:2 * E], proj[..., 2 * E:]
        if key is value:
            kv = F.linear(key, w[E:], None if b is None else b[E:])
            return F.linear(query, w[:E], bq), kv[..., :E], kv[..., E:]
        return (F.linear(query, w[:E], bq), F.linear(key, w[E:2 * E], bk),
                F.linear(value, w[2 * E:], bv))

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal):
        """PyTorch's ``multi_head_attention_forward`` on (L, N, E) query and (S, N, E) key/value."""
        L, N, E = query.shape
        H, hd = self.num_heads, self.head_dim
        if E != self.embed_dim:
            raise _ArgumentError(f"MultiheadAttention: was expecting embedding dimension of "
                                 f"{self.embed_dim}, but got {E}")
        same = self._qkv_same_embed_dim
        if (tuple(key.shape) != tuple(value.shape)) if same else (key.shape[:2] != value.shape[:2]):
            raise _ArgumentError(f"MultiheadAttention: key shape {tuple(key.shape)} does not match "
                                 f"value shape {tuple(value.shape)}")
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                               "Transformer module method `generate_square_subsequent_mask` to "
                               "create this mask.")
        S = key.shape[0]
        if is_causal and key_padding_mask is None and not need_weights:
            # PyTorch hands the hint to scaled_dot_product_attention: a top-left causal mask
            host = np.triu(np.full((L, S), -np.inf, dtype=query.dtype), 1)
            attn_mask = Tensor._wrap(query.backend.asarray(host), query.backend)
        q, k, v = self._in_projection(query, key, value)
        if attn_mask is not None:
            want = (L, S) if attn_mask.ndim == 2 else (N * H, L, S)
            if tuple(attn_mask.shape) != want:
                raise _MaskShapeError(f"The shape of the {attn_mask.ndim}D attn_mask is "
                                      f"{tuple(attn_mask.shape)}, but should be {want}.")
            if attn_mask.ndim == 2:
                attn_mask = attn_mask.unsqueeze(0)
        if self.bias_k is not None:
            k = concat([k, self.bias_k + _zeros(k, (1, N, E))], dim=0)
            v = concat([v, self.bias_v + _zeros(v, (1, N, E))], dim=0)
            attn_mask, key_padding_mask = _pad_key(attn_mask), _pad_key(key_padding_mask)
        q = q.reshape(L, N * H, hd).transpose(0, 1)  # (N*H, L, hd), heads of one sample together
        k = k.reshape(k.shape[0], N * H, hd).transpose(0, 1)
        v = v.reshape(v.shape[0], N * H, hd).transpose(0, 1)
        if self.add_zero_attn:
            k = concat([k, _zeros(k, (N * H, 1, hd))], dim=1)
            v = concat([v, _zeros(v, (N * H, 1, hd))], dim=1)
            attn_mask, key_padding_mask = _pad_key(attn_mask), _pad_key(key_padding_mask)
        S = k.shape[1]
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (N, S):
                raise _ArgumentError(f"MultiheadAttention: expected key_padding_mask of shape "
                                     f"{(N, S)} (batch, source length), got "
                                     f"{tuple(key_padding_mask.shape)}")
            pad = (key_padding_mask.reshape(N, 1, 1, S) + _zeros(q, (1, H, 1, 1))).reshape(N * H, 1, S)
            attn_mask = pad if attn_mask is None else attn_mask + pad
        scores = (q * math.sqrt(1.0 / hd)) @ k.transpose(1, 2)  # (N*H, L, S)
        if attn_mask is not None:
            scores = scores + attn_mask
        dead = None
        if attn_mask is not None and not need_weights:
            # PyTorch's scaled_dot_product_attention: a row that allows no key gets weight 0
            # (not NaN); its scores are zeroed first so that no NaN reaches the backward
            dead = Tensor._wrap(scores._data.max(axis=-1, keepdims=True) == -np.inf, scores.backend)
            scores = where(dead, 0.0, scores)
        weights = F.softmax(scores, dim=-1)
        if dead is not None:
            weights = where(dead, 0.0, weights)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout)
        out = (weights @ v).transpose(0, 1).reshape(L, N, E)
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
        if not need_weights:
            return out, None
        weights = weights.reshape(N, H, L, S)
        return out, (weights.mean(dim=1) if average_attn_weights else weights)

    def extra_repr(self):
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.batch_first:
            s += ", batch_first=True"
        return s
