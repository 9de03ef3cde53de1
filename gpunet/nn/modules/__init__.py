"""PyTorch's module paths for gpunet's layers: ``gpunet.nn.modules.linear.Linear`` is ``nn.Linear``.

Scripts name these paths where they list classes to trust when loading a whole pickled model
(``torch.serialization.safe_globals([torch.nn.modules.linear.Linear, ...])``), so a port that
only changes its imports finds the same classes here.  Each submodule is built from the table
below, which follows ``torch.nn.modules``' own layout.

Example:
    >>> import gpunet.nn.modules.rnn
    >>> gpunet.nn.modules.rnn.LSTM is gpunet.nn.LSTM
    True
"""
from __future__ import annotations

import sys
import types

from ... import nn

_LAYOUT = {
    "activation": ["ELU", "GELU", "LeakyReLU", "LogSoftmax", "MultiheadAttention", "ReLU", "Sigmoid",
                   "Softmax", "Tanh"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"],
    "container": ["ModuleDict", "ModuleList", "Sequential"],
    "conv": ["Conv2d", "ConvTranspose2d"],
    "dropout": ["Dropout", "Dropout2d"],
    "flatten": ["Flatten"],
    "linear": ["Identity", "Linear"],
    "loss": ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"],
    "module": ["Module"],
    "normalization": ["LayerNorm"],
    "pooling": ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"],
    "rnn": ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN"],
    "sparse": ["Embedding"],
    "transformer": ["Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
                    "TransformerEncoderLayer"],
    "upsampling": ["Upsample"],
}


class NonDynamicallyQuantizableLinear(nn.Linear):
    """PyTorch's name for the Linear subclass it uses as MultiheadAttention's ``out_proj``; here a
    plain Linear (gpunet has no dynamic quantization to opt out of)."""


def _submodule(short, names):
    mod = types.ModuleType(f"{__name__}.{short}", f"gpunet's classes at torch.nn.modules.{short}.")
    for name in names:
        setattr(mod, name, getattr(nn, name))
    sys.modules[mod.__name__] = mod
    return mod


for _short, _names in _LAYOUT.items():
    globals()[_short] = _submodule(_short, _names)
linear.NonDynamicallyQuantizableLinear = NonDynamicallyQuantizableLinear  # noqa: F821 - made above
NonDynamicallyQuantizableLinear.__module__ = f"{__name__}.linear"

__all__ = sorted(_LAYOUT)
