"""Linear and 2-D convolution: GEMM-based, the backend does the heavy lifting.

Both take ``relu=True`` for the layer-then-ReLU pair (``F.linear_relu``, ``F.conv2d_relu``,
and ``nn.Sequential`` when a ReLU module follows the layer): the bias and ReLU are one
epilogue pass after the GEMM, and on the way back one pass masks the gradient and sums the
bias gradient.  The values are those of the layer followed by ``F.relu``, bit for bit.
"""
from __future__ import annotations

from kernel_geometry import out_hw, transposed_out_size

from ..function import Function, is_grad_enabled
from .._arg_checks import _conv2d_args, _pair, _tensor


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


# Below this many multiply-adds in the weight gradient, the two gradients run in turn: handing
# one to another thread costs more than it saves.  LeNet-5 steps, 2-core AMD EPYC, medians of
# 15 alternating rounds, this threshold against always two threads: batch 16 1.43 against
# 1.58 ms, batch 32 2.54 against 2.69, batch 64 3.88 against 3.97.
# A strided conv's two gradients always run in turn: its input gradient is a scatter more than
# a GEMM and gains more from two threads of its own (ResNet-8's stride-2 3x3 convs, 64 images,
# 2 threads, in turn against at once: 16 -> 32 channels 2.61 against 3.69 ms, 32 -> 64 1.60
# against 1.69).
CONCURRENT_MIN_MACS = 1 << 22


def _input_and_weight_grads(be, need, g, x, w, args, extra):
    """The conv's input and weight gradients (None where not needed): two independent GEMM
    pipelines, which the backend may run at once."""
    data = (lambda: be.conv2d_bwd_data(g, w, x.shape, *args, **extra)) if need[0] else None
    weight = (lambda: be.conv2d_bwd_weight(g, x, w.shape, *args, **extra)) if need[1] else None
    unit_stride = tuple(args[0]) == (1, 1)
    if data and weight and unit_stride and g.size * (w.size // w.shape[0]) >= CONCURRENT_MIN_MACS:
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


class ConvTranspose2d(Function):
    """The transpose of conv2d (x (N,C_in,H,W), w (C_in, C_out/groups, kH, kW)): the conv's
    input-gradient primitive forward, the conv itself for the input gradient, and the conv's
    weight gradient with the roles of input and output swapped, on every backend's kernels.

    When an output padding reaches the stride (PyTorch allows it below the dilation), the
    output is no conv's input shape: then the unpadded "full" output is computed and cut (or
    zero-extended) to size, and the backward embeds gy back into the full shape."""

    @staticmethod
    def forward(ctx, x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                output_padding=(0, 0), out_shape=None):
        be = ctx.backend
        ctx.extra = {} if (dilation, groups) == ((1, 1), 1) else {"dilation": dilation, "groups": groups}
        ctx.save_for_backward(x, w)
        ctx.cut = None
        if all(op < s for op, s in zip(output_padding, stride)):
            ctx.args = (stride, padding)
            y = be.conv2d_bwd_data(x, w, out_shape, stride, padding, **ctx.extra)
        else:
            full = tuple(transposed_out_size(n, k, s, 0, d) for n, k, s, d in
                         zip(x.shape[2:], w.shape[2:], stride, dilation))
            ctx.args, ctx.full = (stride, (0, 0)), out_shape[:2] + full
            ctx.cut = (Ellipsis,) + tuple(slice(p, min(p + o, f)) for p, o, f in
                                          zip(padding, out_shape[2:], full))
            ctx.kept = (Ellipsis,) + tuple(slice(0, c.stop - c.start) for c in ctx.cut[1:])
            y = be.xp.zeros(out_shape, dtype=x.dtype)
            y[ctx.kept] = be.conv2d_bwd_data(x, w, ctx.full, stride, (0, 0), **ctx.extra)[ctx.cut]
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved
        be, need = ctx.backend, ctx.needs_input_grad
        gb = be.conv2d_bwd_bias(gy) if len(need) > 2 and need[2] else None
        if ctx.cut is not None:  # gy of the cut output, embedded into the full output's shape
            g_full = be.xp.zeros(ctx.full, dtype=gy.dtype)
            g_full[ctx.cut] = gy[ctx.kept]
            gy = g_full
        gy = be.xp.ascontiguousarray(gy)
        gx = be.conv2d_fwd(gy, w, None, *ctx.args, keep_cols=False, **ctx.extra)[0] if need[0] else None
        gw = be.conv2d_bwd_weight(x, gy, w.shape, *ctx.args, **ctx.extra) if need[1] else None
        return gx, gw, gb


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution ("deconvolution"), as ``F.conv_transpose2d``: input
    (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) -> (N, C_out, Ho, Wo) with
    Ho = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1.

    Example:
        >>> F.conv_transpose2d(gn.ones(1, 2, 3, 3), gn.ones(2, 4, 2, 2), stride=2).shape
        gpunet.Size([1, 4, 6, 6])
    """
    _tensor("input", input, 4)
    _tensor("weight", weight, 4)
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    dilation, output_padding = _pair("dilation", dilation, 1), _pair("output_padding", output_padding, 0)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or input.shape[1] % groups:
        raise ValueError(f"conv_transpose2d: groups must be an int >= 1 dividing the input channels "
                         f"({input.shape[1]}), got {groups!r}")
    if input.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose2d: input has {input.shape[1]} channels (shape "
                         f"{tuple(input.shape)}) but weight {tuple(weight.shape)} expects {weight.shape[0]}")
    if input.dtype != weight.dtype:
        raise TypeError(f"conv_transpose2d: input is {input.dtype} but weight is {weight.dtype}; they must match")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"conv_transpose2d: output padding must be smaller than either stride or "
                             f"dilation, but got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    k_out = weight.shape[1] * groups
    if bias is not None and _tensor("bias", bias, 1).shape != (k_out,):
        raise ValueError(f"conv_transpose2d: bias has shape {tuple(bias.shape)}, needs ({k_out},)")
    hw = [transposed_out_size(n, k, s, p, d, op) for n, k, s, p, d, op in
          zip(input.shape[2:], weight.shape[2:], stride, padding, dilation, output_padding)]
    if min(hw) < 1:
        raise ValueError(f"conv_transpose2d: the output size {tuple(hw)} is too small (input "
                         f"{tuple(input.shape)}, stride {stride}, padding {padding})")
    extra = [bias] if bias is not None else []
    return ConvTranspose2d.apply(input, weight, *extra, stride=stride, padding=padding,
                                 dilation=dilation, groups=groups, output_padding=output_padding,
                                 out_shape=(input.shape[0], k_out, hw[0], hw[1]))
