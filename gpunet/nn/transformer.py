"""Transformers, as PyTorch's ``nn.Transformer`` family: TransformerEncoderLayer,
TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and Transformer, with PyTorch's
arguments, defaults, sub-module names (a ``state_dict`` loads key for key) and forward passes.

Masks are PyTorch's: boolean (True = not allowed) or float (added to the attention scores, e.g.
``Transformer.generate_square_subsequent_mask(n)``, 0 on and below the diagonal, -inf above).
gpunet has no nested tensors: PyTorch's inference fast paths are not taken, so padded positions
come out computed (PyTorch's nested-tensor encoder path returns 0 there).

Example:
    >>> layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)
    >>> encoder = nn.TransformerEncoder(layer, num_layers=2)
    >>> src = gn.randn(7, 3, 16)                                  # (S, N, E)
    >>> mask = nn.Transformer.generate_square_subsequent_mask(7)
    >>> tuple(encoder(src, mask=mask).shape)
    (7, 3, 16)
"""
from __future__ import annotations

import copy

import numpy as np

from .. import backends
from .. import functional as F
from ..tensor import Tensor
from . import init
from .activations import GELU
from .attention import MultiheadAttention
from .containers import ModuleList
from .layers import Dropout, Linear, ReLU
from .module import Module
from .normalization import LayerNorm


def _activation(activation):
    """A string ("relu" / "gelu") -> the function; a callable as it is."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    if not callable(activation):
        raise TypeError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


def _relu_or_gelu(activation):
    """PyTorch's ``activation_relu_or_gelu`` flag: 1 relu, 2 gelu, 0 anything else."""
    if activation is F.relu or isinstance(activation, ReLU):
        return 1
    return 2 if activation is F.gelu or isinstance(activation, GELU) else 0


def _clones(module, n):
    """``n`` deep copies of ``module`` in a ModuleList; the copies keep their tensors' backend
    objects (one per process) and get their own arrays."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"num_layers must be a non-negative int, got {n!r}")
    copies = []
    for _ in range(int(n)):
        memo = {}
        for t in module._tensors():
            for u in (t, t.grad):
                if u is not None:
                    memo[id(u.backend)] = u.backend
                    memo[id(u._data)] = u._data.copy()
        copies.append(copy.deepcopy(module, memo))
    return ModuleList(copies)


def _layer_kwargs(dtype, device):
    return dict(dtype=np.float32 if dtype is None else dtype, backend=device)


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and a LayerNorm (after
    each block, or before it with ``norm_first=True``), as PyTorch's.

    Example:
        >>> layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True,
        ...                                    activation="gelu", norm_first=True)
        >>> tuple(layer(gn.randn(2, 5, 16)).shape)
        (2, 5, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=F.relu,
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = _layer_kwargs(dtype, device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        activation = _activation(activation)
        self.activation_relu_or_gelu = _relu_or_gelu(activation)
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's ``memory``, then a feed-forward block, each
    with a residual and a LayerNorm (``norm_first`` as in the encoder layer), as PyTorch's.

    Example:
        >>> layer = nn.TransformerDecoderLayer(16, 4, dim_feedforward=32)
        >>> tgt, memory = gn.randn(5, 2, 16), gn.randn(7, 2, 16)
        >>> mask = nn.Transformer.generate_square_subsequent_mask(5)
        >>> tuple(layer(tgt, memory, tgt_mask=mask).shape)
        (5, 2, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation=F.relu,
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = _layer_kwargs(dtype, device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                            bias=bias, device=device, dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                                 batch_first=batch_first, bias=bias,
                                                 device=device, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                               memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=bool(is_causal), need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal=False):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=bool(is_causal), need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` (in ``layers``, a ModuleList), then
    ``norm`` if given.  ``enable_nested_tensor`` and ``mask_check`` are accepted and stored
    (gpunet has no nested tensors, so ``use_nested_tensor`` is False).

    Example:
        >>> enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32), num_layers=3)
        >>> len(enc.layers), enc.layers[0] is not enc.layers[1]
        (3, True)
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = int(num_layers)
        self.norm = norm
        self.enable_nested_tensor = bool(enable_nested_tensor)
        self.use_nested_tensor = False
        self.mask_check = bool(mask_check)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                           is_causal=bool(is_causal))
        return output if self.norm is None else self.norm(output)


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer`` (in ``layers``), then ``norm`` if given.

    Example:
        >>> dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 32), num_layers=2)
        >>> tuple(dec(gn.randn(5, 2, 16), gn.randn(7, 2, 16)).shape)
        (5, 2, 16)
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return output if self.norm is None else self.norm(output)


class Transformer(Module):
    """The encoder-decoder of "Attention Is All You Need", as PyTorch's ``nn.Transformer``:
    ``encoder`` (a TransformerEncoder with a final LayerNorm) and ``decoder`` (likewise), or
    ``custom_encoder`` / ``custom_decoder``; every weight with more than one dim is then
    re-drawn with ``xavier_uniform_``.

    Example:
        >>> model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1,
        ...                        num_decoder_layers=1, dim_feedforward=32, dropout=0.0)
        >>> src, tgt = gn.randn(6, 2, 16), gn.randn(4, 2, 16)
        >>> tuple(model(src, tgt, tgt_mask=model.generate_square_subsequent_mask(4)).shape)
        (4, 2, 16)
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation=F.relu, custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, device=None, dtype=None):
        super().__init__()
        kw = _layer_kwargs(dtype, device)
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                norm_first, bias, device, dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(*args), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(*args), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self._reset_parameters()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch] != tgt.shape[batch]:
            raise RuntimeError(f"the batch number of src and tgt must be equal, got "
                               f"{src.shape[batch]} and {tgt.shape[batch]}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"the feature number of src and tgt must be equal to d_model "
                               f"({self.d_model}), got {src.shape[-1]} and {tgt.shape[-1]}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """A float (sz, sz) mask: 0 on and below the diagonal, -inf above (no peeking ahead).

        Example:
            >>> nn.Transformer.generate_square_subsequent_mask(3).tolist()
            [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
        """
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        host = np.triu(np.full((int(sz), int(sz)), -np.inf, dtype=dtype), 1)
        be = backends.resolve(device)
        return Tensor._wrap(be.asarray(host), be)

    def _reset_parameters(self):
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
