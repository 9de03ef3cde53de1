"""The nn.Transformer family against PyTorch: the same state_dict keys (loaded key for key),
outputs and gradients (inputs and every parameter) in eval mode, for batch_first True/False,
bool and float masks, key padding, causal masks, norm_first and gelu, and the helpers that
tests/test_nn_attention.py (nn.MultiheadAttention, the same way) shares."""
import math
import warnings

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import nn

torch = pytest.importorskip("torch")
TNN = torch.nn

# float32 throughout: outputs at rtol 1e-5 / atol 1e-6; gradients of a random projection of the
# outputs sum over every position and head, so they get atol 1e-5 (float32 summation order).
RTOL, ATOL, GRAD_ATOL = 1e-5, 1e-6, 1e-5


@pytest.fixture(autouse=True)
def _numpy_backend():
    with gn.use_backend("numpy"):
        yield


def _load(gm, tm):
    """Copy ``tm``'s weights into ``gm`` after checking the keys are PyTorch's, in order."""
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    gm.eval()
    tm.eval()
    return gm, tm


def _pair(tm_factory, gm_factory, seed=0):
    torch.manual_seed(seed)
    return _load(gm_factory(), tm_factory())


def _arrays(*shapes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _outputs(out):
    return [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]


def _compare(gm, tm, arrays, call, grad_atol=GRAD_ATOL):
    """``call(lib, module, inputs)`` on both libraries: equal outputs, and equal gradients of
    sum(output * R) for every input and every parameter."""
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_in = [gn.tensor(a, requires_grad=True) for a in arrays]
    t_out, g_out = _outputs(call(torch, tm, t_in)), _outputs(call(gn, gm, g_in))
    assert len(t_out) == len(g_out)
    rng = np.random.default_rng(2)
    t_loss, g_loss = 0, 0
    for t, g in zip(t_out, g_out):
        assert tuple(g.shape) == tuple(t.shape)
        np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=RTOL, atol=ATOL)
        r = rng.standard_normal(tuple(t.shape)).astype(np.float32)
        t_loss = t_loss + (t * torch.tensor(r)).sum()
        g_loss = g_loss + (g * gn.tensor(r)).sum()
    t_loss.backward()
    g_loss.backward()
    for t, g in zip(t_in, g_in):
        if t.grad is None:
            assert g.grad is None or not g.grad.numpy().any()
            continue
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=RTOL, atol=grad_atol)
    t_params, g_params = dict(tm.named_parameters()), dict(gm.named_parameters())
    assert list(g_params) == list(t_params)
    for name, tp in t_params.items():
        assert g_params[name].grad is not None, name
        np.testing.assert_allclose(g_params[name].grad.numpy(), tp.grad.numpy(), rtol=RTOL,
                                   atol=grad_atol, err_msg=name)
    return g_out


def _mask(lib, array):
    return lib.tensor(array)


# --- shapes and masks, shared with test_nn_attention.py (MultiheadAttention) --------------
E, H, L, S, N = 8, 2, 5, 6, 3


def _seq(batch_first, length, n=N, e=E):
    return (n, length, e) if batch_first else (length, n, e)


def _attn_masks(kind, src_len, rng):
    """(attn_mask, key_padding_mask, is_causal) as NumPy arrays for one mask kind."""
    causal = np.triu(np.ones((L, src_len), bool), 1)
    pad = np.zeros((N, src_len), bool)
    pad[0, -2:] = True
    pad[2, -1] = True
    heads = rng.random((N * H, L, src_len)) < 0.3
    heads[..., 0] = False  # every row keeps one key
    as_float = lambda m: np.where(m, -np.inf, 0.0).astype(np.float32)  # noqa: E731
    noise = rng.standard_normal((L, src_len)).astype(np.float32)
    return {
        "bool": (causal, None, False),
        "float": (noise, None, False),
        "float_neg_inf": (as_float(causal) + noise, None, False),
        "bool3d": (heads, None, False),
        "float3d": (as_float(heads), None, False),
        "kpm_bool": (None, pad, False),
        "kpm_float": (None, as_float(pad), False),
        "both_bool": (causal, pad, False),
        "both_float": (as_float(causal), as_float(pad), False),
        "causal_hint": (causal, None, True),
        "causal_hint_kpm": (as_float(causal), as_float(pad), True),
    }[kind]


# --- the Transformer family -------------------------------------------------------------------
D, NHEAD, FF = 8, 2, 16


def _activations(name):
    return {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"),
            "fn_gelu": (torch.nn.functional.gelu, F.gelu),
            "module_gelu": (TNN.GELU(), nn.GELU()), "fn_tanh": (torch.tanh, F.tanh)}[name]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "fn_gelu", "module_gelu", "fn_tanh"])
def test_encoder_layer_matches_torch(batch_first, norm_first, activation):
    t_act, g_act = _activations(activation)
    kw = dict(dim_feedforward=FF, batch_first=batch_first, norm_first=norm_first)
    gm, tm = _pair(lambda: TNN.TransformerEncoderLayer(D, NHEAD, activation=t_act, **kw),
                   lambda: nn.TransformerEncoderLayer(D, NHEAD, activation=g_act, **kw))
    mask, pad, _ = _attn_masks("both_bool", L, np.random.default_rng(6))
    _compare(gm, tm, _arrays(_seq(batch_first, L, e=D)),
             lambda lib, m, x: m(x[0], src_mask=_mask(lib, mask),
                                 src_key_padding_mask=_mask(lib, pad)))
    assert gm.activation_relu_or_gelu == tm.activation_relu_or_gelu


def test_encoder_layer_defaults_like_torch():
    g, t = nn.TransformerEncoderLayer(16, 4), TNN.TransformerEncoderLayer(16, 4)
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t.state_dict().items()}
    assert g.linear1.out_features == 2048 and g.dropout.p == 0.1 and g.norm1.eps == 1e-5
    assert g.activation is F.relu and not g.norm_first and not g.self_attn.batch_first
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(16, 4, activation="tanh")
    with pytest.raises(AssertionError, match="divisible"):
        nn.TransformerEncoderLayer(10, 4)
    nb = nn.TransformerEncoderLayer(16, 4, 32, bias=False)
    assert list(nb.state_dict()) == list(TNN.TransformerEncoderLayer(16, 4, 32, bias=False).state_dict())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["causal_float", "causal_log_tril", "kpm", "none"])
def test_encoder_matches_torch(batch_first, masks):
    def make(lib):
        layer = lib.TransformerEncoderLayer(D, NHEAD, FF, batch_first=batch_first)
        return lib.TransformerEncoder(layer, num_layers=2, norm=lib.LayerNorm(D))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: enable_nested_tensor without batch_first
        gm, tm = _pair(lambda: make(TNN), lambda: make(nn))
    with np.errstate(divide="ignore"):
        log_tril = np.log(np.tril(np.ones((L, L), np.float32)))
    pad = np.zeros((N, L), bool)
    pad[1, -2:] = True

    def call(lib, m, x):
        if masks == "causal_float":
            mask = (TNN.Transformer if lib is torch else nn.Transformer).generate_square_subsequent_mask(L)
            return m(x[0], mask=mask)
        if masks == "causal_log_tril":
            return m(x[0], mask=lib.tensor(log_tril))
        if masks == "kpm":
            return m(x[0], src_key_padding_mask=lib.tensor(pad))
        return m(x[0])

    out = _compare(gm, tm, _arrays(_seq(batch_first, L, e=D)), call)
    assert np.isfinite(out[0].numpy()).all()


def test_encoder_deep_copies_its_layer():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, num_layers=3)
    assert isinstance(enc.layers, nn.ModuleList) and len(enc.layers) == 3 and enc.num_layers == 3
    assert all(lay is not layer for lay in enc.layers)
    w0, w1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert w0 is not w1 and w0._data is not w1._data and w0.backend is layer.linear1.weight.backend
    np.testing.assert_array_equal(w0.numpy(), w1.numpy())
    nn.init.zeros_(w0)
    assert w1.numpy().any() and layer.linear1.weight.numpy().any()
    assert list(enc.state_dict())[:2] == ["layers.0.self_attn.in_proj_weight",
                                          "layers.0.self_attn.in_proj_bias"]
    assert enc.enable_nested_tensor and enc.mask_check and enc.norm is None
    out = enc(gn.randn(L, N, D))  # the copies run (same backend objects)
    assert tuple(out.shape) == (L, N, D)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer_matches_torch(batch_first, norm_first, activation):
    kw = dict(dim_feedforward=FF, batch_first=batch_first, norm_first=norm_first, activation=activation)
    gm, tm = _pair(lambda: TNN.TransformerDecoderLayer(D, NHEAD, **kw),
                   lambda: nn.TransformerDecoderLayer(D, NHEAD, **kw))
    tgt_mask = np.triu(np.ones((L, L), bool), 1)
    mem_pad = np.zeros((N, S), bool)
    mem_pad[0, -3:] = True
    tgt_pad = np.zeros((N, L), bool)
    tgt_pad[2, -1] = True
    _compare(gm, tm, _arrays(_seq(batch_first, L, e=D), _seq(batch_first, S, e=D)),
             lambda lib, m, x: m(x[0], x[1], tgt_mask=_mask(lib, tgt_mask),
                                 tgt_key_padding_mask=_mask(lib, tgt_pad),
                                 memory_key_padding_mask=_mask(lib, mem_pad)))


@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_matches_torch(batch_first):
    def make(lib):
        layer = lib.TransformerDecoderLayer(D, NHEAD, FF, batch_first=batch_first)
        return lib.TransformerDecoder(layer, num_layers=2, norm=lib.LayerNorm(D))

    gm, tm = _pair(lambda: make(TNN), lambda: make(nn))
    memory_mask = np.random.default_rng(7).standard_normal((L, S)).astype(np.float32)

    def call(lib, m, x):
        causal = (TNN.Transformer if lib is torch else nn.Transformer).generate_square_subsequent_mask(L)
        return m(x[0], x[1], tgt_mask=causal, memory_mask=lib.tensor(memory_mask))

    _compare(gm, tm, _arrays(_seq(batch_first, L, e=D), _seq(batch_first, S, e=D)), call)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch's
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(batch_first, norm_first):
    kw = dict(d_model=D, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=FF, batch_first=batch_first, norm_first=norm_first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm, tm = _pair(lambda: TNN.Transformer(**kw), lambda: nn.Transformer(**kw))
    src_pad = np.zeros((N, S), bool)
    src_pad[1, -2:] = True
    tgt_pad = np.zeros((N, L), bool)
    tgt_pad[0, -1] = True

    def call(lib, m, x):
        return m(x[0], x[1], tgt_mask=m.generate_square_subsequent_mask(L),
                 src_key_padding_mask=lib.tensor(src_pad), tgt_key_padding_mask=lib.tensor(tgt_pad),
                 memory_key_padding_mask=lib.tensor(src_pad))

    _compare(gm, tm, _arrays(_seq(batch_first, S, e=D), _seq(batch_first, L, e=D)), call)


def test_transformer_defaults_and_mask():
    for sz in (1, 4):
        np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(sz).numpy(),
                                      TNN.Transformer.generate_square_subsequent_mask(sz).numpy())
    m = nn.Transformer.generate_square_subsequent_mask(3, dtype=gn.float64)
    assert m.dtype == np.float64
    gn.manual_seed(0)
    model = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=32)
    assert isinstance(model.encoder, nn.TransformerEncoder)
    assert isinstance(model.decoder, nn.TransformerDecoder)
    assert isinstance(model.encoder.norm, nn.LayerNorm) and model.d_model == 16 and model.nhead == 2
    w = model.encoder.layers[0].linear1.weight.numpy()  # re-drawn with xavier_uniform_
    assert np.abs(w).max() <= math.sqrt(6.0 / (16 + 32))
    big = nn.Transformer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: enable_nested_tensor without batch_first
        t_big = TNN.Transformer()
    assert {k: tuple(v.shape) for k, v in big.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t_big.state_dict().items()}
    assert list(big.state_dict()) == list(t_big.state_dict())
    custom = nn.Transformer(d_model=16, nhead=2, custom_encoder=nn.Identity(), num_decoder_layers=1,
                            dim_feedforward=32)
    assert isinstance(custom.encoder, nn.Identity)


def test_transformer_errors_like_torch():
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(gn.randn(5, 2, 8), gn.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        model(gn.randn(5, 2, 8), gn.randn(4, 2, 6))


# --- pytorch/examples word_language_model: a subclass of nn.Transformer ----------------------
def _word_language_model(lib, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
    """The example's TransformerModel and PositionalEncoding, written once for both libraries."""
    base = lib.nn if lib is torch else nn
    fn = torch.nn.functional if lib is torch else F

    class PositionalEncoding(base.Module):
        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = base.Dropout(p=dropout)
            position = np.arange(max_len, dtype=np.float32)[:, None]
            div_term = np.exp(np.arange(0, d_model, 2).astype(np.float32) * (-math.log(10000.0) / d_model))
            pe = np.zeros((max_len, d_model), np.float32)
            pe[:, 0::2] = np.sin(position * div_term)
            pe[:, 1::2] = np.cos(position * div_term)
            self.register_buffer("pe", lib.tensor(pe[None].transpose(1, 0, 2).copy()))

        def forward(self, x):
            x = x + self.pe[:x.size(0), :]
            return self.dropout(x)

    class TransformerModel(base.Transformer):
        def __init__(self):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = base.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = base.Linear(ninp, ntoken)
            self.init_weights()

        def _generate_square_subsequent_mask(self, sz):
            with np.errstate(divide="ignore"):
                return lib.tensor(np.log(np.tril(np.ones((sz, sz), np.float32))))

        def init_weights(self):
            base.init.uniform_(self.input_emb.weight, -0.1, 0.1)
            base.init.zeros_(self.decoder.bias)
            base.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, src, has_mask=True):
            if has_mask:
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    self.src_mask = self._generate_square_subsequent_mask(len(src))
            else:
                self.src_mask = None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=self.src_mask)
            output = self.decoder(output)
            return fn.log_softmax(output, dim=-1)

    return TransformerModel()


def test_word_language_model_subclass_matches_torch_and_trains():
    args = dict(ntoken=20, ninp=16, nhead=2, nhid=32, nlayers=2)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = _word_language_model(torch, **args)
    gm = _word_language_model(gn, **args)
    assert set(gm.state_dict()) == set(tm.state_dict())  # key order: see the report (module.py)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    gm.eval()
    tm.eval()
    tokens = np.random.default_rng(8).integers(0, 20, (7, 3))
    t_out = tm(torch.tensor(tokens))
    g_out = gm(gn.tensor(tokens))
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=RTOL, atol=1e-5)
    target = np.random.default_rng(9).integers(0, 20, 21)
    torch.nn.functional.nll_loss(t_out.view(-1, 20), torch.tensor(target)).backward()
    F.nll_loss(g_out.reshape(-1, 20), gn.tensor(target)).backward()
    t_params = dict(tm.named_parameters())
    for name, p in gm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=RTOL,
                                   atol=GRAD_ATOL, err_msg=name)
    # a few training steps with dropout on: the loss on the fixed batch goes down
    gm.train()
    opt = gn.optim.SGD(gm.parameters(), lr=0.5)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = F.nll_loss(gm(gn.tensor(tokens)).reshape(-1, 20), gn.tensor(target))
        loss.backward()
        nn.utils.clip_grad_norm_(gm.parameters(), 0.25)
        opt.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
