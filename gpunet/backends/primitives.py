"""The one declaration of the backend primitives: each kernel family and what its functions do.

Both backends are built from this table (``bind``): primitive ``p`` of family ``f`` is the
function ``p`` of ``numpy_kernels/f.py`` on the NumPy backend and of ``cuda_kernels/f.py`` on the
cuda backend, so ``ctx.backend.conv2d_fwd`` is read in ``numpy_kernels/conv.py``.  The profiler
times every name here, a test checks that both sides of each pair take the same arguments, and
``python -m gpunet.backends.primitives`` prints the table below for the docs.

Adding a primitive is one line here plus the two kernel functions and their test.

Conventions shared by every primitive: images are NCHW, conv weights ``(C_out, C_in, kH, kW)``;
``stride`` and ``padding`` arrive as checked ``(int, int)`` pairs; ``saved`` values are opaque
(only the backend that made one reads it); max pooling pads with ``-inf`` and on ties picks the
first maximum in row-major window order, as PyTorch does; avg pooling counts padded zeros
(``count_include_pad=True``); optimiser updates work in place.

Example:
    >>> FAMILY_OF["conv2d_fwd"], FAMILY_OF["leaky_relu_bwd"]
    ('conv', 'activation')
    >>> "matmul" in NAMES
    True
"""
from __future__ import annotations

FAMILIES: dict[str, dict[str, str]] = {
    "conv": {
        "conv2d_fwd": "x (N,C,H,W), w (K,C/groups,kH,kW), b (K,) or None -> (y, saved): the "
                      "cross-correlation (taps dilation apart, channels in groups), then max(., 0) "
                      "when relu; saved feeds the backward (None unless keep_cols)",
        "conv2d_bwd_bias_relu": "(g, gb): NCHW gy masked where the fused ReLU's output y <= 0 (when "
                                "relu), in the layout conv2d_bwd_data / _weight read best, and the "
                                "bias gradient",
        "conv2d_bwd_data": "the input gradient, shape x_shape, from NCHW gy or conv2d_bwd_bias_relu's g",
        "conv2d_bwd_weight": "the weight gradient, shape w_shape",
        "conv2d_bwd_bias": "the bias gradient: gy summed over N, H and W",
    },
    "pooling": {
        "max_pool2d_fwd": "(y, saved): window maxima and what the backward needs (None unless keep_argmax)",
        "max_pool2d_bwd": "gy scattered to the arg-max positions saved records, summed where windows overlap",
        "avg_pool2d_fwd": "the mean of each window, padded zeros counted",
        "avg_pool2d_bwd": "gy / (kH*kW) spread over each window",
        "conv2d_relu_max_pool_fwd": "(pooled, cols, saved): max_pool2d(relu(conv2d(x, w, b)), pool) "
                                    "with pool-square windows and stride pool, in one pass",
        "conv2d_relu_max_pool_bwd": "(g, gb): the conv output's gradient (as conv2d_bwd_bias_relu's g) "
                                    "and the bias gradient, from the pooled gradient gp",
    },
    "activation": {
        "relu_fwd": "max(x, 0)",
        "relu_bwd": "gy where the forward output y (>= 0 or NaN) is not 0, else 0",
        "leaky_relu_fwd": "x where x > 0, else negative_slope * x",
        "leaky_relu_bwd": "gy where the forward input x > 0, else negative_slope * gy",
        "bias_relu_fwd": "in place on a C-contiguous (M, F) y: add bias (F,) or None, then max(., 0) "
                         "when relu; returns y (a linear layer's epilogue)",
        "bias_relu_bwd": "(g, gb): (M, F) gy masked where y <= 0 when relu, and its column sums "
                         "(None unless need_bias), in a fixed order",
    },
    "softmax_ce": {
        "softmax_cross_entropy_fwd": "logits (N,C), labels (N,) in [0, C) or ignore_index -> (loss, "
                                     "probs, wsum): per-row (1-e) w_y (lse - x_y) + e/C sum_c w_c "
                                     "(lse - x_c) computed stably (or its sum, or mean over the rows' "
                                     "w_y, reduced in the same pass), the softmax, and wsum = [sum "
                                     "w_y, sum w_c] for the backward",
        "softmax_cross_entropy_bwd": "(1-e) w_y (probs - onehot(labels)) + e/C (W probs - w), times "
                                     "gloss per row or the reduced loss's upstream gradient (the "
                                     "mean's divided by wsum[0]); 0 on ignored rows",
    },
    "optim": {
        "sgd_update": "PyTorch's SGD step in place (buf: the momentum buffer)",
        "adam_update": "Adam (decoupled=False, L2 added to grad) or AdamW in place",
        "sgd_update_many": "sgd_update over lists of same-dtype arrays",
        "adam_update_many": "adam_update over lists of same-dtype arrays sharing one step count",
    },
    "linalg": {
        "matmul": "a @ b with broadcasting over leading axes (BLAS / cuBLAS)",
    },
    "embedding": {
        "embedding_bwd": "the gradient of weight[indices]: gy's rows summed into their table rows, "
                         "deterministically",
    },
    "layer_norm": {
        "layer_norm_fwd": "rows of x (R, D) normalised (biased variance), times weight plus bias "
                          "(D,) or None -> (y, saved)",
        "layer_norm_bwd": "(gx, gweight, gbias) for layer_norm_fwd (the last two None without weight)",
    },
    "batch_norm": {
        "batch_norm_fwd": "x (N, C, ...) normalised per channel with the batch mean and biased "
                          "variance, times weight plus bias (C,) or None, then max(., 0) when "
                          "relu -> (y, mean, var, inv_std)",
        "batch_norm_bwd": "(gx or None unless need_input, gweight, gbias) of batch_norm_fwd from gy, "
                          "x and its mean, inv_std; with y (the fused ReLU's output) gy masked "
                          "where y <= 0 first",
        "batch_norm_relu_max_pool_fwd": "max_pool2d(relu(batch_norm_fwd(x, weight, bias, eps)), "
                                        "pool) with pool-square windows, stride pool; keep_argmax "
                                        "-> (pooled, mean, var, inv_std, saved)",
        "batch_norm_relu_max_pool_bwd": "(gx or None unless need_input, gweight, gbias) of "
                                        "batch_norm_relu_max_pool_fwd from gp, saved, mean, "
                                        "inv_std, weight",
    },
    "recurrent": {
        "lstm_cell_fwd": "one LSTM step from gate pre-activations gi, gh (N, 4H; gates i, f, g, o) "
                         "and c_prev (N, H) -> (hc, saved), hc (N, 2H) = [h | c]",
        "lstm_cell_bwd": "(g_gates, g_c_prev) from ghc (N, 2H) = [dL/dh | dL/dc]",
        "gru_cell_fwd": "one GRU step (gates r, z, n) from gi, gh (N, 3H) and h_prev (N, H) -> (h, saved)",
        "gru_cell_bwd": "(g_gi, g_gh, g_h_prev) of one GRU step from dL/dh (N, H)",
        "rnn_cell_fwd": "one Elman RNN step h = tanh(gi + gh), or max(gi + gh, 0) when relu "
                        "-> (h, saved)",
        "rnn_cell_bwd": "the pre-activation's gradient of one RNN step from dL/dh (N, H)",
    },
}

# Families the backend itself calls (seeded draws, device-side range checks), never an op: their
# functions are mirrored and signature-checked like the primitives but not bound as methods.
SUPPORT_FAMILIES: dict[str, dict[str, str]] = {
    "random": {
        "uniform": "uniform [0, 1) numbers: element i is a hash of (seed, offset + i)",
        "normal": "standard-normal numbers from two counters per element (Box-Muller)",
    },
    "checks": {
        "flag_outside_range": "set flags[slot] to 1 when an element is outside [lo, hi] or NaN",
    },
}

NAMES: tuple[str, ...] = tuple(name for family in FAMILIES.values() for name in family)
FAMILY_OF: dict[str, str] = {name: fam for fam, names in FAMILIES.items() for name in names}


def family_functions(modules, families=FAMILIES):
    """``{name: function}`` for every declared name, read from ``modules[family]``.

    Example:
        >>> import numpy_kernels.conv, numpy_kernels.pooling
        >>> fns = family_functions({"conv": numpy_kernels.conv}, {"conv": FAMILIES["conv"]})
        >>> fns["conv2d_fwd"] is numpy_kernels.conv.conv2d_fwd
        True
    """
    found = {}
    for family, names in families.items():
        module = modules[family]
        for name in names:
            if not callable(getattr(module, name, None)):
                raise TypeError(f"{module.__name__} has no function {name!r}, which "
                                f"gpunet/backends/primitives.py declares in family {family!r}")
            found[name] = getattr(module, name)
    return found


def bind(target, modules) -> None:
    """Make every primitive an attribute of ``target``: a static method on a class, a plain
    function on an instance (the cuda backend binds when it is made, importing its kernels then).

    Example:
        >>> class Table: pass
        >>> import numpy_kernels
        >>> bind(Table, kernel_modules("numpy_kernels"))
        >>> Table.relu_fwd(np.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    for name, fn in family_functions(modules).items():
        setattr(target, name, staticmethod(fn) if isinstance(target, type) else fn)


def kernel_modules(package: str, families=None) -> dict:
    """``{family: module}`` of ``package`` ("numpy_kernels" or "cuda_kernels") for ``families``
    (the primitive and support families by default)."""
    import importlib

    wanted = families if families is not None else {**FAMILIES, **SUPPORT_FAMILIES}
    return {family: importlib.import_module(f"{package}.{family}") for family in wanted}


def table() -> str:
    """The declaration as a Markdown table: family, primitive, contract."""
    rows = ["| family | primitive | contract |", "|---|---|---|"]
    for families in (FAMILIES, SUPPORT_FAMILIES):
        for family, names in families.items():
            rows += [f"| {family} | `{name}` | {contract} |" for name, contract in names.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
