"""The PyTorch-named tensor ops against PyTorch itself, over drawn geometry, on both backends.

Covered: expand/expand_as, repeat, narrow, split, chunk, roll, tril/triu (gpunet/ops/shape.py),
gather, masked_fill, sort, topk (gpunet/ops/indexing.py), sin, cos, maximum/minimum
(gpunet/ops/math.py), bmm, multinomial, the function forms (``gn.narrow`` ...), the ``*_like``
factories and ``gn.Size``.

Every drawn case runs the op on gpunet and on torch with the same input arrays, compares each
output (shape, dtype and values: exactly for copies and index results, to a few ulps for
arithmetic) and, for float inputs, back-propagates one random weighted sum of all float outputs
through both and compares every input gradient.  Bad arguments must raise the exception type
torch raises, with a message naming the argument.

Ties: sort and topk results with equal values are compared with torch's ``stable=True`` sort,
which is the order gpunet promises; maximum/minimum with equal operands split the gradient in
half, as torch does.  The cuda backend runs in Numba's simulator (tests/conftest.py), so its
searches draw fewer, smaller cases.
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


# --- gather -------------------------------------------------------------------
@st.composite
def gather_case(draw, size):
    shape = _shape(draw, size, min_size=1)
    d = _dim(draw, len(shape))
    # the index may be smaller than the input in every dim but `dim`, where it may be longer
    index_shape = tuple(draw(st.integers(0, size)) if k == d % len(shape) else draw(st.integers(0, n))
                        for k, n in enumerate(shape))
    return shape, d, index_shape, draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds)


def test_gather_matches_pytorch(backend):
    """Repeated indices must sum their gradients; int64 indices, as torch requires."""
    @_settings(backend)
    @given(gather_case(SIZE[backend]))
    def check(case):
        shape, d, index_shape, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        index = rng.integers(0, shape[d], index_shape).astype(np.int64)
        if function_form:
            fns = (lambda x: gn.gather(x, d, gn.tensor(index)), lambda x: torch.gather(x, d, torch.tensor(index)))
        else:
            fns = (lambda x: x.gather(d, gn.tensor(index)), lambda x: x.gather(d, torch.tensor(index)))
        _compare(*fns, [_array(rng, shape, dtype)], seed)

    check()


def test_gather_index_dtypes(backend):
    x = np.arange(12.0).reshape(3, 4)
    index = np.array([[3, 0], [1, 1], [2, 0]])
    want = torch.tensor(x).gather(1, torch.tensor(index)).numpy()
    for dtype in (np.int64, np.int32):
        np.testing.assert_array_equal(gn.tensor(x).gather(1, gn.tensor(index.astype(dtype))).numpy(), want)


# --- masked_fill ----------------------------------------------------------------
@st.composite
def masked_fill_case(draw, size):
    shape = _shape(draw, size, min_dims=0)
    mask_shape = [draw(st.sampled_from([n, 1])) for n in shape]  # broadcast along some dims
    mask_shape = mask_shape[draw(st.integers(0, len(shape))):]  # and fewer dims
    if len(mask_shape) == len(shape) and draw(st.integers(0, 4)) == 0:
        mask_shape = [draw(st.integers(1, 2))] + mask_shape  # a mask with more dims than input
    dtype = draw(st.sampled_from(DTYPES))
    values = [0.0, 2.5, -3, 7] + ([float("-inf"), float("inf"), float("nan")] if dtype != "int64" else [])
    value = draw(st.sampled_from(values))
    value_kind = draw(st.sampled_from(["number", "tensor"] if dtype == "int64" else ["number", "tensor", "grad"]))
    return shape, tuple(mask_shape), value, value_kind, draw(st.booleans()), dtype, draw(seeds)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf * gy summed: a NaN loss
def test_masked_fill_matches_pytorch(backend):
    """Broadcast masks, -inf/inf/nan fills; a 0-d value tensor gets the masked gradient."""
    @_settings(backend)
    @given(masked_fill_case(SIZE[backend]))
    def check(case):
        shape, mask_shape, value, value_kind, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        mask = rng.random(mask_shape) < 0.5
        arrays = [_array(rng, shape, dtype)]
        if value_kind == "grad":
            arrays.append(np.array(value, dtype=dtype))

        def run(lib):
            def op(x, *v):
                if value_kind == "number":
                    fill = value
                elif value_kind == "tensor":
                    fill = lib.tensor(np.array(value, dtype=dtype))
                else:
                    fill = v[0]
                m = lib.tensor(mask)
                return getattr(lib, "masked_fill")(x, m, fill) if function_form else x.masked_fill(m, fill)
            return op

        _compare(run(gn), run(torch), arrays, seed)

    check()


def test_masked_fill_softmax_with_minus_inf(backend):
    """The attention idiom: -inf where masked, then softmax; the gradient is torch's."""
    scores = np.random.default_rng(3).standard_normal((2, 4, 4))
    causal = np.triu(np.ones((4, 4), bool), 1)
    _compare(lambda s: gn.softmax(s.masked_fill(gn.tensor(causal), float("-inf")), -1),
             lambda s: torch.softmax(s.masked_fill(torch.tensor(causal), float("-inf")), -1),
             [scores], 4, exact=False)


# --- sort, topk -----------------------------------------------------------------
@st.composite
def sort_case(draw, size):
    shape = _shape(draw, size + 1, min_dims=0)
    return (shape, _dim(draw, len(shape)), draw(st.booleans()), draw(st.sampled_from([None, False, True])),
            draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds))


def test_sort_matches_pytorch_stable(backend):
    """Values exactly; indices (with ties and NaNs) as torch's stable sort gives them."""
    @_settings(backend, factor=2)
    @given(sort_case(SIZE[backend]))
    def check(case):
        shape, d, descending, stable, nan, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        kw = dict(dim=d, descending=descending, **({} if stable is None else dict(stable=stable)))
        x = _array(rng, shape, dtype, ties=True, nan=nan)
        fn = (lambda t: gn.sort(t, **kw)) if function_form else (lambda t: t.sort(**kw))
        ys = _compare(fn, lambda t: torch.sort(t, dim=d, descending=descending, stable=True), [x], seed)
        assert ys[1].dtype == np.int64
        # the namedtuple fields, as torch.return_types.sort
        out = gn.tensor(x).sort(**kw)
        np.testing.assert_array_equal(out.values.numpy(), ys[0].numpy())
        np.testing.assert_array_equal(out.indices.numpy(), ys[1].numpy())

    check()


@pytest.mark.parametrize("descending", [False, True])
def test_sort_ties_keep_their_first_order(backend, descending):
    x = [1.0, 2.0, 1.0, 2.0, 0.0, 2.0, 1.0]
    got = gn.tensor(x).sort(descending=descending)
    want = torch.tensor(x).sort(descending=descending, stable=True)
    assert got.values.tolist() == want.values.tolist()
    assert got.indices.tolist() == want.indices.tolist()


@st.composite
def topk_case(draw, size):
    shape = _shape(draw, size + 1, min_dims=0)
    d = _dim(draw, len(shape))
    n = shape[d] if shape else 1
    return (shape, d, draw(st.integers(0, n)), draw(st.booleans()), draw(st.booleans()),
            draw(st.booleans()), draw(st.sampled_from(DTYPES)), draw(seeds))


def test_topk_matches_pytorch(backend):
    """Values as torch.topk's; indices (ties included) and gradients as torch's stable sort's
    first k (torch.topk itself picks among tied elements in an unspecified order)."""
    @_settings(backend, factor=2)
    @given(topk_case(SIZE[backend]))
    def check(case):
        shape, d, k, largest, nan, function_form, dtype, seed = case
        rng = np.random.default_rng(seed)
        x = _array(rng, shape, dtype, ties=True, nan=nan)

        def reference(t):
            if t.ndim == 0:
                return torch.topk(t, k, largest=largest)
            s = torch.sort(t, dim=d, descending=largest, stable=True)
            return s.values.narrow(d, 0, k), s.indices.narrow(d, 0, k)

        kw = dict(dim=d, largest=largest)
        fn = (lambda t: gn.topk(t, k, **kw)) if function_form else (lambda t: t.topk(k, **kw))
        ys = _compare(fn, reference, [x], seed)
        values = torch.topk(torch.tensor(x), k, dim=d, largest=largest).values.numpy()
        np.testing.assert_array_equal(ys[0].numpy(), values)
        assert ys[1].dtype == np.int64

    check()


# --- sin, cos, maximum, minimum ------------------------------------------------------
@pytest.mark.parametrize("name", ["sin", "cos"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sin_cos_match_pytorch(backend, name, dtype):
    rng = np.random.default_rng(5)
    for shape in [(), (0,), (7,), (2, 3, 4)]:
        x = np.asarray(3 * rng.standard_normal(shape)).astype(dtype)
        _compare(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), [x], 6, exact=False)
        _compare(lambda t: getattr(gn, name)(t), lambda t: getattr(torch, name)(t), [x], 7, exact=False)


@st.composite
def binary_case(draw, size):
    out = _shape(draw, size, min_dims=0)
    a = [draw(st.sampled_from([n, 1])) for n in out][draw(st.integers(0, len(out))):]
    b = [draw(st.sampled_from([n, 1])) for n in out][draw(st.integers(0, len(out))):]
    dtypes = draw(st.sampled_from([("float64", "float64"), ("float32", "float32"), ("int64", "int64"),
                                   ("int64", "float32"), ("float64", "int64")]))
    return (tuple(a), tuple(b), dtypes, draw(st.sampled_from(["maximum", "minimum"])),
            draw(st.sampled_from(["method", "function", "max-min"])), draw(seeds))


def test_maximum_minimum_match_pytorch(backend):
    """Broadcast shapes, int/float promotion, ties (half the gradient to each side)."""
    @_settings(backend, factor=2)
    @given(binary_case(SIZE[backend]))
    def check(case):
        a_shape, b_shape, (da, db), name, form, seed = case
        rng = np.random.default_rng(seed)
        arrays = [_array(rng, a_shape, da, ties=True), _array(rng, b_shape, db, ties=True)]
        if form == "method":
            fns = (lambda a, b: getattr(a, name)(b), lambda a, b: getattr(a, name)(b))
        elif form == "function":
            fns = (lambda a, b: getattr(gn, name)(a, b), lambda a, b: getattr(torch, name)(a, b))
        else:  # torch.max(a, b) / torch.min(a, b): the elementwise form
            short = name[:3]
            fns = (lambda a, b: getattr(gn, short)(a, b), lambda a, b: getattr(torch, short)(a, b))
        _compare(*fns, arrays, seed)

    check()


def test_maximum_tie_splits_the_gradient_in_half(backend):
    a = gn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = gn.tensor([1.0, 5.0, 3.0], requires_grad=True)
    (gn.maximum(a, b) * gn.tensor([2.0, 4.0, 6.0])).sum().backward()
    ta = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    tb = torch.tensor([1.0, 5.0, 3.0], requires_grad=True)
    (torch.maximum(ta, tb) * torch.tensor([2.0, 4.0, 6.0])).sum().backward()
    assert a.grad.tolist() == ta.grad.tolist() == [1.0, 0.0, 3.0]
    assert b.grad.tolist() == tb.grad.tolist() == [1.0, 4.0, 3.0]


def test_maximum_propagates_nan(backend):
    a, b = [1.0, float("nan"), 2.0], [float("nan"), 3.0, 1.0]
    for name in ("maximum", "minimum"):
        got = getattr(gn, name)(gn.tensor(a), gn.tensor(b)).numpy()
        want = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_array_equal(got, want)


# --- bmm --------------------------------------------------------------------------
@st.composite
def bmm_case(draw, size):
    b, n, m, p = (draw(st.integers(0, size)) for _ in range(4))
    return b, n, m, p, draw(st.sampled_from(DTYPES)), draw(st.booleans()), draw(seeds)


def test_bmm_matches_pytorch(backend):
    @_settings(backend)
    @given(bmm_case(SIZE[backend]))
    def check(case):
        b, n, m, p, dtype, function_form, seed = case
        rng = np.random.default_rng(seed)
        arrays = [_array(rng, (b, n, m), dtype), _array(rng, (b, m, p), dtype)]
        fns = ((lambda x, y: gn.bmm(x, y), lambda x, y: torch.bmm(x, y)) if function_form
               else (lambda x, y: x.bmm(y), lambda x, y: x.bmm(y)))
        _compare(*fns, arrays, seed, exact=False)

    check()


# --- multinomial -------------------------------------------------------------------
def _within_5_standard_errors(counts, trials, p):
    se = np.sqrt(trials * p * (1 - p))
    assert np.all(np.abs(counts - trials * p) <= 5 * se + 1e-9), (counts, trials * p, se)


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_shapes_dtype_and_support(backend, replacement, dtype):
    gn.manual_seed(1)
    w = np.array([[0.0, 1.0, 2.0, 0.0, 3.0], [5.0, 0.0, 0.0, 1.0, 1.0]], dtype)
    for data, n in [(w[0], 3), (w, 3), (w[1], 1), (w, 2)]:
        got = gn.tensor(data).multinomial(n, replacement=replacement)
        want = torch.tensor(data).multinomial(n, replacement=replacement)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == np.int64 == _np_dtype(want.dtype)
        assert got.backend is gn.get_backend()
        rows = got.numpy().reshape(-1, n)
        for row, p in zip(rows, data.reshape(-1, data.shape[-1])):
            assert np.all(p[row] > 0), "a zero-weight category was drawn"
            if not replacement:
                assert len(set(row.tolist())) == n, "a category was drawn twice without replacement"
    many = gn.multinomial(gn.tensor(w[0]), 50, replacement=True).numpy() if replacement else None
    if many is not None:
        assert many.shape == (50,) and np.all(w[0][many] > 0)


def test_multinomial_is_seeded(backend):
    p = gn.tensor([0.1, 0.2, 0.3, 0.4])
    gn.manual_seed(7)
    first = gn.multinomial(p, 20, replacement=True).tolist()
    gn.manual_seed(7)
    assert gn.multinomial(p, 20, replacement=True).tolist() == first


def test_multinomial_with_replacement_follows_the_weights(backend):
    """Unnormalised weights; counts within 5 standard errors of trials * p."""
    gn.manual_seed(0)
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    trials = 20000
    draws = gn.multinomial(gn.tensor(w), trials, replacement=True).numpy()
    _within_5_standard_errors(np.bincount(draws, minlength=5), trials, w / w.sum())
    rows = gn.multinomial(gn.tensor(np.stack([w, w[::-1]])), trials // 2, replacement=True).numpy()
    _within_5_standard_errors(np.bincount(rows[1], minlength=5), trials // 2, w[::-1] / w.sum())


def test_multinomial_without_replacement_follows_the_weights(backend):
    """First draw ~ p; second draw ~ sum_i p_i p_j / (1 - p_i) over i != j (sequential
    sampling without replacement, torch's meaning)."""
    gn.manual_seed(0)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    rows = 20000
    draws = gn.multinomial(gn.tensor(np.tile(p, (rows, 1))), 2).numpy()
    assert draws.shape == (rows, 2) and np.all(draws[:, 0] != draws[:, 1])
    _within_5_standard_errors(np.bincount(draws[:, 0], minlength=4), rows, p)
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j) for j in range(4)])
    _within_5_standard_errors(np.bincount(draws[:, 1], minlength=4), rows, second)


def test_multinomial_all_categories_without_replacement_is_a_permutation(backend):
    gn.manual_seed(3)
    out = gn.multinomial(gn.tensor([[0.5, 0.2, 0.3]] * 4), 3).numpy()
    assert sorted(map(sorted, out.tolist())) == [[0, 1, 2]] * 4


def test_multinomial_not_enough_nonzero_categories_without_replacement(backend):
    """torch documents that without replacement num_samples may not exceed the non-zero
    categories; gpunet raises RuntimeError (torch's CPU kernel instead returns zero-weight
    categories after the non-zero ones, an unspecified result)."""
    with pytest.raises(RuntimeError, match="not enough non-negative category"):
        gn.multinomial(gn.tensor([0.0, 1.0, 0.0]), 2)


# --- bad arguments: torch's exception type, a message naming the argument ----------------
def _cases():
    x = np.arange(12.0).reshape(3, 4)
    p = np.array([0.2, 0.3, 0.5])
    i = np.array([[1]])
    # (id, call taking the library and a tensor maker, pattern of gpunet's message)
    return [
        ("expand-fewer-sizes", lambda L, T: T(x).expand(4), r"number of sizes"),
        ("expand-non-singleton", lambda L, T: T(x).expand(3, 5), r"expanded size .*\(5\).* existing size \(4\)"),
        ("expand-minus-one-leading", lambda L, T: T(x).expand(-1, 3, 4), r"-1 .*leading"),
        ("repeat-fewer-dims", lambda L, T: T(x).repeat(2), r"repeat dims"),
        ("repeat-negative", lambda L, T: T(x).repeat(-1, 2), r"negative dimension"),
        ("narrow-dim", lambda L, T: T(x).narrow(2, 0, 1), r"Dimension out of range"),
        ("narrow-start-range", lambda L, T: T(x).narrow(1, -5, 1), r"start out of range"),
        ("narrow-start+length", lambda L, T: T(x).narrow(1, 3, 2), r"start \(3\) \+ length \(2\) exceeds"),
        ("narrow-length-negative", lambda L, T: T(x).narrow(1, 0, -1), r"length must be non-negative"),
        ("split-size-zero", lambda L, T: T(x).split(0, 1), r"split_size"),
        ("split-sizes-sum", lambda L, T: T(x).split([1, 1], 1), r"split_sizes"),
        ("split-sizes-negative", lambda L, T: T(x).split([5, -1], 1), r"split_sizes"),
        ("split-dim", lambda L, T: T(x).split(2, 2), r"Dimension out of range"),
        ("chunk-zero", lambda L, T: T(x).chunk(0), r"chunks"),
        ("chunk-negative", lambda L, T: T(x).chunk(-2), r"chunks"),
        ("chunk-dim", lambda L, T: T(x).chunk(2, -3), r"Dimension out of range"),
        ("roll-misaligned", lambda L, T: T(x).roll((1, 2), (1,)), r"shifts and dimensions must align"),
        ("roll-tuple-no-dims", lambda L, T: T(x).roll((1, 2)), r"shifts and dimensions must align"),
        ("roll-empty-shifts", lambda L, T: T(x).roll((), ()), r"shifts"),
        ("roll-dim", lambda L, T: T(x).roll(1, 2), r"Dimension out of range"),
        ("tril-1d", lambda L, T: T(p).tril(), r"at least 2 dimensions"),
        ("triu-0d", lambda L, T: L.triu(T(1.0)), r"at least 2 dimensions"),
        ("gather-float-index", lambda L, T: T(x).gather(1, T(np.array([[1.0]]))), r"index"),
        ("gather-index-ndim", lambda L, T: T(x).gather(1, T(np.array([1]))), r"[Ii]ndex .*same number of dimensions"),
        ("gather-index-larger", lambda L, T: T(x).gather(1, T(np.ones((4, 1), np.int64))), r"index"),
        ("gather-dim", lambda L, T: T(x).gather(2, T(i)), r"Dimension out of range"),
        ("masked_fill-int-mask", lambda L, T: T(x).masked_fill(T(np.ones(4, np.int64)), 0.0), r"mask"),
        ("masked_fill-value-1d", lambda L, T: T(x).masked_fill(T(x > 2), T(np.array([1.0]))), r"value"),
        ("masked_fill-mask-shape", lambda L, T: T(x).masked_fill(T(np.ones(3, bool)), 0.0), r"mask"),
        ("masked_fill-overflow-int", lambda L, T: T(np.arange(3)).masked_fill(T(np.ones(3, bool)), float("inf")), r"value cannot be converted"),
        ("masked_fill-overflow-float32", lambda L, T: T(np.ones(3, np.float32)).masked_fill(T(np.ones(3, bool)), 1e40), r"value cannot be converted"),
        ("sort-dim", lambda L, T: T(x).sort(2), r"Dimension out of range"),
        ("sort-0d-dim", lambda L, T: T(1.0).sort(1), r"Dimension out of range"),
        ("topk-k-large", lambda L, T: T(x).topk(5), r"k"),
        ("topk-k-negative", lambda L, T: T(x).topk(-1), r"k"),
        ("topk-k-float", lambda L, T: T(x).topk(1.5), r"'k'"),
        ("topk-dim", lambda L, T: T(x).topk(1, 2), r"Dimension out of range"),
        ("bmm-2d", lambda L, T: T(x).bmm(T(x.T)), r"batch1 and batch2 must be 3D"),
        ("bmm-batch", lambda L, T: T(np.ones((2, 2, 3))).bmm(T(np.ones((3, 3, 2)))), r"batch1.*batch2"),
        ("bmm-inner", lambda L, T: T(np.ones((2, 2, 3))).bmm(T(np.ones((2, 4, 2)))), r"batch1.*batch2"),
        ("multinomial-too-many", lambda L, T: T(p).multinomial(4), r"n_sample"),
        ("multinomial-zero", lambda L, T: T(p).multinomial(0), r"n_sample"),
        ("multinomial-negative", lambda L, T: T(p).multinomial(-1), r"n_sample"),
        ("multinomial-float-n", lambda L, T: T(p).multinomial(1.5), r"num_samples"),
        ("multinomial-3d", lambda L, T: T(p.reshape(1, 1, 3)).multinomial(1), r"prob_dist must be 1 or 2 dim"),
        ("multinomial-0d", lambda L, T: T(0.5).multinomial(1), r"prob_dist must be 1 or 2 dim"),
        ("multinomial-negative-p", lambda L, T: T(np.array([0.5, -0.1, 0.6])).multinomial(1), r"element < 0"),
        ("multinomial-inf", lambda L, T: T(np.array([0.5, np.inf])).multinomial(1), r"inf"),
        ("multinomial-nan", lambda L, T: T(np.array([0.5, np.nan])).multinomial(1, True), r"nan"),
        ("multinomial-zero-sum", lambda L, T: T(np.zeros(3)).multinomial(1, True), r"sum of probabilities"),
        ("multinomial-int", lambda L, T: T(np.array([1, 2])).multinomial(1), r"floating-point"),
        ("multinomial-no-categories", lambda L, T: T(np.zeros((2, 0))).multinomial(1), r"n_sample"),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_bad_arguments_raise_pytorchs_exception(backend, case):
    _, call, pattern = case
    with pytest.raises(Exception) as theirs:
        call(torch, lambda a: torch.tensor(a))
    with pytest.raises(Exception) as ours:
        call(gn, lambda a: gn.tensor(a))
    assert isinstance(ours.value, type(theirs.value)), \
        f"gpunet raised {type(ours.value).__name__}: {ours.value}; PyTorch {type(theirs.value).__name__}: {theirs.value}"
    assert ours.match(pattern)


@pytest.mark.parametrize("index", [[[5]], [[-1]], [[4]]], ids=["far", "negative", "at-size"])
def test_gather_index_out_of_range(backend, index):
    """torch raises RuntimeError (on CUDA asynchronously); gpunet does on numpy, and the cuda
    backend flags it on the device and raises at the first value read (IndexError where the
    simulator's NumPy takes the index first)."""
    x = np.arange(12.0).reshape(3, 4)
    with pytest.raises(RuntimeError):
        torch.tensor(x).gather(1, torch.tensor(index))
    if backend == "numpy":
        with pytest.raises(RuntimeError, match="index out of range for dimension 1"):
            gn.tensor(x).gather(1, gn.tensor(index))
    else:
        errors = []
        for read in (lambda: gn.tensor(x).gather(1, gn.tensor(index)).numpy(),
                     lambda: gn.zeros(1).numpy()):  # the device flag, read (and cleared) here
            try:
                read()
            except (ValueError, IndexError) as exc:
                errors.append(exc)
        assert errors and all("out of" in str(e) for e in errors), errors


# --- factories and Size -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_like_factories_match_pytorch(backend, dtype):
    src = np.arange(6).reshape(2, 3).astype(dtype)
    g, t = gn.tensor(src), torch.tensor(src)
    for name, args in [("zeros_like", ()), ("ones_like", ()), ("full_like", (7,)), ("empty_like", ())]:
        got, want = getattr(gn, name)(g, *args), getattr(torch, name)(t, *args)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype), name
        assert got.backend is g.backend and not got.requires_grad
        if name != "empty_like":
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        got = getattr(gn, name)(g, *args, dtype=gn.float64, requires_grad=True)
        want = getattr(torch, name)(t, *args, dtype=torch.float64, requires_grad=True)
        assert got.dtype == np.float64 == _np_dtype(want.dtype) and got.requires_grad
    for name in ("rand_like", "randn_like"):
        if dtype == "int64":  # torch: "check_uniform_bounds" not implemented for 'Long'
            continue
        got, want = getattr(gn, name)(g), getattr(torch, name)(t)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype)
    u = gn.rand_like(gn.zeros(2000, dtype=gn.float64)).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
    z = gn.randn_like(gn.zeros(2000, dtype=gn.float64)).numpy()
    assert abs(z.mean()) < 0.15 and abs(z.std() - 1) < 0.1


def test_like_factories_take_a_device(backend):
    other = "numpy" if backend == "cuda" else "cuda"
    device = {"numpy": "cpu", "cuda": "cuda"}[other]
    g = gn.zeros(2, 3)
    for name, args in [("zeros_like", ()), ("ones_like", ()), ("full_like", (2.5,)), ("empty_like", ()),
                       ("rand_like", ()), ("randn_like", ())]:
        out = getattr(gn, name)(g, *args, device=device)
        assert out.backend.name == other and tuple(out.shape) == (2, 3), name
    assert gn.full_like(g, 2.5, device=device).tolist() == [[2.5] * 3] * 2


def test_empty_matches_pytorch(backend):
    for args, kw in [((2, 3), {}), (((2, 3),), {}), ((0,), {}), (((),), {}), ((4,), dict(dtype="float64"))]:
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        got, want = gn.empty(*args, **kw), torch.empty(*args, **tkw)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == _np_dtype(want.dtype)
        assert got.backend is gn.get_backend()
    assert gn.empty(2, requires_grad=True).requires_grad


def test_size_behaves_as_torch_size():
    g, t = gn.zeros(2, 3, 4).shape, torch.zeros(2, 3, 4).shape
    assert isinstance(g, gn.Size) and isinstance(g, tuple)
    assert g == t == (2, 3, 4) and list(g) == list(t)
    assert repr(g) == "gpunet.Size([2, 3, 4])" and repr(t) == "torch.Size([2, 3, 4])"
    assert isinstance(g[1:], gn.Size) and tuple(g[1:]) == tuple(t[1:]) and g[-1] == t[-1] == 4
    assert isinstance(g + (5,), gn.Size) and tuple(g + (5,)) == tuple(t + (5,))
    assert g.numel() == t.numel() == 24 and gn.Size([]).numel() == torch.Size([]).numel() == 1
    assert gn.zeros(2, 3).size() == gn.Size([2, 3]) and gn.zeros(2, 3).size(1) == 3
    assert hash(gn.Size([2, 3])) == hash((2, 3))
    assert tuple(gn.Size(torch.Size([1, 2]))) == (1, 2)
    assert gn.zeros(gn.Size([2, 2])).shape == (2, 2)
