"""The Backend protocol: the one seam between model code and array code.

Model code (Tensor, ops, nn, optim, train) never calls NumPy or CuPy for math
directly: it asks ``tensor.backend``.  A backend offers an array module ``xp``
for plain array code written once, host <-> device transfers, and the
primitive kernels, forward and backward side by side.

The primitives themselves are declared once, in ``primitives.py`` (family, name, contract),
and bound onto each backend from its kernel package; this class holds what is not a kernel.
"""
from __future__ import annotations

import abc
import math
import threading

import numpy as np

from cuda_kernels.simulator import simulator_on  # noqa: F401  (the one rule, re-exported)

_RNG_LOCK = threading.Lock()


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

    def erf(self, array):
        """The error function, elementwise (``math.erf`` on the host; backends may do better)."""
        host = self.to_host(array)
        out = np.frompyfunc(math.erf, 1, 1)(host).astype(host.dtype)
        return self.asarray(out)

    threaded_thunks = False  # True where concurrently() runs its thunks on threads at once

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

    def one(self, dtype):
        """A cached 0-d array holding 1 of ``dtype`` (the seed of ``loss.backward()``): read-only
        by convention, so no device op fills a new one every step."""
        ones = self.__dict__.setdefault("_ones", {})
        key = np.dtype(dtype)
        if key not in ones:
            ones[key] = self.asarray(np.ones((), key))
        return ones[key]

    def __repr__(self) -> str:
        return f"<gpunet backend {self.name!r}>"

    # One object per backend per process: tensors compare backends with ``is``, so copying a
    # model or a tensor keeps the backend itself, and a pickle names it and finds it again.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        """The backend itself (``copy.deepcopy`` of a model copies arrays, never backends).

        Example:
            >>> import copy, pickle
            >>> copy.deepcopy(be) is be, pickle.loads(pickle.dumps(be)) is be
            (True, True)
        """
        return self

    def __reduce__(self):
        from . import backend  # the package's one instance per name (created on first use)

        return backend, (self.name,)
