"""Linear and 2-D convolution: GEMM-based, the backend does the heavy lifting.

Both take ``relu=True`` for the layer-then-ReLU pair (``F.linear_relu``, ``F.conv2d_relu``,
and ``nn.Sequential`` when a ReLU module follows the layer): the bias and ReLU are one
epilogue pass after the GEMM, and on the way back one pass masks the gradient and sums the
bias gradient.  The values are those of the layer followed by ``F.relu``, bit for bit.
"""
from __future__ import annotations

from kernel_geometry import out_hw

from ..function import Function, is_grad_enabled
from .._arg_checks import _conv2d_args, _tensor


class Linear(Function):
    """y = x @ W.T + b with W of shape (out, in), as in PyTorch."""

    @staticmethod
    def forward(ctx, x, w, b=None, relu=False):
        be = ctx.backend
        y = be.xp.ascontiguousarray(be.matmul(x, w.T))  # the epilogue works in place on (M, F)
        if b is not None or relu:
            be.bias_relu_fwd(y.reshape(-1, y.shape[-1]), b, relu)
        ctx.save_for_backward(x, w, y if relu else None)
        ctx.relu = relu
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, y = ctx.saved
        be, need = ctx.backend, ctx.needs_input_grad
        need_b = len(need) > 2 and need[2]
        g2, gb = gy.reshape(-1, gy.shape[-1]), None
        if ctx.relu or need_b:
            g2, gb = be.bias_relu_bwd(g2, y.reshape(g2.shape) if ctx.relu else None, ctx.relu, need_b)
        gx = be.matmul(g2, w).reshape(x.shape) if need[0] else None
        gw = be.matmul(g2.T, x.reshape(-1, x.shape[-1])) if need[1] else None
        return gx, gw, gb


class Conv2d(Function):
    """Cross-correlation of x (N,C,H,W) with w (K,C,kH,kW), plus bias b (K,)."""

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                relu=False):
        keep = is_grad_enabled() and ctx.needs_input_grad[1]  # columns feed the weight grad
        ctx.extra = {} if (dilation, groups) == ((1, 1), 1) else {"dilation": dilation, "groups": groups}
        y, saved = ctx.backend.conv2d_fwd(x, w, b, stride, padding, keep_cols=keep, relu=relu,
                                          **ctx.extra)
        ctx.save_for_backward(x, w, saved, y if relu else None)
        ctx.stride, ctx.padding, ctx.relu = stride, padding, relu
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, saved, y = ctx.saved
        be, need = ctx.backend, ctx.needs_input_grad
        need_b = len(need) > 2 and need[2]
        # g: gy masked by the ReLU, in the layout the backend's two GEMMs read; gb: bias grad
        g, gb = be.conv2d_bwd_bias_relu(gy, y, ctx.relu, need_b, need[0] or need[1])
        gx, gw = _input_and_weight_grads(be, need, g, x, w, (ctx.stride, ctx.padding, saved), ctx.extra)
        return gx, gw, gb


class Conv2dReLUMaxPool(Function):
    """max_pool2d(relu(conv2d(x, w, b)), pool) for a plain conv (no groups or dilation) and a
    pool of ``pool``-square windows with stride ``pool``: the values of the three ops, and the
    gradients up to the summation order of the bias gradient (the NumPy backend pools each
    chunk while it is in cache and applies the ReLU's mask at the pooled size)."""

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), pool=2):
        need = ctx.needs_input_grad
        grads = is_grad_enabled() and any(need)
        pooled, cols, saved = ctx.backend.conv2d_relu_max_pool_fwd(
            x, w, b, stride, padding, pool, keep_cols=grads and need[1], keep_argmax=grads)
        ctx.save_for_backward(x, w, cols, saved)
        ctx.stride, ctx.padding = stride, padding
        return pooled

    @staticmethod
    def backward(ctx, gp):
        x, w, cols, saved = ctx.saved
        be, need = ctx.backend, ctx.needs_input_grad
        g, gb = be.conv2d_relu_max_pool_bwd(gp, saved, len(need) > 2 and need[2], need[0] or need[1])
        gx, gw = _input_and_weight_grads(be, need, g, x, w, (ctx.stride, ctx.padding, cols), {})
        return gx, gw, gb


def _input_and_weight_grads(be, need, g, x, w, args, extra):
    """The conv's input and weight gradients (None where not needed): two independent GEMM
    pipelines, which the backend may run at once."""
    data = (lambda: be.conv2d_bwd_data(g, w, x.shape, *args, **extra)) if need[0] else None
    weight = (lambda: be.conv2d_bwd_weight(g, x, w.shape, *args, **extra)) if need[1] else None
    if data and weight:
        return be.concurrently(data, weight)
    return (data() if data else None), (weight() if weight else None)


# --- the functions users call (gpunet.functional re-exports them) ---------------
def linear(x, weight, bias=None, *, _relu=False):
    """x @ weight.T + bias, weight of shape (out_features, in_features).

    Example:
        >>> x, w, b = gn.randn(4, 784), gn.randn(10, 784), gn.zeros(10)
        >>> F.linear(x, w, b).shape
        gpunet.Size([4, 10])
    """
    _tensor("x", x)
    _tensor("weight", weight, 2)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1] if x.ndim else 0} features (shape {tuple(x.shape)}) "
                         f"but weight (out, in) = {tuple(weight.shape)} expects {weight.shape[1]}")
    if bias is not None and _tensor("bias", bias, 1).shape[0] != weight.shape[0]:
        raise ValueError(f"linear: bias has shape {tuple(bias.shape)}, needs ({weight.shape[0]},)")
    return Linear.apply(x, weight, *([bias] if bias is not None else []), relu=_relu)


def linear_relu(x, weight, bias=None):
    """``relu(linear(x, weight, bias))`` with the bias and ReLU fused into one pass after the
    GEMM (and one pass back): the same values, fewer memory passes and kernel launches.

    Example:
        >>> x, w, b = gn.randn(4, 784), gn.randn(10, 784), gn.zeros(10)
        >>> bool((F.linear_relu(x, w, b) == F.relu(F.linear(x, w, b))).all())
        True
    """
    return linear(x, weight, bias, _relu=True)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, _relu=False):
    """2-D cross-correlation: x (N,C,H,W), weight (K,C/groups,kH,kW), bias (K,) -> (N,K,Ho,Wo).

    ``dilation`` spaces the kernel taps; ``groups`` splits the channels into independent
    convolutions (``groups=C`` with K = C is a depthwise convolution), as in PyTorch.

    Example:
        >>> y = F.conv2d(x, w, b, stride=1, padding=2)
    """
    stride, padding, dilation = _conv2d_args(x, weight, bias, stride, padding, dilation, groups)
    extra = [bias] if bias is not None else []
    return Conv2d.apply(x, weight, *extra, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, relu=_relu)


def conv2d_relu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv2d(...))`` with the bias and ReLU fused into the conv's output pass (and the
    ReLU's backward into the bias-gradient pass): the same values, fewer passes and launches.

    Example:
        >>> y = F.conv2d_relu(x, w, b, padding=2)  # == F.relu(F.conv2d(x, w, b, padding=2))
    """
    return conv2d(x, weight, bias, stride, padding, dilation, groups, _relu=True)


def conv2d_relu_max_pool2d(x, weight, bias=None, stride=1, padding=0, pool=2):
    """``max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool)`` as one op (a plain
    conv; pool windows ``pool`` square with stride ``pool``): the same values, and on the NumPy
    backend the pooling runs on each chunk of the conv's output while it is in cache.

    Example:
        >>> y = F.conv2d_relu_max_pool2d(x, w, b, padding=2)  # LeNet's first block
    """
    stride, padding, _ = _conv2d_args(x, weight, bias, stride, padding, 1, 1)
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f"conv2d_relu_max_pool2d: pool must be an int >= 1, got {pool!r}")
    conv_hw = out_hw(x.shape, weight.shape[2:], stride, padding)
    if min(conv_hw) < pool:
        raise ValueError(f"conv2d_relu_max_pool2d: the conv's output {conv_hw} is smaller than "
                         f"the pool window {pool}x{pool}")
    extra = [bias] if bias is not None else []
    return Conv2dReLUMaxPool.apply(x, weight, *extra, stride=stride, padding=padding, pool=pool)
