"""Capture and replay (issue 24) on the NumPy backend and in Numba's simulator: a training step
captured once and replayed N times leaves the weights of N eager steps, bit for bit, for
LeNet-5 (SGD with momentum; Adam with a cosine schedule and dropout; with BatchNorm, whose
running statistics replay too), a channels-last residual block, an LSTM and the
DQN example's update; a checkpoint taken between replays resumes exactly (refusals: next file)."""
import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunet as gn
from gpunet import functional as F
from gpunet import models, nn, optim

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
TINY = [(RNG.standard_normal((2, 1, 8, 8)).astype(np.float32), RNG.integers(0, 3, 2)) for _ in range(5)]


def _digits(batch, steps):
    (x, y), _ = gn.datasets.digits()
    x, y = np.asarray(x), np.asarray(y)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(steps)]


def _train(build, batches, captured, loss_fn=F.cross_entropy, warmup=1):
    """Losses and final weights after ``warmup`` eager steps, then the rest eagerly or as one
    capture (which is itself a step) and replays; schedulers step after every step."""
    gn.manual_seed(1)
    model, opt, sched = build()

    step = _step_of(model, opt, loss_fn)
    for x, y in batches[:warmup]:
        step(gn.tensor(x), gn.tensor(y))
    losses, rest = [], batches[warmup:]
    if not captured:
        for x, y in rest:
            losses.append(step(gn.tensor(x), gn.tensor(y)).item())
            sched and sched.step()
    else:
        losses = _replay_all(step, opt, sched, rest)
    return losses, [v.numpy().copy() for v in model.state_dict().values()]  # buffers too


def _step_of(model, opt, loss_fn=F.cross_entropy):
    """One training step on (x, y), returning the loss."""
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _replay_all(step, opt, sched, batches):
    """The losses of ``batches``: the first as the capture of ``step``, the rest as replays
    (``sched`` stepped after each)."""
    static_x, static_y = gn.tensor(batches[0][0]), gn.tensor(batches[0][1])
    g, losses = gn.cuda.CUDAGraph(), []
    opt.zero_grad(set_to_none=True)
    with gn.cuda.graph(g):
        static_loss = step(static_x, static_y)
    for i, (x, y) in enumerate(batches):
        if i:
            static_x.copy_(gn.tensor(x))
            static_y.copy_(gn.tensor(y))
            g.replay()
        losses.append(static_loss.item())
        sched and sched.step()
    return losses


def _assert_same(eager, replayed):
    assert replayed[0] == eager[0], "losses differ"
    for i, (a, b) in enumerate(zip(eager[1], replayed[1])):
        assert np.array_equal(a, b), f"state_dict entry {i} differs by {np.abs(a - b).max()}"


def _lenet_sgd():
    model = models.lenet5()
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), None


def _lenet_adam_cosine():
    model = models.lenet5(dropout=0.25)
    opt = optim.Adam(model.parameters(), lr=gn.tensor(2e-3), capturable=True)
    return model, opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)


def _lenet_batch_norm_sgd():  # gpunet train's model: its running statistics are replayed too
    model = models.lenet5(batch_norm=True)
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), None


@pytest.mark.parametrize("build", [_lenet_sgd, _lenet_adam_cosine, _lenet_batch_norm_sgd],
                         ids=["sgd-momentum", "adam-cosine", "batch-norm"])
def test_lenet_replays_equal_eager_steps(build):
    batches = _digits(16, 7)
    _assert_same(_train(build, batches, False), _train(build, batches, True))


def _tiny_convnet(kind):
    def build():
        norm = [nn.BatchNorm2d(2)] if kind == "batch-norm" else []  # BatchNorm, ReLU, pool: one op
        model = nn.Sequential(nn.Conv2d(1, 2, 3), *norm, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Dropout(0.5), nn.Linear(18, 3))
        if kind in ("sgd", "batch-norm"):
            opt = optim.SGD(model.parameters(), lr=gn.tensor(0.1), momentum=0.9)
        else:
            opt = optim.Adam(model.parameters(), lr=gn.tensor(0.01), capturable=True)
        return model, opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    return build


@pytest.mark.parametrize("kind", ["sgd", "adam", "batch-norm"])
def test_convnet_replays_equal_eager_steps_on_both_backends(backend, kind):
    """The simulator's kernels are captured like NumPy's (tiny shapes: it runs each thread)."""
    build = _tiny_convnet(kind)
    _assert_same(_train(build, TINY, False), _train(build, TINY, True))


class _ResidualBlock(nn.Module):
    """16 channels: NumPy's convs run on patch rows and the block's arrays are channels-last."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv, self.bn2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.down, self.fc = nn.Conv2d(16, 16, 1, stride=2), nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.bn2(self.conv(x)) + x)
        return self.fc(F.adaptive_avg_pool2d(self.down(x), 1).flatten(1))


def test_channels_last_resnet_block_replays_equal_eager_steps():
    def build():
        model = _ResidualBlock()
        return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), None

    _assert_same(_train(build, TINY, False), _train(build, TINY, True))


class _SequenceModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def test_lstm_replays_equal_eager_steps(backend):
    rng = np.random.default_rng(2)
    batches = [(rng.standard_normal((3, 5, 4)).astype(np.float32), rng.integers(0, 3, 3))
               for _ in range(4 if backend == "cuda" else 6)]

    def build():
        model = _SequenceModel()
        return model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), None

    _assert_same(_train(build, batches, False), _train(build, batches, True))


def _q_learning():
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))  # the examples import their _common helper
    spec = importlib.util.spec_from_file_location("q_learning", ROOT / "examples" / "q_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dqn_update_replays_equal_eager_updates():
    """The example's update with its Bellman target computed on the device from static
    tensors, and the target network refreshed between steps by load_state_dict (in place)."""
    ql = _q_learning()
    n, rng = 12, np.random.default_rng(3)
    moves = [(np.eye(n, dtype=np.float32)[rng.integers(0, n, 8)], np.eye(4, dtype=np.float32)[rng.integers(0, 4, 8)],
              rng.standard_normal(8).astype(np.float32), np.eye(n, dtype=np.float32)[rng.integers(0, n, 8)],
              rng.integers(0, 2, 8).astype(np.float32)) for _ in range(6)]

    def run(captured):
        gn.manual_seed(4)
        net, target = ql.q_network(n), ql.q_network(n)
        target.load_state_dict(net.state_dict())
        opt = optim.Adam(net.parameters(), lr=1e-3, capturable=True)
        static = [gn.tensor(a) for a in moves[0]]

        def update():
            s, taken, r, s2, done = static
            with gn.no_grad():
                best_next = target(s2).max(1).values
            goal = r + ql.GAMMA * (1 - done) * best_next
            loss = F.mse_loss((net(s) * taken).sum(1), goal)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        update()  # warm-up on moves[0]
        g, losses = gn.cuda.CUDAGraph(), []
        for i, batch in enumerate(moves[1:]):
            for t, a in zip(static, batch):
                t.copy_(gn.tensor(a))
            if captured and i == 0:
                with gn.cuda.graph(g):
                    loss = update()
            elif captured:
                g.replay()
            else:
                loss = update()
            losses.append(loss.item())
            if i % 2 == 1:
                target.load_state_dict(net.state_dict())
        return losses, [p.numpy().copy() for p in net.parameters()]

    _assert_same(run(False), run(True))


def test_a_checkpoint_between_replays_resumes_exactly(tmp_path):
    batches = _digits(16, 8)
    whole = _train(_lenet_adam_cosine, batches, True)
    gn.manual_seed(1)
    model, opt, sched = _lenet_adam_cosine()
    first = _train_to_checkpoint(model, opt, sched, batches[:5], tmp_path)
    model2, opt2, sched2 = _lenet_adam_cosine()
    model2.load_state_dict(gn.load(tmp_path / "model.pt"))
    opt2.load_state_dict(gn.load(tmp_path / "opt.pt"))
    sched2.load_state_dict(gn.load(tmp_path / "sched.pt"))
    gn.set_rng_state(gn.load(tmp_path / "rng.pt"))
    rest = _replay_all(_step_of(model2, opt2), opt2, sched2, batches[5:])
    assert first + rest == whole[0]
    for a, b in zip(whole[1], model2.parameters()):
        assert np.array_equal(a, b.numpy())


def _train_to_checkpoint(model, opt, sched, batches, folder):
    step = _step_of(model, opt)
    step(gn.tensor(batches[0][0]), gn.tensor(batches[0][1]))  # the warm-up step _train takes
    losses = _replay_all(step, opt, sched, batches[1:])
    gn.save(model.state_dict(), folder / "model.pt")
    gn.save(opt.state_dict(), folder / "opt.pt")
    gn.save(sched.state_dict(), folder / "sched.pt")
    gn.save(gn.get_rng_state(), folder / "rng.pt")
    return losses


def copy_of(obj):
    return copy.deepcopy(obj)


def test_pytorch_whole_network_recipe_runs_as_written():
    """PyTorch's documented recipe: warm-up on a side stream, capture, refill, replay."""
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    static_input, static_target = gn.randn(6, 5), gn.randn(6, 2)
    s = gn.cuda.Stream()
    s.wait_stream(gn.cuda.current_stream())
    with gn.cuda.stream(s):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            F.mse_loss(model(static_input), static_target).backward()
            opt.step()
    gn.cuda.current_stream().wait_stream(s)
    g = gn.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with gn.cuda.graph(g):
        static_loss = F.mse_loss(model(static_input), static_target)
        static_loss.backward()
        opt.step()
    before = static_loss.item()
    for _ in range(5):
        g.replay()
    assert static_loss.item() < before  # the replays trained on the static batch


def _fit_history(capture, backend, batch_norm=False):
    from gpunet.data import DataLoader, TensorDataset

    gn.manual_seed(0)
    if backend == "numpy":
        (x, y), (xv, yv) = gn.datasets.digits()
        x, y, xv, yv, batch = x[:300], y[:300], xv[:100], yv[:100], 64
        model = models.lenet5(dropout=0.2, batch_norm=batch_norm)
    else:  # the simulator runs every thread in Python: a tiny convnet on 8x8 images
        x, y = np.concatenate([a for a, _ in TINY]), np.concatenate([b for _, b in TINY])
        xv, yv, batch = x[:4], y[:4], 4
        model = _tiny_convnet("batch-norm" if batch_norm else "sgd")()[0]
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    history = gn.train.fit(model, nn.CrossEntropyLoss(), opt,
                           DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True), epochs=2,
                           val_loader=DataLoader(TensorDataset(xv, yv), batch_size=50),
                           scheduler=sched, progress=False, capture=capture)
    return {k: getattr(history, k) for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr")}


@pytest.mark.parametrize("batch_norm", [False, True], ids=["lenet", "lenet-batch-norm"])
def test_fit_with_capture_gives_the_eager_history(backend, batch_norm):
    """Including the last, smaller batch of each epoch, which runs eagerly beside the graph
    (with BatchNorm, gpunet train's model: its running statistics feed the validation)."""
    assert _fit_history(True, backend, batch_norm) == _fit_history(False, backend, batch_norm)


def test_a_region_on_another_backend_than_the_current_one_is_captured():
    """The model lives on the (simulated) cuda backend; the current backend is numpy."""
    with gn.use_backend("cuda"):
        gn.manual_seed(0)
        layer, x = nn.Linear(3, 2), gn.randn(4, 3)
    opt = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = (layer(x) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    step()
    g = gn.cuda.CUDAGraph()
    with gn.use_backend("numpy"), gn.cuda.graph(g):
        loss = step()
    before = [p.numpy().copy() for p in layer.parameters()]
    g.replay()
    after = [p.numpy().copy() for p in layer.parameters()]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))  # the replay trained
    replayed = loss.item()
    gn.manual_seed(0)
    for p, b in zip(layer.parameters(), before):  # the same step eagerly, from the same state
        p.data.copy_(gn.tensor(b, backend="cuda"))
    assert step().item() == replayed


def test_optimizer_load_state_dict_between_replays_is_read_by_the_graph():
    def run(captured):
        gn.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = optim.Adam(model.parameters(), lr=gn.tensor(0.01), capturable=True)
        x = gn.randn(4, 3)

        def step():
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()

        step()
        saved = (copy_of(model.state_dict()), copy_of(opt.state_dict()))
        g = gn.cuda.CUDAGraph()
        if captured:
            with gn.cuda.graph(g):
                step()
        else:
            step()
        model.load_state_dict(saved[0])  # roll back one step, then take it again twice
        opt.load_state_dict(saved[1])
        for _ in range(2):
            g.replay() if captured else step()
        return [p.numpy().copy() for p in model.parameters()]

    for a, b in zip(run(False), run(True)):
        assert np.array_equal(a, b)


def test_capturable_adam_counts_each_parameters_steps():
    """Parameters of two dtypes in a group, one of them without a gradient on some steps:
    the same updates as the host-counted Adam."""
    def run(capturable):
        gn.manual_seed(0)
        a = nn.Parameter(gn.randn(3))
        b = nn.Parameter(gn.randn(2).double())
        opt = optim.Adam([a, b], lr=0.1, capturable=capturable)
        for step in range(4):
            opt.zero_grad()
            loss = (a * a).sum() + ((b * b).sum() if step % 2 else 0)
            loss.backward()
            opt.step()
        return a.numpy().copy(), b.numpy().copy()

    for x, y in zip(run(False), run(True)):
        assert np.array_equal(x, y)
