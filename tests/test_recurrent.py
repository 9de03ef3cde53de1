"""nn.LSTM, nn.GRU and nn.RNN against torch itself (float64), on every backend: outputs, final
states and the gradients of the input, the initial states and every parameter, with a torch
``state_dict`` loaded as it is; packed variable-length batches; the LSTM's ``forget_bias``.

Tolerance: float64 values through a few dozen GEMM and tanh steps differ from torch's only by
summation order, a few ulps (2.2e-16) amplified by the recurrence: 1e-10 is far above that and
far below any real mistake (a wrong gate or a missing term moves results by > 1e-3).
"""
import functools

import numpy as np
import pytest

import gpunet as gn
from gpunet import nn
from gpunet.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

torch = pytest.importorskip("torch")
TOL = dict(rtol=1e-10, atol=1e-10)
KINDS = {"LSTM": (nn.LSTM, torch.nn.LSTM), "GRU": (nn.GRU, torch.nn.GRU), "RNN": (nn.RNN, torch.nn.RNN),
         "RNN-relu": (functools.partial(nn.RNN, nonlinearity="relu"),
                      functools.partial(torch.nn.RNN, nonlinearity="relu"))}


def close(ours, theirs):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOL)


def pair(kind, *args, **kw):
    """A torch layer and a gpunet layer holding its state_dict."""
    ours_cls, torch_cls = KINDS[kind]
    torch.manual_seed(0)
    theirs = torch_cls(*args, **kw).double()
    ours = ours_cls(*args, dtype=np.float64, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def states(kind, rng, layers, n, hs):
    h = rng.standard_normal((layers, n, hs))
    return (h, rng.standard_normal((layers, n, hs))) if kind == "LSTM" else (h,)


def run(layer, x, st, lstm):
    """Output, final states and a scalar loss that weighs every output and state differently."""
    out, fin = layer(x, tuple(st) if lstm else st[0])
    fin = fin if lstm else (fin,)
    lib = gn if isinstance(x, gn.Tensor) else torch
    w = lib.tensor(np.cos(np.arange(int(np.prod(out.shape)))).reshape(tuple(out.shape)))
    loss = (out * w).sum() + sum((f * f).sum() for f in fin)
    return out, fin, loss


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "RNN-relu"])
@pytest.mark.parametrize("layers, batch_first, bias, bidirectional",
                         [(1, False, True, False), (2, True, True, False), (2, False, False, False),
                          (2, True, True, True)])
def test_matches_torch_values_and_gradients(backend, rng, kind, layers, batch_first, bias,
                                            bidirectional):
    ours, theirs = pair(kind, 3, 4, num_layers=layers, batch_first=batch_first, bias=bias,
                        bidirectional=bidirectional)
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    st = states(kind, rng, layers * (2 if bidirectional else 1), 2, 4)
    gx, tx = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    gst = [gn.tensor(s, requires_grad=True) for s in st]
    tst = [torch.tensor(s, requires_grad=True) for s in st]
    lstm = kind == "LSTM"
    g_out, g_fin, g_loss = run(ours, gx, gst, lstm)
    t_out, t_fin, t_loss = run(theirs, tx, tst, lstm)
    close(g_out, t_out)
    for a, b in zip(g_fin, t_fin):
        close(a, b)
    g_loss.backward()
    t_loss.backward()
    close(gx.grad, tx.grad)
    for a, b in zip(gst, tst):
        close(a.grad, b.grad)
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        close(p.grad, tp.grad)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "RNN-relu"])
@pytest.mark.parametrize("enforce_sorted, lengths, bidirectional",
                         [(True, [6, 4, 4, 1], False), (False, [2, 6, 1, 4], False),
                          (False, [2, 6, 1, 4], True)])
def test_packed_variable_lengths_match_torch(backend, rng, kind, enforce_sorted, lengths,
                                             bidirectional):
    """Bidirectional: the reverse direction starts at each sequence's own last step."""
    ours, theirs = pair(kind, 3, 5, num_layers=2, batch_first=True, bidirectional=bidirectional)
    x = rng.standard_normal((4, 6, 3))
    gx, tx = gn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_packed = pack_padded_sequence(gx, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    t_packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=True,
                                                       enforce_sorted=enforce_sorted)
    assert g_packed.batch_sizes.tolist() == t_packed.batch_sizes.tolist()
    close(g_packed.data, t_packed.data)
    (g_out, g_fin), (t_out, t_fin) = ours(g_packed), theirs(t_packed)
    if kind != "LSTM":
        g_fin, t_fin = (g_fin,), (t_fin,)
    close(g_out.data, t_out.data)
    g_pad, g_len = pad_packed_sequence(g_out, batch_first=True, total_length=7)
    t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True, total_length=7)
    close(g_pad, t_pad)
    assert g_len.tolist() == t_len.tolist() == lengths
    for a, b in zip(g_fin, t_fin):
        close(a, b)  # the state after each sequence's own last step
    w = np.sin(np.arange(g_pad.numel())).reshape(g_pad.shape)
    ((g_pad * gn.tensor(w)).sum() + (g_fin[0] ** 2).sum()).backward()
    ((t_pad * torch.tensor(w)).sum() + (t_fin[0] ** 2).sum()).backward()
    close(gx.grad, tx.grad)  # zero past each length
    for (_, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.grad, tp.grad)


@pytest.mark.parametrize("kind, bias", [("LSTMCell", True), ("GRUCell", True), ("GRUCell", False)])
def test_cells_match_torch(backend, rng, kind, bias):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(3, 4, bias=bias).double()
    ours = getattr(nn, kind)(3, 4, bias=bias, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    gx, gh, gc = (gn.tensor(a, requires_grad=True) for a in (x, h, c))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    lstm = kind == "LSTMCell"
    g_out = ours(gx, (gh, gc)) if lstm else (ours(gx, gh),)
    t_out = theirs(tx, (th, tc)) if lstm else (theirs(tx, th),)
    for a, b in zip(g_out, t_out):
        close(a, b)
    sum(((o * o).sum() * (k + 1) for k, o in enumerate(g_out)), gn.tensor(0.0)).backward()
    sum((o * o).sum() * (k + 1) for k, o in enumerate(t_out)).backward()
    for a, b in [(gx, tx), (gh, th)] + ([(gc, tc)] if lstm else []):
        close(a.grad, b.grad)
    for (_, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.grad, tp.grad)
    g_zero, t_zero = ours(gx), theirs(tx)  # no state given: zeros, as in torch
    for a, b in zip(g_zero if lstm else (g_zero,), t_zero if lstm else (t_zero,)):
        close(a, b)
    with pytest.raises(ValueError, match=rf"{kind}: input must be a 2-D Tensor \(N, 3\), got \(2, 5\)"):
        ours(gn.tensor(np.zeros((2, 5))))


def test_pad_sequence_and_packing_errors():
    a, b = gn.tensor(np.ones((3, 2))), gn.tensor(np.full((1, 2), 2.0))
    padded = pad_sequence([a, b], batch_first=True, padding_value=-1.0)
    np.testing.assert_array_equal(padded.numpy()[1], [[2, 2], [-1, -1], [-1, -1]])
    with pytest.raises(ValueError, match=r"sorted in decreasing order .* got \[1, 3\]"):
        pack_padded_sequence(padded, [1, 3], batch_first=True)
    with pytest.raises(ValueError, match=r"lengths must hold 2 values in \[1, 3\].* got \[3, 4\]"):
        pack_padded_sequence(padded, [3, 4], batch_first=True)
    with pytest.raises(ValueError, match="total_length must be at least the longest sequence, 3"):
        pad_packed_sequence(pack_padded_sequence(padded, [3, 1], batch_first=True), total_length=2)


def test_lstm_forget_bias(rng):
    lstm = nn.LSTM(3, 4, num_layers=2, forget_bias=1.0, dtype=np.float64)
    for k in range(2):
        b_ih, b_hh = lstm.state_dict()[f"bias_ih_l{k}"], lstm.state_dict()[f"bias_hh_l{k}"]
        np.testing.assert_array_equal(np.asarray(b_ih)[4:8], 1.0)
        np.testing.assert_array_equal(np.asarray(b_hh)[4:8], 0.0)
        assert np.all(np.asarray(b_ih)[:4] != 1.0)  # the other gates keep their random init
    # With zero weights the gates are constants of the biases; the forget gate is sigmoid(1).
    for p in lstm.parameters():
        if p.ndim == 2:
            p.data[...] = 0
    c0 = np.ones((2, 1, 4))
    _, (_, c) = lstm(gn.tensor(np.zeros((3, 1, 3))), (gn.tensor(np.zeros((2, 1, 4))), gn.tensor(c0)))
    z = lstm.bias_ih_l0.numpy() + lstm.bias_hh_l0.numpy()
    i, f, g = 1 / (1 + np.exp(-z[0:4])), 1 / (1 + np.exp(-z[4:8])), np.tanh(z[8:12])
    np.testing.assert_allclose(f, 1 / (1 + np.exp(-1.0)), rtol=1e-15)
    want = c0[0]
    for _ in range(3):
        want = f * want + i * g
    np.testing.assert_allclose(c.numpy()[0], want, rtol=1e-12)
    with pytest.raises(ValueError, match="forget_bias needs bias=True"):
        nn.LSTM(3, 4, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError, match=r"forget_bias must be a finite number or None, got nan"):
        nn.LSTM(3, 4, forget_bias=float("nan"))
    assert "forget_bias=1.0" in repr(lstm)


def test_gru_errors():
    with pytest.raises(ValueError, match=r"GRU: input must be 3-D \(N, T, input_size\) with input_size=3"):
        nn.GRU(3, 4, batch_first=True)(gn.tensor(np.zeros((2, 5, 2), np.float32)))
    with pytest.raises(ValueError, match=r"GRU: h0 must be a Tensor of shape \(1, 2, 4\), got \(2, 4\)"):
        nn.GRU(3, 4)(gn.tensor(np.zeros((5, 2, 3), np.float32)), gn.tensor(np.zeros((2, 4), np.float32)))


@pytest.mark.parametrize("cls, cell", [(nn.LSTM, "lstm_cell"), (nn.GRU, "gru_cell")])
def test_each_step_is_one_fused_kernel_launch_each_way(rng, cls, cell):
    with gn.use_backend("cuda"):
        layer = cls(3, 4)
        x = gn.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32), requires_grad=True)
        with gn.profiler.profile() as prof:
            layer(x)[0].sum().backward()
    rows = {name.split(".", 1)[1]: r for name, r in prof.rows.items() if name.startswith("cuda.")}
    for way in ("fwd", "bwd"):
        r = rows[f"{cell}_{way}"]
        assert (r["calls"], r["launches"], r["gemms"]) == (5, 5, 0)
        assert r["kernels"] == {f"{cell}_{way}_kernel": 5}
    # one GEMM a step each way, plus the input projection, its two gradients and dW_hh
    assert rows["matmul"]["gemms"] == 5 + 5 + 4
