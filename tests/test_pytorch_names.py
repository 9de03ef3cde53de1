"""PyTorch's names for devices, dtypes and the function forms of Tensor methods, each compared
with PyTorch itself: values, dtypes, gradients and errors (issue 22, "Names and modules")."""
import numpy as np
import pytest
import torch

import gpunet as gn

DTYPE_NAMES = ("float16", "half", "float32", "float", "float64", "double", "int8", "int16",
               "short", "int32", "int", "int64", "long", "uint8", "bool")


@pytest.fixture(autouse=True)
def _numpy_backend():
    with gn.use_backend("numpy"):
        yield


def torch_dtype_name(dtype):
    return str(dtype).replace("torch.", "")


@pytest.mark.parametrize("spec", ["cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_parses_prints_and_compares_as_pytorch(spec):
    ours, theirs = gn.device(spec), torch.device(spec)
    assert (ours.type, ours.index, str(ours), repr(ours)) == (theirs.type, theirs.index, str(theirs),
                                                              repr(theirs))
    assert (ours == gn.device(spec)) and hash(ours) == hash(gn.device(spec))
    assert (ours == spec) == (theirs == spec)  # a device never equals a string, in both
    assert (gn.device("cuda") == gn.device("cuda:0")) == (torch.device("cuda") == torch.device("cuda:0"))
    assert str(gn.device("cuda", 1)) == str(torch.device("cuda", 1))


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1"])
def test_a_bad_device_string_raises_runtime_error_as_pytorch(bad):
    with pytest.raises(RuntimeError):
        torch.device(bad)
    with pytest.raises(RuntimeError, match="device"):
        gn.device(bad)


def test_tensor_device_is_cuda_and_factories_take_devices():
    t = gn.zeros(2, device=gn.device("cpu"))
    assert t.device == gn.device("cpu")
    assert repr(t.device) == repr(torch.zeros(2).device) and t.is_cuda is torch.zeros(2).is_cuda
    assert gn.ones(3, device="cpu").device == gn.device("cpu")
    with pytest.raises(ValueError, match="one GPU per process"):
        gn.zeros(2, device=gn.device("cuda", 1))


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_names_are_pytorchs(name):
    ours, theirs = getattr(gn, name), getattr(torch, name)
    assert np.dtype(ours).name == torch_dtype_name(theirs)
    assert gn.zeros(2, dtype=ours).dtype == ours
    assert torch_dtype_name(torch.zeros(2, dtype=theirs).dtype) == np.dtype(ours).name


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "uint8", "bool"])
def test_type_and_to_cast_as_pytorch(dtype):
    x = gn.tensor([1.5, -2.0, 0.0])
    tx = torch.tensor([1.5, -2.0, 0.0])
    assert x.type().replace("gpunet.", "") == tx.type().replace("torch.", "")
    for ours, theirs in ((x.type(getattr(gn, dtype)), tx.type(getattr(torch, dtype))),
                         (x.to(getattr(gn, dtype)), tx.to(getattr(torch, dtype))),
                         (x.to("cpu", getattr(gn, dtype)), tx.to("cpu", getattr(torch, dtype))),
                         (x.to(dtype=getattr(gn, dtype)), tx.to(dtype=getattr(torch, dtype)))):
        assert ours.dtype.name == torch_dtype_name(theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.type().replace("gpunet.", "") == theirs.type().replace("torch.", "")


def test_to_returns_self_when_nothing_changes_and_a_float_cast_stays_in_the_graph():
    x = gn.tensor([1.0, 2.0], requires_grad=True)
    assert x.to(gn.float32) is x and x.to("cpu") is x and x.to(x) is x
    assert x.to(gn.float32, copy=True) is not x
    y = x.to(gn.float64)
    (y * y).sum().backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    (tx.to(torch.float64) ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    with pytest.raises(TypeError, match="expected a device, a dtype or a Tensor"):
        x.to(3)


def test_a_one_element_integer_tensor_is_an_index_as_in_pytorch():
    classes = ["plane", "car", "bird", "cat"]
    assert classes[gn.tensor([2])] == classes[torch.tensor([2])] == "bird"
    assert classes[gn.tensor(3)] == classes[torch.tensor(3)]
    for bad_ours, bad_theirs in ((gn.tensor([1, 2]), torch.tensor([1, 2])),
                                 (gn.tensor([1.0]), torch.tensor([1.0]))):
        with pytest.raises(TypeError) as theirs:
            classes[bad_theirs]
        with pytest.raises(TypeError) as ours:
            classes[bad_ours]
        assert str(ours.value) == str(theirs.value)


X = np.array([[0.5, -1.5, 2.0], [3.0, 0.25, -0.75]], np.float32)
POSITIVE = np.abs(X) + 0.5
CASES = [  # (name, input, args, kwargs); the same call on gn and on torch
    ("flatten", X.reshape(1, 2, 3), (1,), {}), ("flatten", X.reshape(1, 2, 3), (), {}),
    ("sum", X, (), {}), ("sum", X, (1,), {}), ("sum", X, (0,), {"keepdim": True}),
    ("mean", X, (), {}), ("mean", X, (1,), {}),
    ("exp", X, (), {}), ("log", POSITIVE, (), {}), ("sqrt", POSITIVE, (), {}), ("abs", X, (), {}),
    ("tanh", X, (), {}), ("sigmoid", X, (), {}), ("relu", X, (), {}),
    ("softmax", X, (1,), {}), ("log_softmax", X, (1,), {}), ("softmax", X, (0,), {}),
    ("transpose", X, (0, 1), {}), ("reshape", X, ((3, 2),), {}), ("unsqueeze", X, (1,), {}),
    ("squeeze", X.reshape(2, 1, 3), (), {}), ("squeeze", X.reshape(2, 1, 3), (1,), {}),
    ("clamp", X, (), {"min": -1.0, "max": 1.0}), ("clamp", X, (0.0,), {}),
    ("amax", X, (1,), {}), ("amin", X, (0,), {}),
]


@pytest.mark.parametrize("name, x, args, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_function_forms_match_pytorch_values_and_gradients(name, x, args, kwargs):
    ours_in, theirs_in = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = getattr(gn, name)(ours_in, *args, **kwargs)
    theirs = getattr(torch, name)(theirs_in, *args, **kwargs)
    assert ours.shape == tuple(theirs.shape) and ours.dtype.name == torch_dtype_name(theirs.dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-7)
    weights = np.random.default_rng(0).standard_normal(ours.shape).astype(np.float32)
    (ours * gn.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_with_a_dim_return_values_and_indices_as_pytorch(name):
    ours, theirs = getattr(gn, name)(gn.tensor(X), 1), getattr(torch, name)(torch.tensor(X), 1)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert ours.indices.dtype.name == "int64"
    values, indices = getattr(gn, name)(gn.tensor(X), dim=0, keepdim=True)
    assert values.shape == tuple(getattr(torch, name)(torch.tensor(X), dim=0, keepdim=True)[0].shape)
    assert getattr(gn, name)(gn.tensor(X)).item() == getattr(torch, name)(torch.tensor(X)).item()
    other = X[::-1].copy()
    np.testing.assert_array_equal(getattr(gn, name)(gn.tensor(X), gn.tensor(other)).numpy(),
                                  getattr(torch, name)(torch.tensor(X), torch.tensor(other)).numpy())


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_in_function_and_method_form(name):
    a, b = np.array([1, 2, 3]), np.array([3, 2, 1])
    want = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_array_equal(getattr(gn, name)(gn.tensor(a), gn.tensor(b)).numpy(), want)
    np.testing.assert_array_equal(getattr(gn.tensor(a), name)(gn.tensor(b)).numpy(), want)
    np.testing.assert_array_equal(getattr(gn.tensor(a), name)(2).numpy(),
                                  getattr(torch.tensor(a), name)(2).numpy())


def test_argmax_argmin_matmul_numel_as_pytorch():
    tx = torch.tensor(X)
    assert gn.argmax(gn.tensor(X)).item() == torch.argmax(tx).item()
    np.testing.assert_array_equal(gn.argmin(gn.tensor(X), 1).numpy(), torch.argmin(tx, 1).numpy())
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(gn.matmul(gn.tensor(X), gn.tensor(w)).numpy(),
                               torch.matmul(tx, torch.tensor(w)).numpy(), rtol=1e-6)
    assert gn.numel(gn.tensor(X)) == torch.numel(tx)


def test_methods_t_contiguous_view_as_new_and_pow_as_pytorch():
    x, tx = gn.tensor(X), torch.tensor(X)
    np.testing.assert_array_equal(x.t().numpy(), tx.t().numpy())
    assert gn.tensor([1.0, 2.0]).t().shape == tuple(torch.tensor([1.0, 2.0]).t().shape)
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        gn.zeros(2, 2, 2).t()
    assert x.contiguous() is x and x.t().contiguous()._data.flags.c_contiguous
    np.testing.assert_array_equal(x.t().contiguous().numpy(), tx.t().contiguous().numpy())
    assert x.view_as(gn.zeros(3, 2)).shape == tuple(tx.view_as(torch.zeros(3, 2)).shape)
    assert x.reshape_as(gn.zeros(6)).shape == (6,)
    ints, tints = gn.tensor([1, 2]), torch.tensor([1, 2])
    for ours, theirs in ((x.new_zeros(2, 3), tx.new_zeros(2, 3)), (x.new_ones((4,)), tx.new_ones((4,))),
                         (ints.new_full((2,), 7), tints.new_full((2,), 7)),
                         (x.new_tensor([1, 2]), tx.new_tensor([1, 2])),
                         (ints.new_zeros(3, dtype=gn.float64), tints.new_zeros(3, dtype=torch.float64))):
        assert ours.dtype.name == torch_dtype_name(theirs.dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert x.new_empty(2, 2).shape == (2, 2)
    np.testing.assert_allclose(x.pow(2).numpy(), tx.pow(2).numpy())
    np.testing.assert_allclose(x.sigmoid().numpy(), tx.sigmoid().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax(1).numpy(), tx.log_softmax(1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(x.bool().numpy(), tx.bool().numpy())


def test_randperm_is_a_seeded_int64_permutation():
    gn.manual_seed(3)
    first = gn.randperm(10)
    gn.manual_seed(3)
    assert first.tolist() == gn.randperm(10).tolist()
    assert sorted(first.tolist()) == list(range(10))
    assert first.dtype.name == torch_dtype_name(torch.randperm(10).dtype)
    with pytest.raises(ValueError, match="non-negative int"):
        gn.randperm(-1)


def test_inference_mode_records_no_graph_as_context_and_decorator():
    w = gn.tensor([1.0], requires_grad=True)
    with gn.inference_mode():
        assert not (w * 2).requires_grad

    @gn.inference_mode()
    def predict(v):
        return v * 2

    assert not predict(w).requires_grad and (w * 2).requires_grad


def test_cuda_and_accelerator_answer_for_this_machine():
    from gpunet import backends

    real_gpu = backends.cuda_unavailable_reason() is None and not backends.simulator_on()
    assert gn.cuda.is_available() is real_gpu
    assert (gn.cuda.device_count() > 0) is real_gpu
    assert gn.accelerator.is_available() is real_gpu
    assert gn.accelerator.current_accelerator() == (gn.device("cuda") if real_gpu else None)
    gn.cuda.manual_seed_all(5)  # seeds every backend, as gn.manual_seed
    a = gn.rand(3)
    gn.manual_seed(5)
    assert gn.rand(3).tolist() == a.tolist()


def test_utils_data_is_pytorchs_path_to_gpunet_data():
    from gpunet.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split
    from gpunet.utils.data.distributed import DistributedSampler

    assert (DataLoader, Dataset, Subset, TensorDataset, random_split) == (
        gn.data.DataLoader, gn.data.Dataset, gn.data.Subset, gn.data.TensorDataset, gn.data.random_split)
    assert DistributedSampler is gn.distributed.DistributedSampler


@pytest.mark.parametrize("make", [lambda m: m.ReLU(True), lambda m: m.ReLU(inplace=True), lambda m: m.ReLU(),
                                  lambda m: m.LeakyReLU(0.1, True), lambda m: m.ELU(1.0, True),
                                  lambda m: m.LeakyReLU(0.2)])
def test_activations_take_inplace_as_pytorch_with_the_same_values_and_repr(make):
    ours, theirs = make(gn.nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    x = X.copy()
    np.testing.assert_allclose(ours(gn.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-6)
    assert gn.nn.Dropout(0.5, True).inplace and gn.nn.Dropout(0.5, inplace=True).p == 0.5


@pytest.mark.parametrize("name, kwargs", [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01})])
def test_step_with_a_closure_returns_its_loss_and_updates_as_pytorch(name, kwargs):
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    x, y = rng.standard_normal((5, 3)).astype(np.float32), rng.integers(0, 2, 5)
    results = []
    for lib in (gn, torch):
        model = lib.nn.Linear(3, 2)
        if lib is torch:
            with torch.no_grad():
                model.weight.copy_(torch.tensor(w))
                model.bias.copy_(torch.tensor(b))
        else:
            model.weight.data[...] = w
            model.bias.data[...] = b
        opt = getattr(lib.optim, name)(model.parameters(), **kwargs)

        def closure():
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            return loss

        losses = [float(opt.step(closure).detach()) for _ in range(3)]
        results.append((losses, model.weight.detach().numpy().copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-6)
    opt = gn.optim.SGD(gn.nn.Linear(3, 2).parameters(), lr=0.1)
    assert opt.step() is None
    with pytest.raises(TypeError, match="closure must be a function"):
        opt.step(0.5)


def test_randint_pow_and_legacy_constructors_match_torch():
    torch = pytest.importorskip("torch")
    r = gn.randint(3, 7, (50,))
    assert r.dtype == np.int64 and r.shape == (50,) and 3 <= r.min().item() and r.max().item() < 7
    assert gn.randint(5, size=(2, 2)).shape == (2, 2) and gn.randint(2, (3,), dtype=gn.int32).dtype == np.int32
    assert gn.randint_like(gn.zeros(2, 3), 4).dtype == gn.zeros(1).dtype
    with pytest.raises(ValueError, match="high must be greater than low"):
        gn.randint(5, 5, (2,))
    draws = [gn.randint(0, 100, (4,), generator=np.random.default_rng(7)).tolist() for _ in range(2)]
    assert draws[0] == draws[1]
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator or None"):
        gn.randint(0, 2, (1,), generator=3)
    x = [1.0, 2.0, 3.0]
    assert gn.pow(gn.tensor(x), 3.0).tolist() == torch.pow(torch.tensor(x), 3.0).tolist()
    assert gn.pow(2, gn.tensor(x)).tolist() == torch.pow(2, torch.tensor(x)).tolist()
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor"):
        for args in ((3,), (2, 3), ([1, 2],)):
            got, want = getattr(gn, name)(*args), getattr(torch, name)(*args)
            assert got.shape == tuple(want.shape) and str(got.dtype) == str(want.dtype).replace("torch.", "")
    import gpunet.nn.modules.transformer as tr
    assert tr.TransformerEncoderLayer is gn.nn.TransformerEncoderLayer
    assert issubclass(gn.nn.modules.linear.NonDynamicallyQuantizableLinear, gn.nn.Linear)


def test_safe_globals_scope_like_torch_serialization():
    """Membership of a user class in get_safe_globals() through the same calls in both frameworks
    (torch's list also holds its own internal entries, so membership is what is compared)."""
    torch = pytest.importorskip("torch")

    class Trusted:
        pass

    def trace(ser):
        seen = [Trusted in ser.get_safe_globals()]
        with ser.safe_globals([Trusted]):
            seen.append(Trusted in ser.get_safe_globals())
        seen.append(Trusted in ser.get_safe_globals())
        ser.add_safe_globals([Trusted])
        seen.append(Trusted in ser.get_safe_globals())
        ser.clear_safe_globals()
        return seen + [Trusted in ser.get_safe_globals()]

    assert trace(gn.serialization) == trace(torch.serialization) == [False, True, False, True, False]
