"""The Backend protocol: the one seam between model code and array code.

Model code (Tensor, ops, nn, optim, train) never calls NumPy or CuPy for math
directly: it asks ``tensor.backend``.  A backend offers an array module ``xp``
for plain array code written once, host <-> device transfers, and the
primitive kernels below, forward and backward side by side.

Conventions shared by every backend:

* images are NCHW, conv weights ``(C_out, C_in, kH, kW)``;
* ``stride`` and ``padding`` arrive as ``(int, int)`` pairs, already checked;
* ``saved`` / ``argmax`` values are opaque: only the same backend reads them;
* max pooling pads with ``-inf`` and, on ties, picks the first maximum in
  row-major window order (as PyTorch does), so all backends route a tied
  gradient to the same element;
* avg pooling counts padded zeros in the divisor (PyTorch's default
  ``count_include_pad=True``);
* optimiser updates work in place on the parameter and state arrays.
"""
from __future__ import annotations

import abc
import math
import os
import threading

import numpy as np

_RNG_LOCK = threading.Lock()


def simulator_on() -> bool:
    """The one rule for "is Numba's CUDA simulator on": ``NUMBA_ENABLE_CUDASIM`` set to
    anything but empty or 0 (Numba's own reading of it).

    Example:
        >>> isinstance(simulator_on(), bool)
        True
    """
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


class Backend(abc.ABC):
    """What every backend provides.

    Example:
        >>> import gpunet as gn
        >>> be = gn.get_backend()
        >>> be.name in ("numpy", "cuda")
        True
    """

    name: str = "abstract"
    xp = None  # the array module: numpy or cupy
    # True where softmax_cross_entropy_fwd flags out-of-range labels itself (reported at the
    # next value read), so functional need not read the labels back every step.
    checks_labels_on_device: bool = False
    # True where reading a value back costs no synchronisation (the CPU): training loops then
    # check each step's loss before the update instead of with the progress bar.
    reads_are_free: bool = True

    # --- arrays and transfers -------------------------------------------------
    @abc.abstractmethod
    def asarray(self, data, dtype=None):
        """Host data (NumPy array, list, scalar) -> an array of this backend."""

    @abc.abstractmethod
    def to_host(self, array):
        """An array of this backend -> a NumPy array in host memory."""

    def is_array(self, obj) -> bool:
        """True when ``obj`` is an array of this backend."""
        return isinstance(obj, self.xp.ndarray)

    def errstate(self, **settings):
        """A context that sets NumPy's floating-point error handling (``divide="ignore"``, ...)
        for this backend's host arithmetic; a no-op where arrays live on a GPU.

        Example:
            >>> with gn.get_backend().errstate(divide="ignore"):
            ...     pass
        """
        return np.errstate(**settings)

    def timer(self):
        """A device timer ``(start, stop) -> seconds`` for work queued between the two calls,
        or None where host time is device time (the CPU, the simulator).

        Example:
            >>> gn.backends.backend("numpy").timer() is None
            True
        """
        return None

    def matmul(self, a, b):
        """Matrix product with broadcasting over leading axes (BLAS / cuBLAS)."""
        return self.xp.matmul(a, b)

    def erf(self, array):
        """The error function, elementwise (``math.erf`` on the host; backends may do better)."""
        host = self.to_host(array)
        out = np.frompyfunc(math.erf, 1, 1)(host).astype(host.dtype)
        return self.asarray(out)

    def concurrently(self, *thunks):
        """The results of ``thunks`` (independent pieces of work) as a tuple.  Here they run
        in turn; the NumPy backend runs them on its threads at once.

        Example:
            >>> import gpunet as gn
            >>> gn.get_backend().concurrently(lambda: 1, lambda: 2)
            (1, 2)
        """
        return tuple(thunk() for thunk in thunks)

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""

    def check_range(self, array, lo, hi, what, hint=""):
        """Raise ``ValueError`` when an element of ``array`` is outside ``[lo, hi]`` (or NaN).

        The message is ``"{what}, got values in [min, max]{hint}"``.  This version reads two
        numbers back at once; the cuda backend flags the error on the device instead and
        raises it at the next value read, so a training step does not wait for the check.

        Example:
            >>> be = gn.get_backend()
            >>> be.check_range(be.asarray([0.2, 1.5]), 0, 1, "p must be in [0, 1]")
            Traceback (most recent call last):
            ValueError: p must be in [0, 1], got values in [0.2, 1.5]
        """
        if array.size == 0:
            return
        lo_seen, hi_seen = float(array.min()), float(array.max())
        if not (lo_seen >= lo and hi_seen <= hi):
            raise ValueError(f"{what}, got values in [{lo_seen:g}, {hi_seen:g}]{hint}")

    # --- random numbers (seeded by gpunet.manual_seed) -------------------------
    # Both backends use a counter-based generator (``<kernels>/random.py``): element i of a draw
    # is a hash of (seed, offset + i), so the whole state is two integers that a checkpoint
    # restores exactly, and both backends draw the same uniforms bit for bit.
    random_kernels = None  # the family module with uniform/normal(shape, dtype, seed, offset)

    def seed(self, seed) -> None:
        """Reseed this backend's random generator (None: a fresh seed from the OS)."""
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        self._seed, self._offset = int(seed), 0

    def rng_state(self):
        """The generator's state as plain data for a checkpoint: ``{"seed": s, "offset": o}``."""
        return {"seed": self._seed, "offset": self._offset}

    def set_rng_state(self, state) -> None:
        """Restore a state from ``rng_state()`` (ignored when None)."""
        if state is None:
            return
        if not (isinstance(state, dict) and {"seed", "offset"} <= set(state)):
            raise ValueError(f"set_rng_state: expected {{'seed': int, 'offset': int}} from "
                             f"rng_state(), got {type(state).__name__} {str(state)[:80]}")
        self._seed, self._offset = int(state["seed"]), int(state["offset"])

    def _draw(self, sample, shape, dtype, counters_per_item):
        count = 1
        for s in shape:
            count *= int(s)
        with _RNG_LOCK:  # two threads drawing at once get disjoint counters
            seed, offset = self._seed, self._offset
            self._offset += counters_per_item * count
        return sample(tuple(shape), dtype, seed, offset)

    def rand(self, shape, dtype):
        """Uniform [0, 1) samples of ``shape`` and ``dtype``."""
        return self._draw(self.random_kernels.uniform, shape, dtype, 1)

    def randn(self, shape, dtype):
        """Standard-normal samples of ``shape`` and ``dtype``."""
        return self._draw(self.random_kernels.normal, shape, dtype, 2)

    # --- conv2d ---------------------------------------------------------------
    @abc.abstractmethod
    def conv2d_fwd(self, x, w, b, stride, padding, keep_cols=True, dilation=(1, 1), groups=1,
                   relu=False):
        """Cross-correlation. x (N,C,H,W), w (K,C/groups,kH,kW), b (K,) or None; taps
        ``dilation`` apart; channels split into ``groups`` independent convolutions; then
        max(., 0) when ``relu`` (fused into the pass that adds the bias).

        Returns ``(y, saved)``: y (N,K,Ho,Wo) and whatever the backward passes reuse
        (None when ``keep_cols`` is False: no weight gradient will be asked for).
        """

    @abc.abstractmethod
    def conv2d_bwd_bias_relu(self, gy, y=None, relu=False, need_bias=True, write_g=True):
        """``(g, gb)``: NCHW ``gy`` masked where the fused ReLU's output ``y`` <= 0 (only when
        ``relu``), in whatever layout this backend's conv2d_bwd_data / _weight read best
        (None unless ``write_g``), and the bias gradient (None unless ``need_bias``)."""

    @abc.abstractmethod
    def conv2d_bwd_data(self, gy, w, x_shape, stride, padding, saved, dilation=(1, 1), groups=1):
        """Gradient with respect to the input, shape ``x_shape``; ``gy`` is NCHW or the ``g``
        of conv2d_bwd_bias_relu."""

    @abc.abstractmethod
    def conv2d_bwd_weight(self, gy, x, w_shape, stride, padding, saved, dilation=(1, 1), groups=1):
        """Gradient with respect to the weight, shape ``w_shape``."""

    def conv2d_bwd_bias(self, gy):
        """Gradient with respect to the bias: gy summed over N, H, W."""
        return gy.sum(axis=(0, 2, 3))

    # --- pooling --------------------------------------------------------------
    @abc.abstractmethod
    def max_pool2d_fwd(self, x, kernel, stride, padding, keep_argmax=True, ceil_mode=False):
        """Returns ``(y, argmax)``; argmax is what max_pool2d_bwd needs (may be skipped, and
        then None, when ``keep_argmax`` is False: no backward will follow)."""

    @abc.abstractmethod
    def conv2d_relu_max_pool_fwd(self, x, w, b, stride, padding, pool, keep_cols=True,
                                 keep_argmax=True):
        """``max_pool2d(relu(conv2d(x, w, b, stride, padding)), pool)`` with ``pool``-square
        windows and stride ``pool``: ``(pooled, cols, saved)``, cols as conv2d_fwd's."""

    @abc.abstractmethod
    def conv2d_relu_max_pool_bwd(self, gp, saved, need_bias=True, write_g=True):
        """``(g, gb)``: the conv output's gradient, as conv2d_bwd_bias_relu's ``g``, and the
        bias gradient, from the pooled output's gradient ``gp``."""

    @abc.abstractmethod
    def max_pool2d_bwd(self, gy, saved, x_shape, kernel, stride, padding, ceil_mode=False):
        """Scatter gy to the arg-max positions that ``saved`` (the forward's) records, summing
        where windows overlap."""

    @abc.abstractmethod
    def avg_pool2d_fwd(self, x, kernel, stride, padding):
        """Mean over each window, padded zeros counted."""

    @abc.abstractmethod
    def avg_pool2d_bwd(self, gy, x_shape, kernel, stride, padding):
        """Spread gy / (kH*kW) over each window."""

    # --- activations ----------------------------------------------------------
    @abc.abstractmethod
    def relu_fwd(self, x):
        """max(x, 0)."""

    @abc.abstractmethod
    def relu_bwd(self, gy, y):
        """gy where the forward output y > 0, else 0."""

    @abc.abstractmethod
    def bias_relu_fwd(self, y, bias, relu):
        """In place on a C-contiguous (M, F) ``y``: add ``bias`` (F,) or None, then max(., 0)
        when ``relu``; returns ``y`` (a linear layer's epilogue)."""

    @abc.abstractmethod
    def bias_relu_bwd(self, gy, y, relu, need_bias):
        """``(g, gb)``: (M, F) ``gy`` masked where ``y`` <= 0 when ``relu`` (else gy) and its
        column sums (None unless ``need_bias``), in a fixed order."""

    # --- fused softmax cross-entropy -----------------------------------------
    @abc.abstractmethod
    def softmax_cross_entropy_fwd(self, logits, labels, reduction="none"):
        """logits (N,C) float, labels (N,) int in [0, C).

        Returns ``(loss, probs)``: per-row loss (N,) = logsumexp(row) - row[label],
        computed stably (or its "mean" or "sum" as a 0-d array, reduced in the same pass),
        and the softmax probabilities (N,C) for the backward.
        """

    @abc.abstractmethod
    def softmax_cross_entropy_bwd(self, probs, labels, gloss, reduction="none"):
        """(probs - onehot(labels)) * gloss[:, None], gloss the per-row upstream grad; with a
        "mean" or "sum" ``reduction`` gloss is the reduced loss's upstream grad (0-d)."""

    # --- optimiser updates (in place) ----------------------------------------
    @abc.abstractmethod
    def sgd_update(self, param, grad, buf, lr, momentum, dampening, weight_decay,
                   nesterov, first_step):
        """PyTorch's SGD step.  ``buf`` is the momentum buffer (unused when momentum=0)."""

    @abc.abstractmethod
    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay,
                    step, decoupled):
        """Adam (decoupled=False, L2 added to grad) or AdamW (decoupled weight decay)."""

    @abc.abstractmethod
    def sgd_update_many(self, params, grads, bufs, lr, momentum, dampening, weight_decay,
                        nesterov, first_step):
        """sgd_update on lists of same-dtype arrays (``bufs`` None when momentum=0); the
        cuda backend updates up to 16 parameters per launch."""

    @abc.abstractmethod
    def adam_update_many(self, params, grads, ms, vs, lr, beta1, beta2, eps, weight_decay,
                         step, decoupled):
        """adam_update on lists of same-dtype arrays sharing one step count."""

    def one(self, dtype):
        """A cached 0-d array holding 1 of ``dtype`` (the seed of ``loss.backward()``): read-only
        by convention, so no device op fills a new one every step."""
        ones = self.__dict__.setdefault("_ones", {})
        key = np.dtype(dtype)
        if key not in ones:
            ones[key] = self.asarray(np.ones((), key))
        return ones[key]

    # --- embedding --------------------------------------------------------------
    @abc.abstractmethod
    def embedding_bwd(self, gy, indices, num_embeddings):
        """Gradient of ``weight[indices]``: gy's rows summed into their table rows, deterministically."""

    # --- layer normalisation ---------------------------------------------------------
    @abc.abstractmethod
    def layer_norm_fwd(self, x, weight, bias, eps):
        """Rows of x (R, D) normalised (biased variance), times weight plus bias (D,) or None.

        Returns ``(y, saved)``; ``saved`` (the row means and reciprocal std) feeds the backward.
        """

    @abc.abstractmethod
    def layer_norm_bwd(self, gy, x, weight, saved):
        """``(gx, gweight, gbias)`` for layer_norm_fwd (the last two None without weight)."""

    # --- recurrent cells (the pointwise part of one step) -------------------------------
    @abc.abstractmethod
    def lstm_cell_fwd(self, gi, gh, c_prev):
        """One LSTM step from gate pre-activations gi, gh (N, 4H; gates i, f, g, o) and c_prev
        (N, H). Returns ``(hc, saved)``, hc (N, 2H) = [h | c]."""

    @abc.abstractmethod
    def lstm_cell_bwd(self, ghc, saved):
        """``(g_gates, g_c_prev)`` from ghc (N, 2H) = [dL/dh | dL/dc]; g_gates is gi's and gh's."""

    @abc.abstractmethod
    def gru_cell_fwd(self, gi, gh, h_prev):
        """One GRU step (PyTorch's gates r, z, n) from gi, gh (N, 3H), h_prev (N, H): ``(h, saved)``."""

    @abc.abstractmethod
    def gru_cell_bwd(self, gh_out, saved):
        """``(g_gi, g_gh, g_h_prev)`` of one GRU step from dL/dh (N, H)."""

    def __repr__(self) -> str:
        return f"<gpunet backend {self.name!r}>"
