"""gpunet.nn: every layer's output shape and float64 gradient, BatchNorm's statistics, state dicts,
moving between backends, printing; plus the Stack/Concat ops the recurrent layers are built from."""
import math

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import nn
from gpunet.serialization import StateDictMismatchError

from conftest import BACKENDS

F64 = np.float64


def t(rng, *shape, grad=True, dtype=F64):
    return gn.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=grad)


def check_layer(layer, x):
    """gradcheck wrt the input and every parameter of ``layer``."""
    params = list(layer.parameters())
    assert gn.gradcheck(lambda x, *ps: layer(x), [x, *params])


# --- shapes -------------------------------------------------------------------------------
@pytest.mark.parametrize("make, in_shape, out_shape", [
    (lambda: nn.Linear(4, 3), (2, 4), (2, 3)),
    (lambda: nn.Linear(4, 3, bias=False), (5, 2, 4), (5, 2, 3)),
    (lambda: nn.Conv2d(2, 3, 3), (1, 2, 5, 6), (1, 3, 3, 4)),
    (lambda: nn.Conv2d(1, 2, (3, 2), stride=2, padding=1, bias=False), (2, 1, 7, 5), (2, 2, 4, 3)),
    (lambda: nn.MaxPool2d(2), (1, 2, 5, 4), (1, 2, 2, 2)),
    (lambda: nn.MaxPool2d(3, stride=1, padding=1), (1, 1, 4, 3), (1, 1, 4, 3)),
    (lambda: nn.AvgPool2d(2, stride=1), (2, 1, 3, 3), (2, 1, 2, 2)),
    (lambda: nn.ReLU(), (2, 3), (2, 3)),
    (lambda: nn.Sigmoid(), (2, 3), (2, 3)),
    (lambda: nn.Tanh(), (2, 3), (2, 3)),
    (lambda: nn.Softmax(dim=1), (2, 3), (2, 3)),
    (lambda: nn.Flatten(), (2, 3, 2, 2), (2, 12)),
    (lambda: nn.Dropout(0.3), (4, 5), (4, 5)),
    (lambda: nn.BatchNorm1d(3), (4, 3), (4, 3)),
    (lambda: nn.BatchNorm1d(3), (4, 3, 2), (4, 3, 2)),
    (lambda: nn.BatchNorm2d(2), (3, 2, 2, 3), (3, 2, 2, 3)),
])
def test_output_shapes_and_dtype(backend, rng, make, in_shape, out_shape):
    layer = make()
    y = layer(t(rng, *in_shape, grad=False, dtype=np.float32))
    assert y.shape == out_shape and y.dtype == np.float32 and y.backend.name == backend
    assert all(p.dtype == np.float32 and p.backend.name == backend for p in layer.parameters())


# --- gradients (float64) -----------------------------------------------------------------
@pytest.mark.parametrize("make, in_shape", [
    (lambda: nn.Linear(3, 2, dtype=F64), (2, 3)),
    (lambda: nn.Conv2d(2, 2, 2, stride=(2, 1), padding=1, dtype=F64), (1, 2, 3, 4)),
    (lambda: nn.AvgPool2d(2), (1, 1, 4, 4)),
    (lambda: nn.Sigmoid(), (2, 3)),
    (lambda: nn.Tanh(), (2, 3)),
    (lambda: nn.Softmax(), (2, 3)),
    (lambda: nn.Flatten(), (2, 2, 2)),
    (lambda: nn.BatchNorm1d(3, dtype=F64), (4, 3)),
    (lambda: nn.BatchNorm2d(2, dtype=F64), (2, 2, 2, 3)),
    (lambda: nn.BatchNorm2d(2, affine=False, dtype=F64), (3, 2, 1, 2)),
])
def test_gradcheck_through_layer(backend, rng, make, in_shape):
    check_layer(make(), t(rng, *in_shape))


def test_gradcheck_relu_maxpool_and_eval_batchnorm(backend, rng):
    x = gn.tensor(rng.permutation(16).reshape(1, 1, 4, 4) * 0.1 + 0.05, requires_grad=True)  # no ties
    check_layer(nn.MaxPool2d(2), x)
    check_layer(nn.ReLU(), gn.tensor(rng.standard_normal((2, 3)) + 0.01, requires_grad=True))
    bn = nn.BatchNorm2d(2, dtype=F64)
    bn(t(rng, 3, 2, 2, 2, grad=False))  # some running statistics
    check_layer(bn.eval(), t(rng, 2, 2, 1, 3))


def test_dropout_train_and_eval(backend, rng):
    drop = nn.Dropout(0.5)
    x = gn.tensor(np.ones((50, 40)))
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.35 < (y == 0).mean() < 0.65
    xg = t(rng, 3, 4)

    def seeded(x):
        gn.manual_seed(7)  # the same mask on every call, so finite differences apply
        return drop(x)
    assert gn.gradcheck(seeded, [xg])
    assert drop.eval()(x) is x


# --- BatchNorm statistics against NumPy ----------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3)])
def test_batchnorm_running_stats_and_eval(backend, rng, shape):
    c = shape[1]
    bn = nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)
    bn.weight.data[...] = bn.weight.backend.asarray(np.linspace(0.5, 1.5, c).astype(np.float32))
    axes = (0,) + tuple(range(2, len(shape)))
    cs = (1, c) + (1,) * (len(shape) - 2)
    rm, rv = np.zeros(c), np.ones(c)
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        y = bn(gn.tensor(x.astype(np.float32))).numpy()
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        n = x.size // c
        want = (x - mean.reshape(cs)) / np.sqrt(var.reshape(cs) + 1e-5) * np.linspace(0.5, 1.5, c).reshape(cs)
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
        rm, rv = 0.9 * rm + 0.1 * mean, 0.9 * rv + 0.1 * var * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 3
    bn.eval()
    x = rng.standard_normal(shape)
    y = bn(gn.tensor(x.astype(np.float32))).numpy()
    want = (x - rm.reshape(cs)) / np.sqrt(rv.reshape(cs) + 1e-5) * np.linspace(0.5, 1.5, c).reshape(cs)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)  # eval leaves them


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(gn.tensor(np.zeros((1, 3), np.float32)))
    with pytest.raises(ValueError, match=r"input has 4 channels .* num_features=3"):
        nn.BatchNorm1d(3)(gn.tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm2d: input must be 4-D"):
        nn.BatchNorm2d(3)(gn.tensor(np.zeros((2, 3), np.float32)))


# --- recurrent layers ------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM])
def test_recurrent_shapes(backend, rng, cls):
    layer = cls(3, 4, num_layers=2, batch_first=True)
    out, state = layer(t(rng, 2, 5, 3, grad=False, dtype=np.float32))
    h = state[0] if cls is nn.LSTM else state
    assert out.shape == (2, 5, 4) and h.shape == (2, 2, 4)
    assert [n for n, _ in layer.named_parameters()][:4] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert layer.weight_ih_l0.shape == (4 * (4 if cls is nn.LSTM else 1), 3)
    np.testing.assert_allclose(out.numpy()[:, -1], h.numpy()[-1], rtol=1e-6)  # last output = last h
    seq_first = cls(3, 4)
    out, _ = seq_first(t(rng, 5, 2, 3, grad=False, dtype=np.float32))
    assert out.shape == (5, 2, 4)


def test_rnn_matches_numpy(rng):
    rnn = nn.RNN(3, 2, dtype=F64)
    x = rng.standard_normal((4, 2, 3))
    out, h = rnn(gn.tensor(x))
    w_ih, w_hh, b_ih, b_hh = (p.numpy() for p in rnn.parameters())
    hh = np.zeros((2, 2))
    for step in range(4):
        hh = np.tanh(x[step] @ w_ih.T + b_ih + hh @ w_hh.T + b_hh)
        np.testing.assert_allclose(out.numpy()[step], hh, rtol=1e-12)


def test_lstm_matches_numpy(rng):
    lstm = nn.LSTM(2, 3, dtype=F64)
    x, h0, c0 = rng.standard_normal((3, 2, 2)), rng.standard_normal((1, 2, 3)), rng.standard_normal((1, 2, 3))
    out, (hn, cn) = lstm(gn.tensor(x), (gn.tensor(h0), gn.tensor(c0)))
    w_ih, w_hh, b_ih, b_hh = (p.numpy() for p in lstm.parameters())
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, c = h0[0], c0[0]
    for step in range(3):
        i, f, g, o = np.split(x[step] @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    np.testing.assert_allclose(hn.numpy()[0], h, rtol=1e-10)
    np.testing.assert_allclose(cn.numpy()[0], c, rtol=1e-10)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM])
def test_recurrent_gradcheck(backend, rng, cls):
    layer = cls(2, 2, num_layers=2, dtype=F64)
    x = t(rng, 3, 2, 2)
    state = t(rng, 2, 2, 2)
    if cls is nn.LSTM:
        c0 = t(rng, 2, 2, 2)
        fn = lambda x, h0, c0, *ps: layer(x, (h0, c0))[0]  # noqa: E731
        assert gn.gradcheck(fn, [x, state, c0, *layer.parameters()])
    else:
        assert gn.gradcheck(lambda x, h0, *ps: layer(x, h0)[0], [x, state, *layer.parameters()])


def test_recurrent_errors():
    with pytest.raises(ValueError, match=r"input must be 3-D \(T, N, input_size\) with input_size=3"):
        nn.RNN(3, 4)(gn.tensor(np.zeros((5, 2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"h0 must be a Tensor of shape \(1, 2, 4\)"):
        nn.RNN(3, 4)(gn.tensor(np.zeros((5, 2, 3), np.float32)), gn.tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match="nonlinearity must be"):
        nn.RNN(3, 4, nonlinearity="gelu")


# --- Stack / Concat ops (added to gpunet/ops/math.py for the recurrent layers) -------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_stack_and_concat_gradcheck(backend, rng, axis):
    a, b, c = t(rng, 2, 3), t(rng, 2, 3), t(rng, 2, 3)
    assert F.stack([a, b, c], axis=axis).shape == np.stack([a.numpy()] * 3, axis=axis).shape
    assert gn.gradcheck(lambda a, b, c: F.stack([a, b, c], axis=axis), [a, b, c])
    d = t(rng, 2, 1) if axis != 0 else t(rng, 1, 3)
    np.testing.assert_array_equal(F.concat([a, d], axis=axis).numpy(),
                                  np.concatenate([a.numpy(), d.numpy()], axis=axis))
    assert gn.gradcheck(lambda a, d: F.concat([a, d, a], axis=axis), [a, d])


def test_stack_concat_errors():
    a = gn.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        F.stack([a, gn.tensor(np.zeros((3, 2)))])
    with pytest.raises(ValueError, match="differ outside axis 1"):
        F.concat([a, gn.tensor(np.zeros((3, 2)))], axis=1)
    with pytest.raises(TypeError, match="non-empty list"):
        F.stack([])


# --- Module machinery --------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv1(x))))


def test_registration_names_and_modes():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "conv1.weight", "conv1.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
    assert list(net.state_dict()) == [
        "conv1.weight", "conv1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
        "bn.num_batches_tracked", "head.1.weight", "head.1.bias"]
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Sequential"]
    assert len(list(net.modules())) == 6
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert not any(m.training for m in net.eval().modules())
    assert all(m.training for m in net.train().modules())
    net(gn.tensor(np.ones((2, 1, 4, 4), np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(TypeError, match="registered as a Parameter"):
        net.conv1.weight = gn.tensor(np.zeros((2, 1, 3, 3), np.float32))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing  # noqa: B018


def test_state_dict_round_trip_and_mismatch(backend, rng, tmp_path):
    gn.manual_seed(1)
    a, b = Net(), Net()
    a(gn.tensor(rng.standard_normal((3, 1, 4, 4)).astype(np.float32)))  # running stats move
    x = gn.tensor(rng.standard_normal((2, 1, 4, 4)).astype(np.float32))
    gn.serialization.save(a.state_dict(), tmp_path / "net.npz")
    b.load_state_dict(gn.serialization.load(tmp_path / "net.npz"))
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    c = Net()
    c.load_state_dict(a.state_dict())  # straight from Tensors, no copy shared with a
    c.conv1.weight.data += 1
    assert not np.array_equal(c.conv1.weight.numpy(), a.conv1.weight.numpy())

    bad = {k: v.numpy() for k, v in a.state_dict().items()}
    del bad["bn.running_var"]
    bad["extra.weight"] = np.zeros(2)
    bad["head.1.weight"] = np.zeros((3, 9), np.float32)
    with pytest.raises(StateDictMismatchError) as info:
        b.load_state_dict(bad)
    msg = str(info.value)
    assert "bn.running_var" in msg and "extra.weight" in msg and "head.1.weight: expected (3, 8), got (3, 9)" in msg
    del bad["head.1.weight"]
    missing, unexpected = b.load_state_dict(bad, strict=False)
    assert missing == ["bn.running_var", "head.1.weight"] and unexpected == ["extra.weight"]


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs a second backend")
def test_to_backend_moves_parameters_and_buffers(rng):
    gn.manual_seed(3)
    net = Net()
    gn.manual_seed(3)
    with gn.use_backend("cuda"):
        same = Net()  # the same seed gives the same model on every backend
    for (n1, p1), (n2, p2) in zip(net.state_dict().items(), same.state_dict().items()):
        np.testing.assert_array_equal(p1.numpy(), p2.numpy(), err_msg=n1)
    params = list(net.parameters())
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    ref = net.eval()(gn.tensor(x, backend="numpy")).numpy()
    assert net.to("cuda") is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # moved in place
    assert all(t.backend.name == "cuda" for t in net.state_dict().values())
    np.testing.assert_allclose(net(gn.tensor(x, backend="cuda")).numpy(), ref, rtol=1e-5, atol=1e-6)
    assert all(t.backend.name == "numpy" for t in net.to("numpy").state_dict().values())


def test_to_same_backend_and_double(backend):
    net = nn.Linear(2, 2)
    assert net.to(backend) is net and net.weight.backend.name == backend
    assert net.double().weight.dtype == np.float64


def test_repr_and_summary():
    gn.manual_seed(0)
    lenet = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    text = repr(lenet)
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))")
    assert "(7): Linear(in_features=400, out_features=120, bias=True)" in text
    assert text.endswith("(11): Linear(in_features=84, out_features=10, bias=True)\n)")  # as PyTorch's
    summary = lenet.summary((1, 1, 28, 28))
    assert "(1, 16, 5, 5)" in summary and "Total params: 61,706" in summary
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.Dropout(0.25)) == "Dropout(p=0.25, inplace=False)"


def test_repr_is_pytorchs():
    torch = pytest.importorskip("torch")

    def build(nn):
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
            nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.5),
            nn.Linear(400, 120), nn.LeakyReLU(0.1), nn.Linear(120, 10),
            nn.BatchNorm1d(10, affine=False), nn.BatchNorm1d(10, bias=False),
            nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.Flatten(0, 2))

    assert repr(build(nn)) == repr(build(torch.nn))


def test_max_pool_takes_pytorchs_positions():
    """PyTorch's 4th argument is dilation, not ceil_mode: positional code means the same here."""
    x = gn.randn(1, 1, 5, 5)
    assert nn.MaxPool2d(2, 2, 0, 1)(x).shape == (1, 1, 2, 2)
    assert F.max_pool2d(x, 2, 2, 0, 1, True).shape == (1, 1, 3, 3)  # ceil_mode is 6th
    with pytest.raises(ValueError, match="dilation must be 1"):
        nn.MaxPool2d(2, dilation=2)
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        F.max_pool2d(x, 2, return_indices=True)


def test_init_statistics_and_pytorch_defaults():
    gn.manual_seed(0)
    fc = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert abs(fc.weight.numpy()).max() <= bound and abs(fc.weight.numpy()).max() > 0.95 * bound
    assert abs(fc.bias.numpy()).max() <= bound
    w = nn.init.kaiming_normal_(gn.tensor(np.zeros((200, 100, 3, 3))), nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 900)) < 0.01 * math.sqrt(2 / 900) * 5
    w = nn.init.xavier_uniform_(gn.tensor(np.zeros((300, 200), np.float32)))
    assert abs(w.numpy()).max() <= math.sqrt(6 / 500) and w.dtype == np.float32
    assert abs(nn.init.lecun_normal((400, 500)).numpy().std() - math.sqrt(1 / 500)) < 1e-3
    assert abs(nn.init.xavier_normal_(gn.tensor(np.zeros((300, 300)))).numpy().std() - math.sqrt(1 / 300)) < 1e-3
    assert not nn.init.zeros_(fc.weight).numpy().any() and nn.init.ones_(fc.bias).numpy().all()
    gn.manual_seed(5)
    a = nn.init.kaiming_uniform((6, 1, 5, 5)).numpy()
    gn.manual_seed(5)
    np.testing.assert_array_equal(a, nn.init.kaiming_uniform((6, 1, 5, 5)).numpy())
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(gn.tensor(np.zeros(3)))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: nn.Conv2d(1, 2, 3)(gn.tensor(np.zeros((1, 5, 5), np.float32))), ValueError,
     r"Conv2d: input must be 4-D \(N, C, H, W\), got shape \(1, 5, 5\)"),
    (lambda: nn.Linear(3, 2)(gn.tensor(np.zeros((2, 4), np.float32))), ValueError, "x has 4 features"),
    (lambda: nn.Linear(0, 2), ValueError, "in_features must be a positive int, got 0"),
    (lambda: nn.Linear(2, 2, dtype=np.int32), TypeError, "dtype must be a floating-point type"),
    (lambda: nn.Dropout(1.0), ValueError, r"p must be a probability in \[0, 1\), got 1.0"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size must be an int >= 1"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction must be one of"),
])
def test_layer_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules(backend, rng, reduction):
    x, y = t(rng, 3, 4), t(rng, 3, 4, grad=False)
    labels = gn.tensor(np.array([0, 3, 1]))
    pairs = [
        (nn.CrossEntropyLoss(reduction=reduction), F.softmax_cross_entropy, (x, labels)),
        (nn.MSELoss(reduction), F.mse_loss, (x, y)),
        (nn.L1Loss(reduction), F.l1_loss, (x, y)),
        (nn.BCEWithLogitsLoss(reduction), F.binary_cross_entropy_with_logits, (x, gn.tensor((y.numpy() > 0) * 1.0))),
        (nn.BCELoss(reduction), F.binary_cross_entropy, (F.sigmoid(x), gn.tensor((y.numpy() > 0) * 1.0))),
    ]
    for module, fn, args in pairs:
        np.testing.assert_allclose(module(*args).numpy(), fn(*args, reduction=reduction).numpy())
    assert gn.gradcheck(lambda x: nn.CrossEntropyLoss(reduction=reduction)(x, labels), [x])
    assert repr(nn.MSELoss()) == "MSELoss()"
