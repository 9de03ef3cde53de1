"""The PyTorch-named tensor ops against PyTorch itself, over drawn geometry, on both backends:
here the shape ops, and the helpers their sibling files import.

Covered here: expand/expand_as, repeat, narrow, split, chunk, roll, tril/triu (gpunet/ops/shape.py)
and their function forms (``gn.narrow`` ...).  The siblings: test_tensor_indexing_pytorch.py
(gather, masked_fill, sort, topk), test_tensor_math_pytorch.py (sin, cos, maximum/minimum, bmm,
multinomial), test_tensor_ops_errors_pytorch.py (bad arguments) and
test_tensor_factories_pytorch.py (the ``*_like`` factories and ``gn.Size``).

Every drawn case runs the op on gpunet and on torch with the same input arrays, compares each
output (shape, dtype and values: exactly for copies and index results, to a few ulps for
arithmetic) and, for float inputs, back-propagates one random weighted sum of all float outputs
through both and compares every input gradient.  Bad arguments must raise the exception type
torch raises, with a message naming the argument.  The cuda backend runs in Numba's simulator
(tests/conftest.py), so its searches draw fewer, smaller cases.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpunet as gn

torch = pytest.importorskip("torch")

EXAMPLES = {"numpy": 150, "cuda": 25}
SIZE = {"numpy": 4, "cuda": 3}  # the largest length of a drawn dim
DTYPES = ["float64", "float32", "int64"]
# float64 sums in another order: a few ulps; float32 arithmetic (bmm, sin): a few float32 ulps.
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def _settings(backend, factor=1):
    return settings(max_examples=EXAMPLES[backend] * factor, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def _np_dtype(tdtype):
    return torch.empty(0, dtype=tdtype).numpy().dtype


def _outputs(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


def _compare(gn_fn, torch_fn, arrays, seed, exact=True, grad=True):
    """Run ``gn_fn(*tensors)`` and ``torch_fn(*tensors)`` on the same ``arrays`` (float ones
    require grad), compare every output, back-propagate one random weighted sum of the float
    outputs through both and compare the gradients of the float inputs.

    ``exact``: outputs must be equal bit for bit (copies, selections); otherwise within TOL.
    """
    rng = np.random.default_rng(seed)
    ours = [gn.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ys, ts = _outputs(gn_fn(*ours)), _outputs(torch_fn(*theirs))
    assert len(ys) == len(ts), f"{len(ys)} outputs, PyTorch {len(ts)}"
    loss_g = loss_t = None
    for k, (y, t) in enumerate(zip(ys, ts)):
        assert isinstance(y, gn.Tensor), f"output {k} is a {type(y).__name__}"
        assert y.backend is gn.get_backend(), f"output {k} left the backend"
        assert tuple(y.shape) == tuple(t.shape), f"output {k}: shape {tuple(y.shape)}, PyTorch {tuple(t.shape)}"
        assert y.dtype == _np_dtype(t.dtype), f"output {k}: dtype {y.dtype}, PyTorch {t.dtype}"
        got, want = y.numpy(), t.detach().numpy()
        if exact or want.dtype.kind != "f":
            np.testing.assert_array_equal(got, want, err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(got, want, err_msg=f"output {k}", **TOL[str(want.dtype)])
        assert y.requires_grad == t.requires_grad, f"output {k}: requires_grad {y.requires_grad}"
        if t.requires_grad:
            gy = rng.standard_normal(tuple(t.shape)).astype(want.dtype)
            lg, lt = (y * gn.tensor(gy)).sum(), (t * torch.tensor(gy)).sum()
            loss_g = lg if loss_g is None else loss_g + lg
            loss_t = lt if loss_t is None else loss_t + lt
    if loss_t is None:
        return ys
    loss_g.backward()
    loss_t.backward()
    for k, (a, o, th) in enumerate(zip(arrays, ours, theirs)):
        if not th.requires_grad:
            continue
        want = np.zeros_like(a) if th.grad is None else th.grad.numpy()
        got = np.zeros_like(a) if o.grad is None else o.grad.numpy()
        assert got.shape == want.shape and got.dtype == want.dtype, f"grad of input {k}"
        np.testing.assert_allclose(got, want, err_msg=f"grad of input {k}", **TOL[str(a.dtype)])
    return ys


def _array(rng, shape, dtype, ties=False, nan=False):
    """Random values of ``shape``: few distinct ones when ``ties`` (so equal values occur)."""
    if dtype == "bool":
        return np.asarray(rng.integers(0, 2, shape)).astype(bool)
    if ties or dtype == "int64":
        a = np.asarray(rng.integers(-2, 3, shape)).astype(dtype)
    else:  # np.asarray: a 0-d draw is a NumPy scalar, which gn.tensor would make float32
        a = np.asarray(rng.standard_normal(shape)).astype(dtype)
    if nan and a.dtype.kind == "f" and a.size:
        a[rng.random(shape) < 0.15] = np.nan
    return a


def _shape(draw, size, min_dims=1, max_dims=3, min_size=0):
    return tuple(draw(st.lists(st.integers(min_size, size), min_size=min_dims, max_size=max_dims)))


def _dim(draw, ndim):
    """A dim of an ``ndim``-D tensor, negative half the time (0-D tensors take 0 and -1)."""
    span = max(ndim, 1)
    return draw(st.integers(-span, span - 1))


seeds = st.integers(0, 2 ** 16)


# --- expand, expand_as, repeat -------------------------------------------------
@st.composite
def expand_case(draw, size):
    shape = tuple(draw(st.lists(st.sampled_from([1, 1, 0, 2, size]), max_size=3)))
    target = draw(st.lists(st.integers(0, size), max_size=2))  # new leading dims
    for n in shape:
        target.append(draw(st.sampled_from([-1, 0, 1, 2, 3] if n == 1 else [-1, n])))
    form = draw(st.sampled_from(["args", "tuple", "list", "size"]))
    form = "tuple" if not target and form == "args" else form  # torch: expand() needs a size
    return shape, target, form, draw(st.sampled_from(DTYPES)), draw(seeds)


def test_expand_matches_pytorch(backend):
    @_settings(backend)
    @given(expand_case(SIZE[backend]))
    def check(case):
        shape, target, form, dtype, seed = case
        args = {"args": tuple(target), "tuple": (tuple(target),), "list": (list(target),),
                "size": (gn.Size(target),)}[form]
        targs = args if form != "size" else (torch.Size(target),)
        _compare(lambda x: x.expand(*args), lambda x: x.expand(*targs),
                 [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


def test_expand_as_matches_pytorch(backend):
    @_settings(backend)
    @given(expand_case(SIZE[backend]))
    def check(case):
        shape, target, _, dtype, seed = case
        full = [n if n != -1 else shape[i - (len(target) - len(shape))] for i, n in enumerate(target)]
        other = np.zeros(full)
        _compare(lambda x: x.expand_as(gn.tensor(other)), lambda x: x.expand_as(torch.tensor(other)),
                 [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


def test_expand_is_a_view_of_its_input(backend):
    x = gn.tensor([[1.0], [2.0]])
    e = x.expand(3, 2, 4)
    x.mul_(10)
    assert e.tolist() == torch.tensor([[1.0], [2.0]]).mul_(10).expand(3, 2, 4).tolist()


@st.composite
def repeat_case(draw, size):
    shape = _shape(draw, size, min_dims=0, max_dims=3)
    extra = draw(st.integers(0 if shape else 1, 2))
    reps = draw(st.lists(st.integers(0, 3), min_size=len(shape) + extra, max_size=len(shape) + extra))
    return shape, reps, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_repeat_matches_pytorch(backend):
    @_settings(backend)
    @given(repeat_case(SIZE[backend]))
    def check(case):
        shape, reps, packed, dtype, seed = case
        args = (tuple(reps),) if packed else tuple(reps)
        _compare(lambda x: x.repeat(*args), lambda x: x.repeat(*args),
                 [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


# --- narrow, split, chunk -----------------------------------------------------
@st.composite
def narrow_case(draw, size):
    shape = _shape(draw, size)
    d = _dim(draw, len(shape))
    n = shape[d]
    start = draw(st.integers(-n, n))
    length = draw(st.integers(0, n - (start + n if start < 0 else start)))
    return shape, d, start, length, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_narrow_matches_pytorch(backend):
    @_settings(backend)
    @given(narrow_case(SIZE[backend]))
    def check(case):
        shape, d, start, length, function_form, dtype, seed = case
        if function_form:
            fns = (lambda x: gn.narrow(x, d, start, length), lambda x: torch.narrow(x, d, start, length))
        else:
            fns = (lambda x: x.narrow(d, start, length), lambda x: x.narrow(d, start, length))
        _compare(*fns, [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


@st.composite
def split_case(draw, size):
    shape = _shape(draw, size)
    d = _dim(draw, len(shape))
    n = shape[d]
    if draw(st.booleans()):
        arg = draw(st.integers(0 if n == 0 else 1, n + 2))
    else:  # sections (zeros among them), as a list or a tuple
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
        arg = [b - a for a, b in zip([0] + cuts, cuts + [n])]
        arg = tuple(arg) if draw(st.booleans()) else arg
    return shape, d, arg, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_split_matches_pytorch(backend):
    @_settings(backend)
    @given(split_case(SIZE[backend]))
    def check(case):
        shape, d, arg, function_form, dtype, seed = case
        if function_form:
            fns = (lambda x: gn.split(x, arg, d), lambda x: torch.split(x, arg, d))
        else:
            fns = (lambda x: x.split(arg, dim=d), lambda x: x.split(arg, dim=d))
        ys = _compare(*fns, [_array(np.random.default_rng(seed), shape, dtype)], seed)
        assert isinstance(fns[0](gn.zeros(*shape)), tuple) and ys is not None

    check()


@st.composite
def chunk_case(draw, size):
    shape = _shape(draw, size + 2)  # longer dims: more ways for chunks not to divide
    d = _dim(draw, len(shape))
    chunks = draw(st.integers(1, shape[d] + 3))
    return shape, d, chunks, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_chunk_matches_pytorch(backend):
    @_settings(backend)
    @given(chunk_case(SIZE[backend]))
    def check(case):
        shape, d, chunks, function_form, dtype, seed = case
        if function_form:
            fns = (lambda x: gn.chunk(x, chunks, d), lambda x: torch.chunk(x, chunks, d))
        else:
            fns = (lambda x: x.chunk(chunks, dim=d), lambda x: x.chunk(chunks, dim=d))
        _compare(*fns, [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


@pytest.mark.parametrize("n, chunks", [(5, 3), (6, 4), (6, 5), (7, 4), (0, 3), (1, 4), (10, 4)])
def test_chunk_counts_that_do_not_divide(backend, n, chunks):
    """torch.chunk returns fewer pieces than asked when ceil(n / chunks) pieces already cover n."""
    got = [p.tolist() for p in gn.arange(n).chunk(chunks)]
    want = [p.tolist() for p in torch.arange(n).chunk(chunks)]
    assert got == want


# --- roll, tril, triu -----------------------------------------------------------
@st.composite
def roll_case(draw, size):
    shape = _shape(draw, size)
    shift = st.integers(-9, 9)
    form = draw(st.sampled_from(["flat", "flat-tuple", "one", "tuples", "lists"]))
    if form == "flat":
        shifts, dims = draw(shift), None
    elif form == "flat-tuple":
        shifts, dims = (draw(shift),), None
    elif form == "one":
        shifts, dims = draw(shift), _dim(draw, len(shape))
    else:
        k = draw(st.integers(1, 3))
        shifts = tuple(draw(shift) for _ in range(k))
        dims = tuple(_dim(draw, len(shape)) for _ in range(k))  # a dim may repeat
        if form == "lists":
            shifts, dims = list(shifts), list(dims)
    return shape, shifts, dims, draw(st.booleans()), draw(st.sampled_from(DTYPES + ["bool"])), draw(seeds)


def test_roll_matches_pytorch(backend):
    @_settings(backend)
    @given(roll_case(SIZE[backend]))
    def check(case):
        shape, shifts, dims, function_form, dtype, seed = case
        if function_form:
            fns = (lambda x: gn.roll(x, shifts, dims), lambda x: torch.roll(x, shifts, dims))
        else:
            fns = (lambda x: x.roll(shifts, dims), lambda x: x.roll(shifts, dims))
        _compare(*fns, [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


@st.composite
def triangle_case(draw, size):
    shape = _shape(draw, size + 1, min_dims=2, max_dims=4)
    diagonal = draw(st.integers(-7, 7))  # past either end of the matrix too
    return (shape, draw(st.sampled_from(["tril", "triu"])), diagonal, draw(st.booleans()),
            draw(st.booleans()), draw(st.sampled_from(DTYPES + ["bool"])), draw(seeds))


def test_tril_triu_match_pytorch(backend):
    @_settings(backend)
    @given(triangle_case(SIZE[backend]))
    def check(case):
        shape, name, diagonal, function_form, keyword, dtype, seed = case
        kw = dict(diagonal=diagonal) if keyword else {}
        args = () if keyword else (diagonal,)
        if function_form:
            fns = (lambda x: getattr(gn, name)(x, *args, **kw), lambda x: getattr(torch, name)(x, *args, **kw))
        else:
            fns = (lambda x: getattr(x, name)(*args, **kw), lambda x: getattr(x, name)(*args, **kw))
        _compare(*fns, [_array(np.random.default_rng(seed), shape, dtype)], seed)

    check()


def test_tril_triu_default_diagonal(backend):
    x = np.arange(12.0).reshape(3, 4)
    assert gn.tensor(x).tril().tolist() == torch.tensor(x).tril().tolist()
    assert gn.triu(gn.tensor(x)).tolist() == torch.triu(torch.tensor(x)).tolist()
