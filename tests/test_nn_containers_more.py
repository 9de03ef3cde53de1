"""nn.ModuleDict, nn.Dropout2d / F.dropout2d, nn.init.orthogonal_ / calculate_gain and
nn.utils.clip_grad_value_, against PyTorch where PyTorch defines the answer."""
import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import gpunet as gn
from gpunet import nn

torch = pytest.importorskip("torch")
TNN = torch.nn


@pytest.fixture(autouse=True)
def _numpy_backend():
    with gn.use_backend("numpy"):
        yield


# --- ModuleDict ---------------------------------------------------------------------------------
def _heads(lib):
    return lib.ModuleDict({"cls": lib.Linear(4, 3), "box": lib.Linear(4, 2, bias=False)})


def test_module_dict_is_a_registered_ordered_dict():
    d = _heads(nn)
    assert list(d.keys()) == ["cls", "box"] and list(d) == ["cls", "box"]
    assert [k for k, _ in d.items()] == ["cls", "box"]
    assert [type(m).__name__ for m in d.values()] == ["Linear", "Linear"]
    assert "cls" in d and "nope" not in d and len(d) == 2
    assert d["cls"] is d.cls  # children are attributes too, as in PyTorch
    assert list(d.state_dict()) == list(_heads(TNN).state_dict()) == ["cls.weight", "cls.bias", "box.weight"]
    assert len(list(d.parameters())) == 3
    d["act"] = nn.ReLU()
    assert list(d) == ["cls", "box", "act"]
    d["cls"] = nn.Linear(4, 5)  # replacing keeps the key
    assert d["cls"].out_features == 5 and len(d) == 3
    assert d.pop("act").__class__ is nn.ReLU and "act" not in d
    del d["box"]
    assert list(d) == ["cls"]
    d.clear()
    assert len(d) == 0 and list(d.state_dict()) == []


def test_module_dict_update_and_nesting_load_torch_weights():
    d = nn.ModuleDict()
    d.update([("a", nn.Linear(2, 2)), ("b", nn.Linear(2, 3))])
    d.update(OrderedDict(c=nn.Linear(3, 1)))
    d.update(nn.ModuleDict({"d": nn.Identity()}))
    assert list(d) == ["a", "b", "c", "d"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleDict({"enc": nn.Linear(4, 8), "dec": nn.Linear(8, 4)})

        def forward(self, x):
            return self.blocks["dec"](self.blocks["enc"](x))

    class TNet(TNN.Module):
        def __init__(self):
            super().__init__()
            self.blocks = TNN.ModuleDict({"enc": TNN.Linear(4, 8), "dec": TNN.Linear(8, 4)})

        def forward(self, x):
            return self.blocks["dec"](self.blocks["enc"](x))

    torch.manual_seed(0)
    tnet, net = TNet(), Net()
    assert list(net.state_dict()) == list(tnet.state_dict())
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(net(gn.tensor(x)).numpy(), tnet(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_module_dict_errors_like_torch():
    d = nn.ModuleDict()
    t = TNN.ModuleDict()
    for key, err in ((1, TypeError), ("a.b", KeyError), ("", KeyError), ("training", KeyError)):
        for md in (d, t):
            with pytest.raises(err):
                md[key] = nn.ReLU() if md is d else TNN.ReLU()
    with pytest.raises(TypeError, match="iterable of key/value pairs"):
        d.update(5)
    with pytest.raises(ValueError, match="has length 3; 2 is required"):
        d.update([("a", nn.ReLU(), 1)])
    with pytest.raises(TypeError, match="should be Iterable"):
        d.update([nn.ReLU()])
    with pytest.raises(TypeError):
        d["x"] = 3
    with pytest.raises(KeyError):
        d["missing"]


# --- Dropout2d ----------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels_and_scales_survivors():
    gn.manual_seed(0)
    p = 0.25
    drop = nn.Dropout2d(p)
    assert repr(drop) == repr(TNN.Dropout2d(p)) == "Dropout2d(p=0.25, inplace=False)"
    x = gn.tensor(np.random.default_rng(0).standard_normal((32, 64, 3, 3)).astype(np.float32),
                  requires_grad=True)
    y = drop(x)
    ratio = (y.numpy() / x.numpy()).reshape(32 * 64, 9)
    assert np.allclose(ratio, ratio[:, :1])  # one factor per (n, c) channel
    factors = ratio[:, 0]
    assert np.all(np.isclose(factors, 0) | np.isclose(factors, 1 / (1 - p), rtol=1e-6))
    assert abs((factors == 0).mean() - p) < 0.03  # 2048 channels: 3 sigma is about 0.029
    y.sum().backward()  # the gradient is the same mask
    np.testing.assert_allclose(x.grad.numpy().reshape(32 * 64, 9), ratio, rtol=1e-6)
    gn.manual_seed(0)
    again = nn.Dropout2d(p)(x)
    np.testing.assert_array_equal(again.numpy(), y.numpy())  # a fixed seed repeats the mask


def test_dropout2d_eval_edges_and_functional():
    x = gn.randn(2, 3, 4, 4)
    drop = nn.Dropout2d()
    assert drop.p == 0.5 and not drop.inplace
    assert drop.eval()(x) is x
    assert nn.Dropout2d(0.0)(x) is x
    assert not nn.Dropout2d(1.0)(x).numpy().any()  # p=1: everything dropped, as in PyTorch
    F2 = nn.functional
    assert "dropout2d" in F2.__all__
    assert F2.dropout2d(x, 0.5, training=False) is x
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        y = F2.dropout2d(gn.ones(4, 8, 5), 0.5)  # (N, C, L), as PyTorch reads it
    rows = y.numpy().reshape(32, 5)
    assert all(len(set(r)) == 1 for r in rows.tolist())
    with pytest.warns(UserWarning, match="5-D input"):
        F2.dropout2d(gn.ones(2, 3, 2, 2, 2), 0.5)
    for bad in (-0.1, 1.5):
        for fn in (nn.Dropout2d, TNN.Dropout2d):
            with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
                fn(bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            F2.dropout2d(x, bad)


# --- init ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (4, 2, 3), (6, 1, 2, 2)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_(shape, gain):
    gn.manual_seed(0)
    t = gn.zeros(*shape)
    assert nn.init.orthogonal_(t, gain=gain) is t
    w = t.numpy().reshape(shape[0], -1).astype(np.float64)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-5)
    gn.manual_seed(0)
    np.testing.assert_array_equal(nn.init.orthogonal_(gn.zeros(*shape), gain).numpy(), t.numpy())
    assert tuple(nn.init.orthogonal(shape).shape) == shape


def test_orthogonal_errors_and_layer_use():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        nn.init.orthogonal_(gn.zeros(3))
    lin = nn.Linear(6, 4)
    nn.init.orthogonal_(lin.weight, gain=nn.init.calculate_gain("relu"))
    w = lin.weight.numpy()
    np.testing.assert_allclose(w @ w.T, 2 * np.eye(4), atol=1e-5)


NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("name", NONLINEARITIES)
def test_calculate_gain_matches_torch(name):
    assert nn.init.calculate_gain(name) == pytest.approx(TNN.init.calculate_gain(name))


def test_calculate_gain_param_and_errors():
    for slope in (0, 0.2, 1, math.sqrt(5)):
        assert nn.init.calculate_gain("leaky_relu", slope) == \
            pytest.approx(TNN.init.calculate_gain("leaky_relu", slope))
    for lib in (nn, TNN):
        with pytest.raises(ValueError):
            lib.init.calculate_gain("leaky_relu", "0.2")
        with pytest.raises(ValueError):
            lib.init.calculate_gain("leaky_relu", True)
        with pytest.raises(ValueError):
            lib.init.calculate_gain("swish")
    assert nn.init.calculate_gain("relu", 0.5) == math.sqrt(2.0)  # param only for leaky_relu


# --- clip_grad_value_ ---------------------------------------------------------------------------
def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) * 3 for s in ((4, 3), (5,))]
    g_params = [gn.tensor(a, requires_grad=True) for a in arrays]
    t_params = [torch.tensor(a, requires_grad=True) for a in arrays]
    (sum((p * p * p).sum() for p in g_params)).backward()
    (sum((p * p * p).sum() for p in t_params)).backward()
    no_grad_param = gn.tensor([1.0], requires_grad=True)  # no grad: skipped
    assert nn.utils.clip_grad_value_(g_params + [no_grad_param], clip_value=2.5) is None
    TNN.utils.clip_grad_value_(t_params, clip_value=2.5)
    for g, t in zip(g_params, t_params):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6)
        assert np.abs(g.grad.numpy()).max() <= 2.5
    assert no_grad_param.grad is None
    single = gn.tensor([3.0, -4.0], requires_grad=True)
    (single * gn.tensor([1.0, 1.0])).sum().backward()
    single.grad = gn.tensor([3.0, -4.0])
    nn.utils.clip_grad_value_(single, 1)
    assert single.grad.tolist() == [1.0, -1.0]


def test_clip_grad_value_on_shared_gradient_arrays():
    """``a + b`` hands both leaves the same gradient array; each is clipped once."""
    a, b = gn.tensor([5.0], requires_grad=True), gn.tensor([6.0], requires_grad=True)
    (a + b).backward(gn.tensor([4.0]))
    nn.utils.clip_grad_value_([a, b], 2.0)
    assert a.grad.tolist() == [2.0] and b.grad.tolist() == [2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.utils.clip_grad_value_(nn.Linear(2, 2).parameters(), 1.0)  # no grads: nothing to do
