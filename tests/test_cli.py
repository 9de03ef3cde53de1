"""The ``gpunet`` command: argparse errors, a tiny train run's outputs, evaluate's report."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gpunet import cli, serialization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gpunet(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "gpunet", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required"),
    (["fit"], "invalid choice: 'fit'"),
    (["train", "--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["train", "--epochs", "ten"], "--epochs: must be a positive integer, got 'ten'"),
    (["train", "--lr", "-1"], "--lr: must be a positive number"),
    (["train", "--data", "cifar"], "--data: invalid choice: 'cifar'"),
    (["train", "--model", "resnet"], "--model: invalid choice"),
    (["train", "--model", "resnet18"], "--model: invalid choice"),
    (["train", "--optimizer", "rmsprop"], "--optimizer: invalid choice"),
    (["train", "--backend", "tpu"], "--backend: invalid choice"),
    (["train", "--val-fraction", "1.5"], "--val-fraction: must be a number in (0, 1)"),
    (["evaluate"], "the following arguments are required: WEIGHTS"),
])
def test_bad_arguments_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_argument_from_the_command_line_exits_2_without_traceback():
    result = _gpunet("train", "--batch-size", "-3")
    assert result.returncode == 2
    assert "--batch-size: must be a positive integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_fashion_mnist_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    real = cli.datasets.fashion_mnist
    monkeypatch.setattr(cli.datasets, "fashion_mnist", lambda: real(path=str(tmp_path)))
    code = cli.main(["train", "--data", "fashion-mnist", "--backend", "numpy", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "apt-get install dataset-fashion-mnist" in err


def test_missing_weights_file_is_a_clean_error(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nope.npz")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_tiny_train_run_writes_weights_history_and_png_then_evaluate(tmp_path):
    out = tmp_path / "run"
    result = _gpunet("train", "--limit", "300", "--epochs", "1", "--backend", "numpy", "--out", str(out),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "backend: numpy (requested" in result.stdout
    assert "BatchNorm2d(6" in result.stdout and "Total params: 62,158" in result.stdout
    assert "test accuracy:" in result.stdout
    for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 1 and 0 <= history["test_acc"] <= 1
    assert history["config"]["model"] == "lenet" and history["config"]["data"] == "digits"
    weights = np.load(out / "model.npz")
    assert weights["0.weight"].shape == (6, 1, 5, 5)

    result = _gpunet("evaluate", str(out / "model.npz"), "--limit", "300", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert f"accuracy {100 * history['test_acc']:.2f}%" in result.stdout
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("true \\ pred"))
    table = lines[start + 1:start + 11]
    assert [row.split()[0] for row in table] == [str(d) for d in range(10)]
    assert sum(int(v) for row in table for v in row.split()[1:11]) == 300


def test_resnet8_trains_and_evaluates_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    result = _gpunet("train", "--model", "resnet8", "--limit", "200", "--epochs", "1", "--backend",
                     "numpy", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "BasicBlock" in result.stdout and "Total params: 77,754" in result.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["config"]["model"] == "resnet8" and len(history["train_loss"]) == 1
    result = _gpunet("evaluate", str(out / "model.npz"), "--limit", "200", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert f"accuracy {100 * history['test_acc']:.2f}%" in result.stdout


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "--limit", "100", "--batch-size", "50", "--backend", "numpy", "--out", out, "--no-progress"]
    assert cli.main(base + ["--epochs", "1"]) == 0
    assert serialization.load(os.path.join(out, "checkpoint.npz"))["epoch"] == 1
    assert cli.main(base + ["--epochs", "2", "--resume", os.path.join(out, "checkpoint.npz")]) == 0
    history = json.loads(open(os.path.join(out, "history.json")).read())
    assert len(history["train_loss"]) == 2
    assert "test accuracy:" in capsys.readouterr().out


def test_resume_and_evaluate_refuse_the_wrong_file_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "--limit", "100", "--batch-size", "50", "--backend", "numpy", "--out", out,
            "--no-progress", "--epochs", "1"]
    assert cli.main(base) == 0
    ckpt, weights = os.path.join(out, "checkpoint.npz"), os.path.join(out, "model.npz")
    capsys.readouterr()

    def one_line_error(argv, *needles):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for needle in needles:
            assert needle in err, err

    one_line_error(base + ["--resume", ckpt, "--lr", "0.5", "--optimizer", "adam"],
                   "written with other options", "optimizer 'sgd' there, 'adam' here",
                   "lr 0.02 there, 0.5 here")
    one_line_error(base + ["--resume", weights], "holds a model's weights, not a training checkpoint")
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(open(ckpt, "rb").read()[:3000])
    one_line_error(base + ["--resume", str(truncated)], "--resume:", "not a readable .npz")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(base[:-2] + ["--epochs", "1", "--out", str(blocker / "sub")], "--out: cannot write to")
    one_line_error(["evaluate", ckpt, "--backend", "numpy"], "is a training checkpoint",
                   os.path.join(out, "model.npz"))
