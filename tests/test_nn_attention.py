"""nn.MultiheadAttention against PyTorch: the same state_dict keys, outputs and attention weights,
and gradients (inputs and every parameter), for batch_first True/False, bool and float masks, key
padding, causal hints, kdim/vdim, bias_kv and zero_attn; its errors, initialisation and dropout.
The helpers are tests/test_nn_transformer.py's."""
import math
import time

import numpy as np
import pytest

import gpunet as gn
from gpunet import nn

torch = pytest.importorskip("torch")

from test_nn_transformer import (E, H, L, N, S, TNN, _arrays,  # noqa: E402  (after the skip)
                                 _attn_masks, _compare, _mask, _pair, _seq)


@pytest.fixture(autouse=True)
def _numpy_backend():
    with gn.use_backend("numpy"):
        yield


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mode", ["self", "kv_same", "distinct"])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_mha_matches_torch(batch_first, mode, need_weights, average):
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, batch_first=batch_first),
                   lambda: nn.MultiheadAttention(E, H, batch_first=batch_first))
    src_len = L if mode == "self" else S
    arrays = _arrays(_seq(batch_first, L), _seq(batch_first, src_len), _seq(batch_first, src_len))

    def call(lib, m, x):
        q, k, v = {"self": (x[0],) * 3, "kv_same": (x[0], x[1], x[1]), "distinct": x}[mode]
        return m(q, k, v, need_weights=need_weights, average_attn_weights=average)

    out = _compare(gm, tm, arrays, call)
    assert len(out) == (2 if need_weights else 1)
    if need_weights:
        want = (N, L, src_len) if average else (N, H, L, src_len)
        assert tuple(out[1].shape) == want
        np.testing.assert_allclose(out[1].numpy().sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kind", ["bool", "float", "float_neg_inf", "bool3d", "float3d", "kpm_bool",
                                  "kpm_float", "both_bool", "both_float", "causal_hint",
                                  "causal_hint_kpm"])
def test_mha_masks_match_torch(batch_first, need_weights, kind):
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, batch_first=batch_first),
                   lambda: nn.MultiheadAttention(E, H, batch_first=batch_first))
    self_attn = kind.startswith("causal")
    src_len = L if self_attn else S
    attn_mask, kpm, is_causal = _attn_masks(kind, src_len, np.random.default_rng(3))
    arrays = _arrays(_seq(batch_first, L), _seq(batch_first, src_len))

    def call(lib, m, x):
        kv = x[0] if self_attn else x[1]
        return m(x[0], kv, kv, need_weights=need_weights, is_causal=is_causal,
                 attn_mask=None if attn_mask is None else _mask(lib, attn_mask),
                 key_padding_mask=None if kpm is None else _mask(lib, kpm))

    out = _compare(gm, tm, arrays, call)
    assert all(np.isfinite(o.numpy()).all() for o in out)
    if need_weights and kpm is not None and kpm.dtype == bool:
        assert not out[1].numpy()[0, :, -2:].any()  # padded keys get no weight


def test_mha_log_tril_mask_has_no_nan_and_matches_torch():
    """word_language_model's mask: log(tril(ones)) (0 / -inf), forward and backward finite."""
    with np.errstate(divide="ignore"):
        mask = np.log(np.tril(np.ones((L, L), np.float32)))
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H), lambda: nn.MultiheadAttention(E, H))
    out = _compare(gm, tm, _arrays((L, N, E)),
                   lambda lib, m, x: m(x[0], x[0], x[0], attn_mask=_mask(lib, mask)))
    assert np.isfinite(out[0].numpy()).all()
    assert np.allclose(np.triu(out[1].numpy()[0], 1), 0)  # nothing attends ahead


def test_mha_fully_masked_row_gives_nan_like_torch():
    """need_weights=True: PyTorch's softmax gives NaN in a row that allows no key."""
    mask = np.zeros((L, L), bool)
    mask[1] = True
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H), lambda: nn.MultiheadAttention(E, H))
    (x,) = _arrays((L, N, E))
    t_out, _ = tm(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(mask))
    with np.errstate(invalid="ignore"):  # -inf - -inf in the all-masked row, as in PyTorch
        g_out, _ = gm(*(gn.tensor(x),) * 3, attn_mask=gn.tensor(mask))
    assert np.array_equal(np.isnan(g_out.numpy()), np.isnan(t_out.detach().numpy()))
    assert np.isnan(g_out.numpy()[1]).all() and np.isfinite(np.delete(g_out.numpy(), 1, 0)).all()


@pytest.mark.parametrize("which", ["attn_mask", "key_padding_mask"])
def test_mha_fully_masked_row_without_weights_is_zero_like_torch(which):
    """need_weights=False (the transformer layers' path): PyTorch's SDPA gives such a row zero
    weights, so the output there is out_proj's bias; gradients stay finite."""
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H), lambda: nn.MultiheadAttention(E, H))
    with torch.no_grad():
        tm.out_proj.bias.normal_()
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    if which == "attn_mask":
        mask = np.zeros((L, S), bool)
        mask[1] = True
    else:
        mask = np.zeros((N, S), bool)
        mask[2] = True  # every key of sample 2 is padding
    out = _compare(gm, tm, _arrays((L, N, E), (S, N, E)),
                   lambda lib, m, x: m(x[0], x[1], x[1], need_weights=False, **{which: _mask(lib, mask)}))
    dead = out[0].numpy()[1] if which == "attn_mask" else out[0].numpy()[:, 2]
    np.testing.assert_allclose(dead, np.broadcast_to(gm.out_proj.bias.numpy(), dead.shape), rtol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_kdim_vdim_separate_projections(batch_first):
    kw = dict(kdim=5, vdim=7, batch_first=batch_first)
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, **kw), lambda: nn.MultiheadAttention(E, H, **kw))
    assert list(gm.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                     "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert gm.in_proj_weight is None and tuple(gm.k_proj_weight.shape) == (E, 5)
    pad = np.zeros((N, S), bool)
    pad[1, :3] = True
    arrays = _arrays(_seq(batch_first, L), _seq(batch_first, S, e=5), _seq(batch_first, S, e=7))
    _compare(gm, tm, arrays, lambda lib, m, x: m(*x, key_padding_mask=_mask(lib, pad)))


@pytest.mark.parametrize("add_bias_kv,add_zero_attn", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_bias_kv_and_zero_attn(add_bias_kv, add_zero_attn, need_weights):
    kw = dict(add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn)
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, **kw), lambda: nn.MultiheadAttention(E, H, **kw))
    if add_bias_kv:
        assert tuple(gm.bias_k.shape) == (1, 1, E) and "bias_v" in gm.state_dict()
    rng = np.random.default_rng(4)
    attn_mask, kpm, _ = _attn_masks("both_bool", S, rng)
    _compare(gm, tm, _arrays((L, N, E), (S, N, E)),
             lambda lib, m, x: m(x[0], x[1], x[1], attn_mask=_mask(lib, attn_mask),
                                 key_padding_mask=_mask(lib, kpm), need_weights=need_weights))


def test_mha_without_bias():
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, bias=False),
                   lambda: nn.MultiheadAttention(E, H, bias=False))
    assert list(gm.state_dict()) == ["in_proj_weight", "out_proj.weight"]
    _compare(gm, tm, _arrays((L, N, E)), lambda lib, m, x: m(x[0], x[0], x[0]))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch's
@pytest.mark.parametrize("batch_first", [False, True])  # ignored for unbatched input, as in PyTorch
def test_mha_unbatched(batch_first):
    gm, tm = _pair(lambda: TNN.MultiheadAttention(E, H, batch_first=batch_first),
                   lambda: nn.MultiheadAttention(E, H, batch_first=batch_first))
    pad = np.array([False] * (S - 1) + [True])
    heads = np.random.default_rng(5).standard_normal((H, L, S)).astype(np.float32)
    out = _compare(gm, tm, _arrays((L, E), (S, E)),
                   lambda lib, m, x: m(x[0], x[1], x[1], key_padding_mask=_mask(lib, pad),
                                       attn_mask=_mask(lib, heads), average_attn_weights=False))
    assert tuple(out[0].shape) == (L, E) and tuple(out[1].shape) == (H, L, S)


def test_mha_initialisation_like_torch():
    gn.manual_seed(0)
    m = nn.MultiheadAttention(E, H, add_bias_kv=True)
    bound = math.sqrt(6.0 / (E + 3 * E))  # xavier_uniform_ on (3E, E)
    w = m.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    assert not m.in_proj_bias.numpy().any() and not m.out_proj.bias.numpy().any()
    assert m.bias_k.numpy().any() and tuple(m.bias_v.shape) == (1, 1, E)
    t = TNN.MultiheadAttention(E, H, add_bias_kv=True)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t.state_dict().items()}


def test_mha_dropout_zeroes_weights_in_training_only():
    gn.manual_seed(0)
    m = nn.MultiheadAttention(E, H, dropout=0.5)
    (x,) = _arrays((L, 64, E))
    q = gn.tensor(x)
    _, w_eval = m.eval()(q, q, q, average_attn_weights=False)
    _, w_eval2 = m(q, q, q, average_attn_weights=False)
    assert np.array_equal(w_eval.numpy(), w_eval2.numpy())
    _, w_train = m.train()(q, q, q, average_attn_weights=False)
    kept = w_train.numpy() != 0
    assert 0.4 < 1 - kept.mean() < 0.6
    np.testing.assert_allclose(w_train.numpy()[kept], 2 * w_eval.numpy()[kept], rtol=1e-5)


def test_mha_errors_like_torch():
    for lib in (TNN, nn):
        with pytest.raises(AssertionError, match="divisible by num_heads"):
            lib.MultiheadAttention(10, 3)
        with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
            lib.MultiheadAttention(0, 2)
    with pytest.raises(ValueError, match="embed_dim=10 and num_heads=3"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(E, H)
    (x,) = _arrays((L, N, E))
    q = gn.tensor(x)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(q, q, q, is_causal=True)
    with pytest.raises(RuntimeError,
                       match=r"The shape of the 2D attn_mask is \(4, 4\), but should be \(5, 5\)"):
        m(q, q, q, attn_mask=gn.tensor(np.zeros((4, 4), bool)))
    with pytest.raises(RuntimeError, match="3D attn_mask"):
        m(q, q, q, attn_mask=gn.tensor(np.zeros((N, L, L), bool)))
    with pytest.raises(AssertionError, match="only bool and floating types of attn_mask"):
        m(q, q, q, attn_mask=gn.tensor(np.zeros((L, L), np.int64)))
    with pytest.raises(AssertionError, match="key_padding_mask"):
        m(q, q, q, key_padding_mask=gn.tensor(np.zeros((N, L + 1), bool)))
    with pytest.raises(AssertionError, match="expected `key` and `value` to be 3-D"):
        m(q, q[0], q[0])
    with pytest.raises(ValueError, match="dropout"):
        nn.MultiheadAttention(E, H, dropout=1.5)
    with pytest.raises(TypeError, match="query must be a gpunet Tensor"):
        m(x, q, q)


def test_mha_tiny_forward_on_the_cuda_backend():
    """One small forward on the cuda backend (Numba's simulator without a GPU): the numpy result."""
    torch.manual_seed(0)
    t = TNN.MultiheadAttention(4, 2)
    state = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    (x,) = _arrays((3, 1, 4))
    mask = np.triu(np.ones((3, 3), bool), 1)
    start = time.perf_counter()
    with gn.use_backend("cuda"):
        m = nn.MultiheadAttention(4, 2)
        m.load_state_dict(state)
        q = gn.tensor(x)
        out, w = m(q, q, q, attn_mask=gn.tensor(mask))
        assert out.backend.name == "cuda"
        got, got_w = out.numpy(), w.numpy()
    assert time.perf_counter() - start < 60
    want, want_w = t(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_w, want_w.detach().numpy(), rtol=1e-5, atol=1e-6)
