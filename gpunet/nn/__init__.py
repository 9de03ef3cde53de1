"""gpunet.nn: modules, layers, losses and initialisers, as a PyTorch user expects them.

Example:
    >>> from gpunet import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    ...                       nn.Flatten(), nn.Linear(6 * 14 * 14, 10))
    >>> loss = nn.CrossEntropyLoss()(model(x), y)
"""
from . import init, utils
from .activations import ELU, GELU, LeakyReLU
from .attention import MultiheadAttention
from .layers import (AdaptiveAvgPool2d, AvgPool2d, Conv2d, Dropout, Dropout2d, Embedding, Flatten,
                     Identity, Linear, LogSoftmax, MaxPool2d, ReLU, Sigmoid, Softmax, Tanh)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .containers import ModuleDict, ModuleList, Sequential
from .module import IncompatibleKeys, Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from . import parallel
from .parallel import DataParallel
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell
from .sync_batchnorm import SyncBatchNorm
from .upsampling import ConvTranspose2d, Upsample
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)

__all__ = [
    "AdaptiveAvgPool2d", "ELU", "Embedding", "GELU", "LayerNorm", "LeakyReLU", "NLLLoss", "utils",
    "DataParallel", "parallel", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "Identity", "IncompatibleKeys", "L1Loss", "LSTM",
    "Linear", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleList", "Parameter", "RNN",
    "ReLU", "Sequential", "Sigmoid", "Softmax", "SyncBatchNorm", "Tanh", "init",
    "GRU", "GRUCell", "LSTMCell", "functional",
    "Dropout2d", "ModuleDict", "MultiheadAttention", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer", "ConvTranspose2d",
    "Upsample", "modules",
]
from . import functional  # noqa: E402  (PyTorch's nn.functional path)
from . import modules  # noqa: E402  (PyTorch's nn.modules.<file> paths, built from the names above)
