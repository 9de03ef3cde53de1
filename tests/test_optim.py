"""gpunet.optim: updates against NumPy transcriptions of PyTorch's algorithms, exact resumption
from a saved state dict, and the learning-rate schedules."""
import math

import numpy as np
import pytest

import gpunet as gn
from gpunet import nn, optim
from gpunet.serialization import load, save

A = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
B = np.array([[0.1, 0.2, -0.3], [-0.4, 0.5, 0.6]])


def grad_of(p):
    """The gradient of the test loss sum(A p^2 + B p) at p."""
    return 2 * A * p + B


def run_gpunet(opt_cls, steps=3, **kw):
    p = nn.Parameter(gn.tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]])))
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (gn.tensor(A) * p * p + gn.tensor(B) * p).sum().backward()
        opt.step()
    return p.numpy()


def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, steps=3):
    p = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]])
    buf = None
    for _ in range(steps):
        g = grad_of(p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_reference(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False, steps=3):
    p = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.2]])
    m, v = np.zeros_like(p), np.zeros_like(p)
    b1, b2 = betas
    for t in range(1, steps + 1):
        g = grad_of(p)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step_size = lr / (1 - b1 ** t)
        p = p - step_size * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
    return p


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, weight_decay=0.1, momentum=0.9, nesterov=True),
])
def test_sgd_matches_pytorch_formula(backend, kw):
    np.testing.assert_allclose(run_gpunet(optim.SGD, **kw), sgd_reference(**kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls, kw", [
    (optim.Adam, dict(lr=0.1)),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    (optim.Adam, dict(lr=0.1, weight_decay=0.1)),
    (optim.AdamW, dict(lr=0.1)),  # default weight_decay 1e-2, decoupled
    (optim.AdamW, dict(lr=0.05, weight_decay=0.5, betas=(0.5, 0.9))),
])
def test_adam_matches_pytorch_formula(backend, cls, kw):
    ref_kw = dict(kw, decoupled=cls is optim.AdamW)
    if cls is optim.AdamW:
        ref_kw.setdefault("weight_decay", 1e-2)
    np.testing.assert_allclose(run_gpunet(cls, **kw), adam_reference(**ref_kw), rtol=1e-10, atol=1e-12)


def test_zero_grad_param_groups_and_skipping(backend):
    a = nn.Parameter(gn.tensor(np.ones(2)))
    b = nn.Parameter(gn.tensor(np.ones(2)))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    (a * 2.0).sum().backward()  # b has no grad: it is left alone
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.8, 0.8])
    np.testing.assert_allclose(b.numpy(), [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def make_run():
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    return model


def train_steps(model, opt, sched, data, steps):
    x, y = data
    for _ in range(steps):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.8, 0.9)),
])
def test_state_dict_resumes_exactly(backend, rng, tmp_path, make_opt):
    data = (gn.tensor(rng.standard_normal((5, 3)).astype(np.float32)), gn.tensor(rng.integers(0, 2, 5)))
    model = make_run()
    opt = make_opt(model.parameters())
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    train_steps(model, opt, sched, data, 3)
    save({"model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict()},
         tmp_path / "ckpt.npz")
    train_steps(model, opt, sched, data, 3)  # the uninterrupted run

    ckpt = load(tmp_path / "ckpt.npz")
    resumed = make_run()
    resumed.load_state_dict(ckpt["model"])
    opt2 = make_opt(resumed.parameters())
    opt2.load_state_dict(ckpt["optim"])
    sched2 = optim.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(ckpt["sched"])
    assert opt2.param_groups[0]["lr"] == 0.5 * opt.defaults["lr"]  # restored from the optimizer state
    train_steps(resumed, opt2, sched2, data, 3)
    for (name, p), q in zip(model.named_parameters(), resumed.parameters()):
        if backend == "numpy":
            np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)  # bit for bit
        else:
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_state_dict_contents_and_mismatch():
    p = nn.Parameter(gn.tensor(np.ones((2, 3), np.float32)))
    q = nn.Parameter(gn.tensor(np.ones(3, np.float32)))
    opt = optim.Adam([p, q], lr=0.1)
    (p.sum() + q.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sd["state"][0]["step"] == 1 and isinstance(sd["state"][0]["exp_avg"], gn.Tensor)  # as torch's
    assert sd["state"][0]["exp_avg"].shape == (2, 3)
    sd["state"][0]["exp_avg"][...] = 99  # a copy: the live state is untouched
    assert opt.state_dict()["state"][0]["exp_avg"].max() < 1
    with pytest.raises(ValueError, match=r"param groups of sizes \[2\], this one \[1\]"):
        optim.Adam([p], lr=0.1).load_state_dict(opt.state_dict())
    swapped = optim.Adam([q, p], lr=0.1)
    with pytest.raises(ValueError, match=r"exp_avg of parameter 0: shape \(2, 3\), parameter has \(3,\)"):
        swapped.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("call, error, pattern", [
    (lambda p: optim.SGD([p]), TypeError, "argument 'lr' is required"),
    (lambda p: optim.SGD([p], lr=-1), ValueError, "lr must be a finite number >= 0, got -1"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: optim.SGD(nn.Linear(2, 2), lr=0.1), TypeError, "got the module itself"),
    (lambda p: optim.SGD(p, lr=0.1), TypeError, "got a single Tensor"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.5)), ValueError, "betas must be two numbers in"),
    (lambda p: optim.SGD([p, p], lr=0.1), ValueError, "appears in more than one group"),
    (lambda p: optim.StepLR(optim.SGD([p], lr=0.1), step_size=0), ValueError, "step_size must be a positive int"),
])
def test_optimizer_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(nn.Parameter(gn.tensor(np.ones(2))))


def test_step_lr_sequence():
    p = nn.Parameter(gn.tensor(np.ones(2)))
    opt = optim.SGD([{"params": [p]}], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(7):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert opt.param_groups[0]["lr"] == 0.125


def test_cosine_sequence_groups_and_state_dict():
    a, b = nn.Parameter(gn.tensor(np.ones(2))), nn.Parameter(gn.tensor(np.ones(2)))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    got = []
    for _ in range(9):
        got.append(sched.get_last_lr())
        sched.step()
    for epoch, lrs in enumerate(got):
        want = [0.1 + (base - 0.1) * (1 + math.cos(math.pi * epoch / 4)) / 2 for base in (1.0, 0.5)]
        np.testing.assert_allclose(lrs, want, rtol=1e-12)
    assert got[4] == pytest.approx([0.1, 0.1]) and got[8] == pytest.approx([1.0, 0.5])
    state = sched.state_dict()
    assert state["T_max"] == 4 and state["last_epoch"] == 9
    fresh = optim.CosineAnnealingLR(optim.SGD([a, b], lr=1.0), T_max=1)
    fresh.load_state_dict(state)
    assert fresh.T_max == 4 and fresh.last_epoch == 9 and fresh.base_lrs == [1.0, 0.5]
