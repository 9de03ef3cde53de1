"""gpunet.train: fit/evaluate on a tiny synthetic problem, early stopping, exact resume, killed runs."""
import importlib.util
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gpunet as gn
from gpunet.serialization import load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The set-up shared by this test process and the training subprocesses we kill.
SCRIPT = r'''
import os, sys, time
import numpy as np
import gpunet as gn
from gpunet import nn, optim
from gpunet.data import DataLoader, TensorDataset
from gpunet.train import fit


def problem(seed=0, n=240, flip_val=False, backend="numpy", conv=False):
    """Two noisy Gaussian blobs in 6-D; a small MLP with dropout, Adam and StepLR.  ``conv``:
    the blobs in 16-D as 1x4x4 images, and a convnet with biases (conv+ReLU fused) instead."""
    gn.set_backend(backend)
    gn.manual_seed(seed)
    rng = np.random.default_rng(123)
    y = rng.integers(0, 3, n)
    d = 16 if conv else 6
    x = (rng.standard_normal((n, d)) + 3.0 * np.eye(3, d)[y]).astype(np.float32)
    yv = (y[:60] + 1) % 3 if flip_val else y[:60]
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    if conv:
        x = x.reshape(n, 1, 4, 4)
        model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Dropout(0.2), nn.Flatten(), nn.Linear(12, 3))
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[:60], yv), batch_size=32)
    return model, nn.CrossEntropyLoss(), opt, sched, train, val


def weights(model):
    return {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)).copy() for k, v in model.state_dict().items()}


def run(epochs, ckpt=None, resume=None, loss_fn=None, backend="numpy", conv=False, n=240):
    model, lf, opt, sched, train, val = problem(backend=backend, conv=conv, n=n)
    h = fit(model, loss_fn or lf, opt, train, epochs, val_loader=val, checkpoint=ckpt, resume=resume,
            scheduler=sched, progress=False)
    return model, h


if __name__ == "__main__":
    mode, ckpt, marker = sys.argv[1:4]
    if mode == "kill-mid-epoch":   # hang inside epoch 3 (after 3.5 epochs of batches)
        calls = [0]
        _, base_loss, *_ = problem()

        def loss_fn(out, y):
            calls[0] += 1
            if calls[0] == 15 * 3 + 7:
                open(marker, "w").close()
                time.sleep(120)
            return base_loss(out, y)
        run(6, ckpt=ckpt, loss_fn=loss_fn)
    elif mode == "kill-mid-write":  # hang between writing the 3rd checkpoint's temp file and the rename
        real_replace, writes = os.replace, [0]

        def slow_replace(src, dst):
            if os.path.abspath(dst) == os.path.abspath(ckpt):
                writes[0] += 1
                if writes[0] == 3:
                    open(marker, "w").close()
                    time.sleep(120)
            return real_replace(src, dst)
        os.replace = slow_replace
        run(6, ckpt=ckpt)
'''


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    path = tmp_path_factory.mktemp("helper") / "train_helper.py"
    path.write_text(SCRIPT)
    spec = importlib.util.spec_from_file_location("train_helper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PATH = str(path)
    return module


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.training
def test_fit_loss_falls_and_history_fields(helper):
    model, h = helper.run(4)
    d = h.to_dict()
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_time", "images_per_sec", "lr"):
        assert len(d[key]) == 4 and all(math.isfinite(v) for v in d[key]), key
    assert len(h) == 4
    assert h.train_loss[-1] < 0.7 * h.train_loss[0]
    assert h.val_acc[-1] > 0.8
    assert h.lr == [0.05, 0.05, 0.025, 0.025]  # StepLR stepped once per epoch
    assert all(v > 0 for v in h.images_per_sec)
    assert h.best_epoch is None and not h.stopped_early
    assert gn.train.History.from_dict(d).train_loss == h.train_loss


def test_evaluate_returns_loss_and_accuracy_and_keeps_mode(helper):
    model, lf, _, _, _, val = helper.problem()
    model.train()
    loss, acc = gn.train.evaluate(model, lf, val)
    assert loss > 0 and 0 <= acc <= 1
    assert model.training
    pred, target = gn.train.predict(model, val)
    assert pred.shape == target.shape == (60,)
    assert acc == pytest.approx((pred == target).mean())


def test_early_stopping_triggers_and_restores_best_weights(helper):
    # validation labels are permuted: val loss is best after epoch 1 and then worsens
    model, lf, opt, sched, train, val = helper.problem(flip_val=True)
    h = gn.train.fit(model, lf, opt, train, 20, val_loader=val, early_stopping=2, scheduler=sched, progress=False)
    assert h.stopped_early and len(h) < 20
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best and len(h) == best + 2
    ref, _ = helper.run(best)  # same seed, trained for exactly best epochs
    _same(helper.weights(model), helper.weights(ref))


def test_fit_argument_errors(helper):
    model, lf, opt, _, train, _ = helper.problem()
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        gn.train.fit(model, lf, opt, train, 0)
    with pytest.raises(ValueError, match="early_stopping needs a val_loader"):
        gn.train.fit(model, lf, opt, train, 2, early_stopping=2)
    with pytest.raises(FileNotFoundError, match="resume="):
        gn.train.fit(model, lf, opt, train, 2, resume="/nonexistent/ckpt.npz")


@pytest.mark.parametrize("backend_name, conv", [("numpy", False), ("cuda", False), ("cuda", True)],
                         ids=["numpy-mlp", "cuda-mlp", "cuda-conv-with-bias"])
def test_checkpoint_resume_is_bitwise_identical(helper, tmp_path, backend_name, conv):
    # Dropout draws fresh masks every step, so this also proves the generator's state is
    # saved and restored: on cuda that is the counter-based kernel generator's (seed, offset).
    # The conv model has biases: their gradients are ordered reductions (no float atomics),
    # so on a GPU, too, an interrupted run continues with the same bits.
    epochs, stop = (5, 2) if backend_name == "numpy" else (2, 1)  # the simulator is slow
    kw = dict(backend=backend_name, conv=conv, n=96 if conv else 240)
    full, h_full = helper.run(epochs, **kw)
    ckpt = str(tmp_path / "ckpt.npz")
    helper.run(stop, ckpt=ckpt, **kw)
    assert load(ckpt)["epoch"] == stop
    resumed, h_res = helper.run(epochs, resume=ckpt, **kw)
    _same(helper.weights(full), helper.weights(resumed))
    assert h_res.train_loss == h_full.train_loss and h_res.val_loss == h_full.val_loss


def _spawn_and_kill(helper, mode, tmp_path):
    ckpt, marker = str(tmp_path / "ckpt.npz"), str(tmp_path / "marker")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               GPUNET_BACKEND="numpy")
    proc = subprocess.Popen([sys.executable, helper.PATH, mode, ckpt, marker], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not os.path.exists(marker):
        if proc.poll() is not None:
            pytest.fail(f"training subprocess exited early:\n{proc.stdout.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training subprocess never reached the kill point")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return ckpt


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(helper, tmp_path):
    ckpt = _spawn_and_kill(helper, "kill-mid-epoch", tmp_path)
    assert load(ckpt)["epoch"] == 3  # killed inside epoch 4; epochs 1-3 were checkpointed
    resumed, _ = helper.run(6, ckpt=ckpt, resume=ckpt)
    full, _ = helper.run(6)
    _same(helper.weights(full), helper.weights(resumed))


def test_sigkill_mid_checkpoint_write_leaves_last_checkpoint_intact(helper, tmp_path):
    ckpt = _spawn_and_kill(helper, "kill-mid-write", tmp_path)
    leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert leftovers, "the killed write should have left its temporary file behind"
    state = load(ckpt)  # the previous checkpoint, whole
    assert state["epoch"] == 2 and len(state["history"]["train_loss"]) == 2
    resumed, _ = helper.run(6, ckpt=ckpt, resume=ckpt)
    full, _ = helper.run(6)
    _same(helper.weights(full), helper.weights(resumed))
    assert load(ckpt)["epoch"] == 6
