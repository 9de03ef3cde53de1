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

# PyTorch modules and functions gpunet does not have: a script that reaches one is told what
# to do instead, not only that the name is missing (hasattr still answers False).
_MISSING_FROM_PYTORCH = {
    "compile": "gpunet has no compiler behind torch.compile: call the model itself (its fused "
               "kernels already run eagerly); to replay a whole step with no per-op host cost, "
               "use gn.cuda.make_graphed_callables or gn.train.fit(..., capture=True)",
    "jit": "gpunet has no TorchScript (torch.jit): run the model as Python, or write a portable "
           "file with gn.onnx.export(model, args, f)",
    "fx": "gpunet has no torch.fx graph tracing: gn.onnx.export(model, args, f) traces a model "
          "into an ONNX graph",
    "export": "gpunet has no torch.export: gn.onnx.export(model, args, f) writes a portable "
              "ONNX file",
    "amp": "gpunet has no automatic mixed precision (torch.amp's autocast and GradScaler): train "
           "in float32, the default; drop the autocast block, and write loss.backward() and "
           "optimizer.step() for scaler.scale(loss).backward() and scaler.step(optimizer)",
    "fft": "gpunet has no torch.fft: transform t.numpy() with numpy.fft (outside autograd)",
    "linalg": "gpunet has no torch.linalg: use gn.matmul / Tensor @ for products, or numpy.linalg "
              "on t.numpy() (outside autograd)",
    "sparse": "gpunet has no sparse tensors (torch.sparse): use dense tensors",
}


def __getattr__(name):
    if name in _MISSING_FROM_PYTORCH:
        raise AttributeError(f"module 'gpunet' has no attribute {name!r}: {_MISSING_FROM_PYTORCH[name]}")
    raise AttributeError(f"module 'gpunet' has no attribute {name!r}")
