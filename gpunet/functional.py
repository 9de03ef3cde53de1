"""The functions users call: ``F.conv2d``, ``F.relu``, ``F.softmax_cross_entropy``…

Each is written beside its Function in ``gpunet/ops/<family>.py`` (the family names its kernel
files: ``F.max_pool2d`` is in ``ops/pooling.py``, over ``numpy_kernels/pooling.py`` and
``cuda_kernels/pooling.py``); this module only gathers them under PyTorch's names.

Arguments follow PyTorch (NCHW images, linear weight ``(out, in)``). Bad input raises
``ValueError``/``TypeError`` naming the argument, what it got and what it needs.

Example:
    >>> from gpunet import functional as F
    >>> y = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), kernel_size=2)
    >>> y.shape
    gpunet.Size([4, 6, 14, 14])
"""
from __future__ import annotations

from ._arg_checks import REDUCTIONS, _pair, _reduction  # noqa: F401  (nn's layers check with these)
from .ops.activation import (dropout, elu, gelu, leaky_relu, log_softmax, relu, sigmoid,  # noqa: F401
                             softmax, tanh)
from .ops.conv import (conv2d, conv2d_relu, conv2d_relu_max_pool2d, conv_transpose2d, linear,  # noqa: F401
                       linear_relu)
from .ops.embedding import embedding  # noqa: F401
from .ops.indexing import one_hot, pad  # noqa: F401
from .ops.layer_norm import layer_norm  # noqa: F401
from .ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits, l1_loss,  # noqa: F401
                       mse_loss, nll_loss)
from .ops.batch_norm import batch_norm  # noqa: F401
from .ops.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
from .ops.shape import cat, concat, flatten, stack  # noqa: F401
from .ops.softmax_ce import cross_entropy, softmax_cross_entropy  # noqa: F401
from .ops.upsample import interpolate  # noqa: F401
