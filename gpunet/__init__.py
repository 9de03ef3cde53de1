"""gpunet: a small deep-learning library whose models run on NVIDIA GPUs or on NumPy.

Example:
    >>> import gpunet as gn
    >>> from gpunet import functional as F
    >>> gn.set_backend("numpy")
    >>> x = gn.tensor([[1.0, -2.0]], requires_grad=True)
    >>> F.relu(x).sum().backward()
"""
from .backends import (BackendUnavailableError, get_backend, get_num_threads, set_backend,
                       set_num_threads, use_backend)
from .tensor import Tensor
from .tensor_factories import from_dlpack, from_numpy, tensor
from .ops import tensor_methods as _tensor_methods

_tensor_methods.install(Tensor)  # operators and methods: tensor.py itself imports no op
from .function import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .creation import (BoolTensor, ByteTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor, arange, empty, empty_like, full, full_like, ones, ones_like, rand, rand_like,
                       randint, randint_like, randn, randn_like, where, zeros, zeros_like)
from .size import Size
from .functional import cat, stack
from . import autograd, data, datasets, distributed, functional, models, nn, optim, profiler, train
from .backends.device import device
from .dtypes import (bool, double, float, float16, float32, float64, half, int, int8, int16,  # noqa: A004
                     int32, int64, long, short, uint8)
from .tensor_functions import (abs, amax, amin, argmax, argmin, bmm, chunk, clamp, cos, eq, exp,  # noqa: A004
                               flatten, gather, ge, gt, inference_mode, le, log, log_softmax, lt,
                               masked_fill, matmul, max, maximum, mean, min, minimum, multinomial,
                               narrow, ne, numel, pow, randperm, relu, reshape, roll, sigmoid, sin, softmax,
                               sort, split, sqrt, squeeze, sum, tanh, topk, transpose, tril, triu,
                               unsqueeze)
from . import accelerator, cuda, onnx, utils

__version__ = "0.1.0"

from .dtypes import NAMES as _dtypes_names  # noqa: E402
from .tensor_functions import __all__ as _tensor_functions_names  # noqa: E402

__all__ = [
    "arange", "autograd", "cat", "full", "ones", "ones_like", "rand", "randn", "stack", "where", "zeros",
    "zeros_like", "empty", "empty_like", "full_like", "rand_like", "randn_like", "randint", "randint_like", "Size",
    "BoolTensor", "ByteTensor", "DoubleTensor", "FloatTensor", "IntTensor", "LongTensor", "accelerator", "cuda", "device", "utils",
    *_dtypes_names, *_tensor_functions_names,
    "BackendUnavailableError", "Function", "enable_grad", "set_grad_enabled", "GradcheckError", "Tensor", "data", "datasets", "distributed",
    "from_dlpack", "from_numpy", "functional", "get_backend", "get_num_threads", "gradcheck", "is_grad_enabled", "load", "manual_seed", "models", "get_rng_state", "set_rng_state",
    "nn", "no_grad", "onnx", "optim", "profiler", "save", "serialization", "set_backend", "set_num_threads", "tensor", "train", "use_backend",
]
