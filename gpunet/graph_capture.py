"""The recording under ``gn.cuda.graph``: every array operation of the captured region, with
its buffers, on a tape that ``CUDAGraph.replay`` runs again (``graphs.py`` holds the API).

Three hooks see everything a step does to its arrays.  The backend's primitives, random
draws, checks and ``xp`` are wrapped on the backend instance for the length of the capture.
Every tensor alive at the start (parameters, static inputs, buffers) holds a ``Captured``
view of its buffer, an ndarray subclass whose operators, NumPy functions and methods are
recorded; what they return is Captured too, so the whole data flow of the region is on the
tape, and what is not (arrays made from host constants) is constant.  A value read back to
the host raises ``CaptureError``.

Example:
    >>> a = np.ones(3).view(Captured)
    >>> rec = _Recorder([gn.get_backend()])
    >>> _ = begin(rec); b = a * 2; tape = end()
    >>> [fn.__name__ for fn, *_ in tape], type(b).__name__
    (['multiply'], 'Captured')
"""
from __future__ import annotations

import gc
import threading

import numpy as np

from .backends.primitives import NAMES as PRIMITIVES

_lock = threading.Lock()
_active = None  # the _Recorder of the capture in progress (one at a time, as on one stream)


class CaptureError(RuntimeError):
    """Something the captured region did cannot be replayed (a value read to the host, say)."""


def _own_recorder():
    """The capture in progress when this thread is the capturing one, else None."""
    rec = _active
    return rec if rec is not None and rec.thread == threading.get_ident() else None


def is_capturing() -> bool:
    """True inside ``with gn.cuda.graph(g):`` on the capturing thread (PyTorch's
    ``is_current_stream_capturing``; another thread's work is not captured)."""
    return _own_recorder() is not None


def _plain(obj):
    """``obj`` with every Captured array (inside tuples, lists and dicts too) as a plain view."""
    if isinstance(obj, Captured):
        return obj.view(np.ndarray)
    if type(obj) in (tuple, list):
        return type(obj)(_plain(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _buffers(obj):
    """Results as buffers: NumPy scalars become 0-d arrays (a scalar cannot be refilled)."""
    if isinstance(obj, np.generic):
        return np.asarray(obj)
    if type(obj) in (tuple, list):
        return type(obj)(_buffers(o) for o in obj)
    return obj


def _wrapped(obj):
    if type(obj) is np.ndarray:
        return obj.view(Captured)
    if type(obj) in (tuple, list):
        return type(obj)(_wrapped(o) for o in obj)
    return obj


def _refill(dst, src):
    """Copy a replayed result ``src`` into the buffers ``dst`` the capture handed out."""
    if isinstance(dst, np.ndarray):
        if np.shape(src) != dst.shape:
            raise CaptureError(f"CUDAGraph.replay: an operation of the graph now gives shape "
                               f"{np.shape(src)}, at capture {dst.shape} (a shape that depends "
                               "on the values, such as x[x > 0]): a graph replays fixed shapes")
        if src is not dst and not (isinstance(src, np.ndarray) and _same_view(dst, src)):
            np.copyto(dst, src, casting="unsafe")
    elif type(dst) in (tuple, list):
        for d, s in zip(dst, src):
            _refill(d, s)


def _same_view(a, b):
    ia, ib = a.__array_interface__, b.__array_interface__
    return ia["data"][0] == ib["data"][0] and a.strides == b.strides and a.shape == b.shape


def record(fn, args=(), kwargs=None):
    """Run ``fn`` on plain arrays; while capturing, add it to the tape and hand out its result
    as Captured buffers.  Calls made inside a recorded call are not recorded again."""
    kwargs = kwargs or {}
    rec = _own_recorder()
    if rec is None or rec.depth:  # no capture, another thread's call, or inside a recorded one
        return fn(*_plain(args), **_plain(kwargs))
    args, kwargs = _plain(args), _plain(kwargs)
    rec.depth += 1
    try:
        result = _buffers(fn(*args, **kwargs))
    finally:
        rec.depth -= 1
    if isinstance(result, (bool, int, float, complex)):  # np.allclose, np.count_nonzero, ...
        raise CaptureError(f"gn.cuda.graph: {getattr(fn, '__name__', fn)} gives the Python "
                           f"number {result!r}, a value on the host, which a graph cannot "
                           "replay; compute it after g.replay()")
    rec.tape.append((fn, args, kwargs, result, np.geterr()))
    return _wrapped(result)


def _host_read(what):
    rec = _own_recorder()
    if rec is not None and not rec.depth:
        raise CaptureError(f"gn.cuda.graph: {what} inside the captured region reads a value back "
                           "to the host, which a graph cannot replay (on a GPU it breaks the "
                           "capture); read outputs after g.replay()")


class Captured(np.ndarray):
    """A buffer of the captured region: NumPy operations on it are recorded while capturing."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return record(ufunc if method == "__call__" else getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func in (np.shares_memory, np.may_share_memory, np.result_type, np.ndim, np.shape):
            return func(*_plain(args), **_plain(kwargs))
        return record(func, args, kwargs)

    def __getitem__(self, key):
        plain = self.view(np.ndarray)
        out = plain[_plain(key)]
        if isinstance(out, np.ndarray) and np.may_share_memory(out, plain):
            return out.view(Captured)  # a view: it sees every refill of its buffer
        return record(_getitem, (self, key))

    def __setitem__(self, key, value):
        record(_setitem, (self, key, value))

    def __copy__(self):
        return self.copy()  # recorded, as every copy method below

    @property
    def flat(self):
        _host_read("ndarray.flat (an iterator on the host)")
        return self.view(np.ndarray).flat

    def reshape(self, *shape, **kw):
        out = self.view(np.ndarray).reshape(*shape, **kw)
        return out.view(Captured) if np.may_share_memory(out, self) else record(_reshape, (self, shape), kw)

    def __float__(self):
        _host_read("float(array)")
        return float(self.view(np.ndarray))

    def __int__(self):
        _host_read("int(array)")
        return int(self.view(np.ndarray))

    def __bool__(self):
        _host_read("a truth test on an array")
        return bool(self.view(np.ndarray))

    def __index__(self):
        _host_read("an array used as an index")
        return self.view(np.ndarray).__index__()

    def item(self, *args):
        _host_read("item()")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _host_read("tolist()")
        return self.view(np.ndarray).tolist()


def _reshape(a, shape, **kw):
    return a.reshape(*shape, **kw)


def _getitem(a, key):
    return a[key]


def _setitem(a, key, value):
    a[key] = value


def _method(name):
    def method(self, *args, **kwargs):
        return record(getattr(np.ndarray, name), (self, *args), kwargs)
    method.__name__ = name
    return method


# ndarray methods NumPy runs without dispatching to __array_ufunc__ / __array_function__.
for _name in ("copy", "astype", "argmax", "argmin", "argsort", "sort", "take", "put", "fill",
              "cumsum", "cumprod", "repeat", "round", "clip", "nonzero", "flatten", "ravel", "dot",
              "all", "any", "max", "min", "sum", "mean", "prod", "std", "var", "choose", "compress",
              "searchsorted", "partition", "argpartition", "trace", "diagonal", "squeeze", "byteswap"):
    setattr(Captured, _name, _method(_name))


class _RecordingModule:
    """``xp`` while capturing: every function (and ufunc method) call is recorded, so an array
    made with ``xp.zeros`` and filled in place is refilled at replay."""

    _PASS = frozenset(("ndarray", "dtype", "generic", "errstate", "result_type", "broadcast_shapes",
                       "iinfo", "finfo", "shares_memory", "may_share_memory", "isscalar", "ndim",
                       "shape", "dtypes", "newaxis", "inf", "nan", "pi", "e", "float16", "float32",
                       "float64", "int8", "int16", "int32", "int64", "uint8", "bool_", "intp",
                       "complex64", "complex128", "issubdtype", "can_cast", "promote_types"))

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if name in self._PASS or isinstance(attr, type) or not callable(attr):
            return _RecordingModule(attr) if type(attr).__name__ == "module" else attr
        if isinstance(attr, np.ufunc):
            return _RecordingUfunc(attr)
        return lambda *args, **kwargs: record(attr, args, kwargs)


class _RecordingUfunc:
    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return record(self._ufunc, args, kwargs)

    def __getattr__(self, name):
        attr = getattr(self._ufunc, name)
        return (lambda *a, **k: record(attr, a, k)) if callable(attr) else attr


def _tensors(backends):
    """Every live tensor on one of ``backends`` (one scan of the garbage collector's objects)."""
    from .tensor import Tensor

    ids = {id(be) for be in backends}
    # type(o), not isinstance: isinstance reads __class__, which some lazy modules intercept
    return [o for o in gc.get_objects()
            if issubclass(type(o), Tensor) and id(getattr(o, "backend", None)) in ids
            and hasattr(o, "_data")]


class _Recorder:
    """Installs the recording hooks on every backend in use for the length of a capture (a
    region may mix them, whatever the current backend is).  A real GPU's backend gets hooks
    that refuse: its stream capture is not written yet."""

    def __init__(self, backends):
        self.backends, self.tape, self.depth = list(backends), [], 0
        self.thread = threading.get_ident()  # the capture is this thread's (a loader's is not)
        self._saved, self.inputs = [], []
        self.guards = []  # checks run before each replay: host values the capture froze

    def _hook(self, be, name, fn):
        self._saved.append((be, name, be.__dict__.get(name, _MISSING)))
        setattr(be, name, fn)

    def start(self):
        recorded = []
        for be in self.backends:
            if be.name == "cuda" and not getattr(be, "simulated", True):
                for name in PRIMITIVES:
                    self._hook(be, name, _refuse_real_gpu)
                continue
            self._hook_backend(be)
            recorded.append(be)
        # Every tensor alive now (parameters, static inputs, buffers) becomes a Captured view
        # of its buffer, so whatever the region computes from them is recorded.
        for t in _tensors(recorded):
            if type(t._data) is np.ndarray:
                wrapper = t._data.view(Captured)
                self.inputs.append((t, t._data, wrapper))
                t._data = wrapper

    def _hook_backend(self, be):
        for name in PRIMITIVES:
            original = getattr(be, name, None)
            if original is not None:
                self._hook(be, name, lambda *a, _fn=original, **k: record(_fn, a, k))
        # a draw at replay takes the generator's next counters, as an eager step's would
        for name in ("check_range", "erf", "rand", "randn"):
            self._hook(be, name, lambda *a, _fn=getattr(be, name), **k: record(_fn, a, k))
        self._hook(be, "asarray", lambda *a, _fn=be.asarray, **k: record(_constant(_fn(*a, **k))))
        self._hook(be, "to_host", self._to_host)
        self._hook(be, "concurrently", lambda *thunks: tuple(t() for t in thunks))  # one order
        self._hook(be, "xp", _RecordingModule(be.xp))

    def _to_host(self, array):
        _host_read("a copy to the host (to_host)")
        return np.array(_plain(array))

    def stop(self):
        for be, name, value in reversed(self._saved):
            if value is _MISSING:
                delattr(be, name)
            else:
                setattr(be, name, value)
        for t, original, wrapper in self.inputs:
            if t._data is wrapper:  # not when the region gave the tensor another array
                t._data = original
        for t in _tensors(self.backends):  # the region's outputs: plain views of their buffers
            if isinstance(t._data, Captured):
                t._data = t._data.view(np.ndarray)
            if t.grad is not None and isinstance(t.grad._data, Captured):
                t.grad._data = t.grad._data.view(np.ndarray)


def _refuse_real_gpu(*args, **kwargs):
    raise NotImplementedError(
        "gn.cuda.graph on a real GPU: stream capture of the cuda backend is not written yet "
        "(cuBLAS GEMMs under capture, a graph-private pool; issue 24); the NumPy backend and "
        "Numba's simulator replay captured steps")


_MISSING = object()


def _constant(array):
    """A host value put on the device inside the region: refilled with the same value."""
    value = np.array(array, copy=True)
    return lambda: value.copy()  # a fresh copy: the buffer handed out is refilled with it




def begin(recorder):
    """Make ``recorder`` the capture in progress and install its hooks."""
    global _active
    with _lock:
        if _active is not None:
            raise CaptureError("gn.cuda.graph: a capture is already in progress; graphs are "
                               "captured one at a time")
        try:
            recorder.start()
        except BaseException:
            recorder.stop()
            raise
        _active = recorder
    return recorder


def end():
    """Stop the capture in progress, remove its hooks and return its tape."""
    global _active
    with _lock:
        rec, _active = _active, None
        if rec is None:
            raise CaptureError("capture_end: no capture is in progress")
        rec.stop()
    return rec.tape


def read_by(tape):
    """ids of the arrays (and of their bases) the tape's operations take as arguments."""
    found = set()
    for _, args, kwargs, _, _ in tape:
        for a in _arrays((args, kwargs)):
            found.add(id(a))
            if a.base is not None:
                found.add(id(a.base))
    return found


def replay(tape):
    """Run each recorded operation again and refill the buffers it handed out."""
    default = np.geterr()
    for fn, args, kwargs, out, err in tape:
        if err != default:
            with np.errstate(**err):
                _refill(out, fn(*args, **kwargs))
        else:
            _refill(out, fn(*args, **kwargs))


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _arrays(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _arrays(o)


def guard(check):
    """Run ``check()`` before every replay of the graph being captured (it raises when a host
    value the capture froze has changed); nothing outside a capture."""
    rec = _own_recorder()
    if rec is not None:
        rec.guards.append(check)
