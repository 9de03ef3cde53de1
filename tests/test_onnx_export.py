"""gpunet.onnx.export: each model is exported, checked with onnx's full checker, run with onnx's
reference evaluator (and onnxruntime when it is installed) and compared with gpunet's own eval
output, at the export's batch size and, through ``dynamic_axes``, at another one.

Tolerance: float32 through the same maths in another order of summation (GEMMs, convolutions,
reductions, the recurrences of LSTM/GRU) differs by a few ulps (1.2e-7) per op, amplified by
at most a few dozen ops: rtol 1e-4 / atol 1e-5 is far above that and far below any real
mistake (a wrong gate order, a missing bias or a wrong axis moves results by > 1e-2).
"""
import importlib.util

import numpy as np
import pytest

import gpunet as gn
from gpunet import function as _function
from gpunet import nn
from gpunet import functional as F

TOL = dict(rtol=1e-4, atol=1e-5)
needs_onnx = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx not installed")
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None


def runners(proto, reference=True):
    """Callables feeds -> outputs: onnx's reference evaluator, and onnxruntime if installed."""
    from onnx.reference import ReferenceEvaluator

    found = [ReferenceEvaluator(proto).run] if reference else []
    if HAVE_ORT:
        import onnxruntime as ort

        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        found.append(session.run)
    return found


def roundtrip(model, args, tmp_path, other=None, reference=True, **kw):
    """Export ``model`` on ``args`` to a file, check it fully, and compare every runtime's outputs
    with gpunet's eval outputs on ``args`` and on each tuple of arrays in ``other``."""
    import onnx

    path = tmp_path / "model.onnx"
    args = args if isinstance(args, tuple) else (args,)
    gn.onnx.export(model, args, path, **kw)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert _function._tracer is None
    names = [i.name for i in proto.graph.input][:len(args)]
    for arrays in [tuple(a.numpy() for a in args), *(other or [])]:
        was = model.training
        expected = model.eval()(*[gn.tensor(a) for a in arrays])
        model.train(was)
        expected = [t.numpy() for t in _flat(expected)]
        for run in runners(proto, reference):
            got = run(None, dict(zip(names, arrays)))
            assert len(got) == len(expected)
            for g, e in zip(got, expected):
                assert g.shape == e.shape
                np.testing.assert_allclose(g, e, **TOL)
    return proto


def _flat(out):
    if isinstance(out, gn.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def batch_axes(*names):
    return {n: {0: "batch"} for n in names}


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _randomise_bn(model, seed=1):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean._data[...] = rng.standard_normal(c)
            m.running_var._data[...] = rng.uniform(0.5, 2.0, c)
            if m.affine:
                m.weight._data[...] = rng.uniform(0.5, 1.5, c)
                m.bias._data[...] = rng.standard_normal(c)


def ops_of(proto):
    return [n.op_type for n in proto.graph.node]


@needs_onnx
def test_lenet_with_batch_norm_at_two_batch_sizes(tmp_path):
    gn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Tanh(), nn.Linear(84, 10))
    _randomise_bn(model)
    model.train()
    proto = roundtrip(model, gn.tensor(randn(4, 1, 28, 28)), tmp_path, [(randn(7, 1, 28, 28, seed=2),)],
                      input_names=["images"], output_names=["logits"],
                      dynamic_axes=batch_axes("images", "logits"))
    assert model.training  # the modes come back
    assert ops_of(proto).count("BatchNormalization") == 3 and "Dropout" not in ops_of(proto)
    init = {i.name for i in proto.graph.initializer}
    assert {"0.weight", "1.running_mean", "1.running_var", "13.bias"} <= init
    assert [d.dim_param for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch", ""]


@needs_onnx
@pytest.mark.parametrize("conv", [
    dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(groups=2, bias=False),
    dict(stride=(1, 2), padding=(2, 1), groups=4)])
@pytest.mark.parametrize("pool", ["global", "divides", "uneven", "max_ceil", "max_padded"])
def test_conv_variants_and_pools(tmp_path, conv, pool):
    gn.manual_seed(1)
    pools = {"global": nn.AdaptiveAvgPool2d(1), "divides": nn.AdaptiveAvgPool2d((2, 2)),
             "uneven": nn.AdaptiveAvgPool2d((4, 5)),
             "max_ceil": nn.MaxPool2d(3, stride=2, ceil_mode=True),
             "max_padded": nn.MaxPool2d(3, stride=1, padding=1)}
    model = nn.Sequential(nn.Conv2d(4, 8, 3, **conv), nn.ReLU(), nn.BatchNorm2d(8, affine=False),
                          pools[pool], nn.Flatten())
    _randomise_bn(model)
    x = gn.tensor(randn(3, 4, 12, 12))
    roundtrip(model, x, tmp_path, [(randn(5, 4, 12, 12, seed=3),)],
              dynamic_axes=batch_axes("input", "output"))


@needs_onnx
@pytest.mark.parametrize("head", [nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Identity()])
def test_mlp_with_every_activation(tmp_path, head):
    gn.manual_seed(2)
    model = nn.Sequential(
        nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.LeakyReLU(0.1), nn.ELU(0.7),
        nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU("tanh"), nn.Sigmoid(),
        nn.Linear(32, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 5), head)
    roundtrip(model, gn.tensor(randn(6, 10)), tmp_path, [(randn(2, 10, seed=4),)],
              dynamic_axes={"input": [0], "output": [0]})


@needs_onnx
def test_mlp_on_each_backend(tmp_path, backend):
    gn.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).to(backend)
    x = gn.tensor(randn(4, 6)).to(backend)
    proto = gn.onnx.export(model, x, None)
    (got,) = runners(proto)[0](None, {"input": x.numpy()})
    np.testing.assert_allclose(got, model(x).numpy(), **TOL)


class LanguageModel(nn.Module):
    def __init__(self, kind="LSTM", batch_first=False, layers=2, bidirectional=False, bias=True):
        super().__init__()
        self.embed = nn.Embedding(50, 12)
        rnn = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}[kind]
        self.rnn = rnn(12, 16, num_layers=layers, batch_first=batch_first, dropout=0.2,
                       bidirectional=bidirectional, bias=bias)
        self.head = nn.Linear(16 * (2 if bidirectional else 1), 50)

    def forward(self, ids):
        out, state = self.rnn(self.embed(ids))
        return self.head(out), state


def _ids(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 50, shape).astype(np.int64)


@needs_onnx
@pytest.mark.parametrize("batch_first", [False, True])
def test_embedding_lstm_linear_language_model(tmp_path, batch_first):
    gn.manual_seed(4)
    model = LanguageModel("LSTM", batch_first)
    shape, other = ((3, 7), (5, 4)) if batch_first else ((7, 3), (4, 5))
    axes = {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}
    proto = roundtrip(model, gn.tensor(_ids(shape)), tmp_path, [(_ids(other, 1),)],
                      input_names=["ids"], output_names=["logits", "h_n", "c_n"],
                      dynamic_axes={"ids": axes, "logits": axes, "h_n": {1: "batch"},
                                    "c_n": {1: "batch"}})
    assert ops_of(proto).count("LSTM") == 2 and "Gather" in ops_of(proto)


@needs_onnx
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional,bias", [(False, True), (True, True), (False, False)])
def test_recurrent_layers(tmp_path, kind, bidirectional, bias):
    gn.manual_seed(5)
    model = LanguageModel(kind, batch_first=True, bidirectional=bidirectional, bias=bias)
    proto = roundtrip(model, gn.tensor(_ids((2, 6))), tmp_path, [(_ids((4, 3), 2),)],
                      dynamic_axes={"input": {0: "batch", 1: "time"}})
    assert ops_of(proto).count(kind) == 2


@needs_onnx
@pytest.mark.skipif(not HAVE_ORT, reason="onnx's reference RNN has no Relu: onnxruntime runs it")
def test_batch_norm_1d_on_sequences_functional_batch_norm_and_a_relu_rnn(tmp_path):
    gn.manual_seed(10)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(4)
            self.register_buffer("mean", gn.tensor(randn(4, seed=1)))
            self.register_buffer("var", gn.tensor(np.linspace(0.5, 2, 4).astype(np.float32)))
            self.rnn = nn.RNN(4, 5, nonlinearity="relu", batch_first=True)
            self.fc = nn.Linear(5, 2)

        def forward(self, x):  # (N, C, L)
            x = F.batch_norm(self.bn(x), self.mean, self.var, training=False, eps=1e-3)
            out, h = self.rnn(x.transpose(1, 2))
            return self.fc(out[:, -1]), h

    model = Seq()
    _randomise_bn(model)
    roundtrip(model, gn.tensor(randn(3, 4, 6)), tmp_path, [(randn(5, 4, 9, seed=2),)],
              reference=False, dynamic_axes={"input": {0: "N", 2: "L"}})


@needs_onnx
def test_gru_with_given_initial_state(tmp_path):
    gn.manual_seed(6)
    gru = nn.GRU(5, 7, num_layers=2, batch_first=False)
    x, h0 = gn.tensor(randn(4, 3, 5)), gn.tensor(randn(2, 3, 7, seed=1))
    roundtrip(gru, (x, h0), tmp_path, [(randn(6, 2, 5, seed=2), randn(2, 2, 7, seed=3))],
              input_names=["x", "h0"], dynamic_axes={"x": {0: "T", 1: "N"}, "h0": {1: "N"}})


@needs_onnx
def test_lstm_with_given_initial_state(tmp_path):
    gn.manual_seed(7)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 6, num_layers=2, bidirectional=True)

        def forward(self, x, h0, c0):
            out, (h, c) = self.lstm(x, (h0, c0))
            return out[-1], h, c

    x, h0, c0 = gn.tensor(randn(4, 3, 5)), gn.tensor(randn(4, 3, 6, seed=1)), gn.tensor(randn(4, 3, 6, seed=2))
    roundtrip(Wrapper(), (x, h0, c0), tmp_path)


@needs_onnx
def test_layer_norm_model(tmp_path):
    gn.manual_seed(8)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)
            self.ln1 = nn.LayerNorm(16)
            self.ln2 = nn.LayerNorm((5, 8), elementwise_affine=False)

        def forward(self, x):  # (N, 5, 8)
            h = self.fc2(F.gelu(self.ln1(self.fc1(x))))
            return self.ln2(x + h)

    model = Block()
    model.ln1.weight._data[...] = randn(16, seed=1)
    model.ln1.bias._data[...] = randn(16, seed=2)
    proto = roundtrip(model, gn.tensor(randn(3, 5, 8)), tmp_path, [(randn(6, 5, 8, seed=3),)],
                      dynamic_axes=batch_axes("input", "output"))
    assert ops_of(proto).count("LayerNormalization") == 2


class Glue(nn.Module):
    """A user module whose forward mixes layers with tensor ops."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(6, 8)
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.scale = nn.Parameter(np.full((1, 8), 0.5, np.float32))
        self.register_buffer("offset", gn.tensor(np.linspace(-1, 1, 8).astype(np.float32)))

    def forward(self, x, img):
        n = x.shape[0]
        h = F.relu(self.a(x)) * self.scale + self.b(x) / 2.0 - self.offset     # (N, 8)
        g = (h @ h.T).softmax(-1) @ h                                            # (N, 8)
        c = self.conv(img).view(n, -1)                                           # (N, 3*4*4)
        c = c.reshape(n, 3, 16).permute(0, 2, 1).transpose(1, 2).flatten(1)     # (N, 48)
        z = gn.cat([g, h.sigmoid(), c[:, ::2], c[:, -4:]], dim=1)               # (N, 8+8+24+4)
        z = z.unsqueeze(1).squeeze(1) ** 2 + (-z).exp()
        stats = gn.stack([z.mean(1), z.sum(dim=1), z.amax(1), z.std(dim=1)], dim=1)  # (N, 4)
        return F.log_softmax(z, dim=1), stats.tanh().abs().clamp(0.1, 0.9), z[:, None, 1:3].sqrt()


@needs_onnx
@pytest.mark.parametrize("opset", [17, 18])
def test_user_module_with_glue_ops(tmp_path, opset):
    gn.manual_seed(9)
    model = Glue()
    args = (gn.tensor(randn(4, 6)), gn.tensor(randn(4, 2, 4, 4, seed=1)))
    proto = roundtrip(model, args, tmp_path, [(randn(9, 6, seed=2), randn(9, 2, 4, 4, seed=3))],
                      input_names=["x", "img"], output_names=["logp", "stats", "pick"],
                      dynamic_axes=batch_axes("x", "img", "logp", "stats", "pick"),
                      opset_version=opset)
    init = {i.name for i in proto.graph.initializer}
    assert {"scale", "offset", "a.weight", "conv.bias"} <= init


@needs_onnx
def test_indexing_with_an_index_input_and_a_constant_index(tmp_path):
    class Picks(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(10, 4)

        def forward(self, x, idx):
            rows = x.detach()[idx]                          # idx: a graph input
            cols = x[:, np.array([3, 0, 3])]                # a constant index array
            return rows * 2, cols[..., None] + 1, F.embedding(idx, self.table.weight)[:, None, :3]

    x, idx = gn.tensor(randn(6, 5)), gn.tensor(np.array([5, 0, 2, 2, 1, 4, 3]))
    roundtrip(Picks(), (x, idx), tmp_path, [(randn(6, 5, seed=1), np.array([1, 0, 5, 3]))],
              dynamic_axes={"input_1": [0]})
