"""The ``gpunet`` command: ``gpunet train`` and ``gpunet evaluate``.

``gpunet train`` (defaults: ``--data digits --model lenet --backend auto``) holds out a
validation ("tuning") split of the training set — ``--val-fraction``, 10% by default, drawn
with ``--seed`` — for early stopping, trains with a checkpoint every epoch, then reports
accuracy on the untouched test set and writes to ``--out`` (default ``runs/<data>-<model>``):
``model.npz`` (weights, ``gn.load``-able), ``checkpoint.npz`` (for ``--resume``),
``history.json`` and ``curves.png``.

Example:
    $ gpunet train                                   # LeNet-5 on the embedded digits
    $ gpunet train --data fashion-mnist --epochs 15
    $ gpunet train --resume runs/digits-lenet/checkpoint.npz     # same options as the first run
    $ gpunet evaluate runs/digits-lenet/model.npz
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from . import backends, datasets, distributed, models, serialization
from . import random as _random
from .cli_report import confusion_matrix, format_confusion, plot_history

DATASETS = ("digits", "fashion-mnist")
# Per-dataset defaults, tuned on a 2-core CPU (see the README for the figures).
DEFAULTS = {
    "digits": {"epochs": 20, "batch_size": 32, "patience": 8, "lr": {"sgd": 0.02, "adam": 2e-3}},
    "fashion-mnist": {"epochs": 12, "batch_size": 64, "patience": 4, "lr": {"sgd": 0.05, "adam": 2e-3}},
}


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def _start(backend_name, world):
    """The backend and, in an mpiexec job of several ranks, its communicator (mpi4py imported here)."""
    if world == 1:
        return _select_backend(backend_name), None
    distributed.comm.pin_local_gpu(backend_name)  # before the cuda backend allocates: this rank's GPU
    be = _select_backend(backend_name)
    comm = distributed.init(be)
    if be.name == "numpy" and not os.environ.get("GPUNET_NUM_THREADS"):  # share the cores, no oversubscription
        backends.set_num_threads(max(1, (os.cpu_count() or 1) // distributed.launch.local_size()))
    threads = f", {backends.get_num_threads()} thread(s) each" if be.name == "numpy" else ""
    print(f"distributed: {comm.size} ranks (MPI){threads}; rank 0 reports and writes the outputs")
    return be, comm


# --- argument parsing ------------------------------------------------------------------------
def _number(convert, minimum, strict, what):
    """An argparse type: ``convert(text)`` that is > minimum (strict) or >= minimum, not nan or inf."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not (value > minimum if strict else value >= minimum) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


_positive_int = _number(int, 0, True, "a positive integer")
_nonneg_int = _number(int, 0, False, "a non-negative integer")
_positive_float = _number(float, 0.0, True, "a positive number")


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text}")
    return value


def build_parser():
    """The ``gpunet`` command line: ``train`` and ``evaluate`` with their options.

    Example:
        >>> build_parser().parse_args(["train", "--epochs", "2"]).epochs
        2
    """
    parser = argparse.ArgumentParser(prog="gpunet", description="Train and evaluate convnets with gpunet.")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate}")
    sub.required = True

    t = sub.add_parser("train", help="train a model and write weights, checkpoint, history and curves",
                       description="Train a model; a held-out validation split of the training set drives "
                                   "early stopping, and the test set is only used for the final accuracy.")
    _common(t)
    t.add_argument("--epochs", type=_positive_int, help="maximum epochs (digits: 20, fashion-mnist: 12)")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate (sgd: 0.02 on digits, 0.05 on fashion-mnist; adam: 2e-3)")
    t.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd with momentum 0.9 (default), or adam; both with cosine learning-rate decay")
    t.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="plain LeNet-5 without BatchNorm (lenet only; default: BatchNorm after each layer)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="seed for weights, split and shuffling (default 0)")
    t.add_argument("--out", help="output folder (default runs/<data>-<model>)")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint.npz (use the same options)")
    t.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="share of the training set held out for early stopping (default 0.1)")
    t.add_argument("--patience", type=_positive_int,
                   help="early-stopping patience in epochs (digits: 8, fashion-mnist: 4)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    e = sub.add_parser("evaluate", help="test accuracy and confusion matrix of saved weights")
    e.add_argument("weights", metavar="WEIGHTS", help="a model.npz written by gpunet train")
    _common(e, defaults_from_run=True)
    return parser


def _common(p, defaults_from_run=False):
    run_note = " (default: from history.json beside WEIGHTS, else %s)" if defaults_from_run else " (default: %s)"
    p.add_argument("--data", choices=DATASETS, default=None if defaults_from_run else "digits",
                   help="dataset" + run_note % "digits")
    p.add_argument("--model", choices=tuple(models.MODELS), default=None if defaults_from_run else "lenet",
                   help="model" + run_note % "lenet")
    p.add_argument("--batch-size", type=_positive_int, help="batch size (digits: 32, fashion-mnist: 64)")
    p.add_argument("--backend", choices=backends.NAMES, default="auto", help="numpy, cuda or auto (default auto)")
    p.add_argument("--limit", type=_positive_int, help=argparse.SUPPRESS)  # tests: first N train/test images


# --- shared steps ------------------------------------------------------------------------------
def _select_backend(name):
    try:
        backends.set_backend(name)
    except backends.BackendUnavailableError as e:
        raise CliError(f"{e} (try --backend numpy)") from None
    be = backends.get_backend()
    why = backends.auto_reason if name == "auto" and backends.auto_reason else "requested with --backend"
    print(f"backend: {be.name} ({why})")
    return be


def _load_data(name, limit):
    try:
        if name == "digits":
            (xtr, ytr), (xte, yte) = datasets.digits()
            classes = datasets.DIGIT_CLASSES
        else:
            (xtr, ytr), (xte, yte) = datasets.fashion_mnist()
            classes = datasets.FASHION_MNIST_CLASSES
    except FileNotFoundError:
        raise CliError(f"{name}: dataset files not found in $GPUNET_DATA or {datasets.DEBIAN_FASHION_MNIST_DIR}; "
                       "install them with: sudo apt-get install dataset-fashion-mnist") from None
    if limit:
        xtr, ytr, xte, yte = xtr[:limit], ytr[:limit], xte[:limit], yte[:limit]
    return (xtr, ytr), (xte, yte), classes


def _build_model(name, be, batch_norm):
    model = models.build(name, **({"batch_norm": batch_norm} if name == "lenet" else {}))
    return model.to(be) if hasattr(model, "to") else model


# --- train -------------------------------------------------------------------------------------
def cmd_train(args):
    """``gpunet train``: build the convnet, train it on the dataset and save the best weights."""
    from . import nn, optim
    from .data import DataLoader, TensorDataset, random_split
    from .distributed import DataParallel, DistributedSampler
    from .train import NonFiniteLossError, evaluate, fit

    started = time.perf_counter()
    d = DEFAULTS[args.data]
    epochs, batch_size = args.epochs or d["epochs"], args.batch_size or d["batch_size"]
    patience, lr = args.patience or d["patience"], args.lr or d["lr"][args.optimizer]
    out = args.out or os.path.join("runs", f"{args.data}-{args.model}")
    world = distributed.launch.env_world_size()  # 1 outside mpiexec
    meta = {"data": args.data, "model": args.model, "optimizer": args.optimizer, "lr": lr,
            "batch_size": batch_size, "batch_norm": bool(args.batch_norm), "world_size": world}
    if args.resume:  # before MPI starts: every rank refuses alike, and the job ends cleanly
        _check_resume(args.resume, meta)
    be, comm = _start(args.backend, world)
    _random.manual_seed(args.seed)
    (xtr, ytr), (xte, yte), classes = _load_data(args.data, args.limit)
    train_set, val_set = random_split(TensorDataset(xtr, ytr), [1 - args.val_fraction, args.val_fraction],
                                      seed=args.seed)
    print(f"data: {args.data}: {len(train_set)} train, {len(val_set)} validation (held out from train "
          f"for early stopping), {len(xte)} test")
    model = _build_model(args.model, be, args.batch_norm)
    print(f"{model}\nTotal params: {model.num_parameters():,}")
    if comm is not None:  # rank 0's initial weights everywhere; gradients averaged in buckets
        model = DataParallel(model, comm)
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    # Under mpiexec each rank reads its own shard of every epoch's permutation.
    sampler = DistributedSampler(train_set, comm.size, comm.rank, seed=args.seed) if comm else None
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                              backend=be)
    val_loader = DataLoader(val_set, batch_size=500, backend=be)
    test_loader = DataLoader(TensorDataset(xte, yte), batch_size=500, backend=be)
    momentum = " momentum 0.9" if args.optimizer == "sgd" else ""
    batch = f"{batch_size} per rank x {world} ranks = {batch_size * world} global" if comm else batch_size
    print(f"training: {args.optimizer}{momentum} lr={lr:g} batch={batch} epochs<={epochs} "
          f"(cosine decay, early-stopping patience {patience}), seed {args.seed}")
    if comm is None or comm.rank == 0:  # only rank 0 writes outputs
        _check_writable(out)
    ckpt = os.path.join(out, "checkpoint.npz")
    try:
        history = fit(model, loss_fn, opt, train_loader, epochs, val_loader=val_loader,
                      early_stopping=patience, checkpoint=ckpt, resume=args.resume, scheduler=scheduler,
                      progress=not args.no_progress, checkpoint_meta=meta)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: gpunet train ... --resume {ckpt}", file=sys.stderr)
        return 130
    except NonFiniteLossError as e:
        raise CliError(str(e)) from None
    except (KeyError, ValueError) as e:  # a checkpoint of another model or optimiser
        if not args.resume:
            raise
        raise CliError(f"--resume {args.resume}: does not fit this run ({e})".replace("\n", " ")) from None
    if comm is not None and comm.rank != 0:
        return 0
    model = getattr(model, "module", model)  # the weights without DataParallel's "module." prefix
    test_loss, test_acc = evaluate(model, loss_fn, test_loader)
    elapsed = time.perf_counter() - started
    serialization.save(model.state_dict(), os.path.join(out, "model.npz"))
    record = history.to_dict()
    record.update(test_loss=test_loss, test_acc=test_acc, wall_time_s=elapsed,
                  config={"data": args.data, "model": args.model, "epochs": epochs, "batch_size": batch_size,
                          "lr": lr, "optimizer": args.optimizer, "seed": args.seed, "backend": be.name,
                          "batch_norm": args.batch_norm, "world_size": world,
                          "val_fraction": args.val_fraction, "patience": patience, "limit": args.limit})
    history_path = os.path.join(out, "history.json")
    with open(history_path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(history_path + ".tmp", history_path)
    png = plot_history(record, os.path.join(out, "curves.png"), title=f"{args.model} on {args.data}")
    kept = f" (weights of epoch {history.best_epoch})" if history.best_epoch else ""
    print(f"test accuracy: {100 * test_acc:.2f}% ({round(test_acc * len(yte))}/{len(yte)}){kept}, "
          f"test loss {test_loss:.4f}")
    print(f"total time {elapsed:.1f} s; wrote {out}/model.npz, checkpoint.npz, history.json, "
          f"{os.path.basename(png) if png else '(no PNG: matplotlib missing)'}")
    return 0


def _check_writable(out):
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".gpunet-write-test-{os.getpid()}")
        open(probe, "w").close()
        os.unlink(probe)
    except OSError as e:
        raise CliError(f"--out: cannot write to {out!r} ({e.strerror or e})") from None


def _check_resume(path, meta):
    """Refuse, in one line, a --resume file that is missing, damaged, not a checkpoint, or
    written by a run with other options (each difference named)."""
    from .train import CHECKPOINT_FORMAT

    if not os.path.isfile(path):
        raise CliError(f"--resume: no such checkpoint {path!r}")
    try:
        ck = serialization.load(path)
    except ValueError as e:
        raise CliError(f"--resume: {e}") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CliError(f"--resume: {path} holds a model's weights, not a training checkpoint; pass "
                       "the checkpoint.npz that gpunet train writes beside model.npz")
    saved = ck.get("meta") or {}
    ranks = int(saved.get("world_size", 1)) if saved else meta["world_size"]
    if ranks != meta["world_size"]:
        raise CliError(f"--resume: {path} was written by a {ranks}-process job and this one has "
                       f"{meta['world_size']}; resume with mpiexec -n {ranks} (the same number of ranks)")
    diffs = [f"{k} {saved[k]!r} there, {meta[k]!r} here" for k in
             ("data", "model", "optimizer", "lr", "batch_size", "batch_norm")
             if k in saved and saved[k] != meta[k]]
    if diffs:
        raise CliError(f"--resume: {path} was written with other options ({'; '.join(diffs)}); "
                       "resume with the same options, or start afresh without --resume")


# --- evaluate -------------------------------------------------------------------------------------
def _run_config(weights):
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(weights)), "history.json")) as f:
            return json.load(f).get("config", {})
    except (OSError, ValueError, AttributeError):
        return {}


def cmd_evaluate(args):
    """``gpunet evaluate``: load saved weights and report the test loss and accuracy."""
    from .data import DataLoader, TensorDataset
    from .train import predict

    if not os.path.isfile(args.weights):
        raise CliError(f"WEIGHTS: no such file {args.weights!r}")
    config = _run_config(args.weights)
    data = args.data or config.get("data", "digits")
    model_name = args.model or config.get("model", "lenet")
    be = _select_backend(args.backend)
    try:
        state = serialization.load(args.weights)
    except ValueError as e:
        raise CliError(str(e)) from None
    from .train import CHECKPOINT_FORMAT

    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        beside = os.path.join(os.path.dirname(args.weights) or ".", "model.npz")
        raise CliError(f"{args.weights} is a training checkpoint (for gpunet train --resume), not "
                       f"model weights; evaluate the model file instead, e.g. {beside}")
    batch_norm = any(k.endswith("running_mean") for k in state)  # the weights tell which LeNet
    model = _build_model(model_name, be, batch_norm)
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise CliError(f"{args.weights} does not fit --model {model_name}: {e}") from None
    _, (xte, yte), classes = _load_data(data, args.limit)
    loader = DataLoader(TensorDataset(xte, yte), batch_size=args.batch_size or 500, backend=be)
    pred, target = predict(model, loader)
    acc = float((pred == target).mean())
    print(f"{model_name} on {data} test set: accuracy {100 * acc:.2f}% ({int((pred == target).sum())}/{len(target)})")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(format_confusion(confusion_matrix(pred, target, len(classes)), classes))
    return 0


def main(argv=None):
    """Entry point of the ``gpunet`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    rank = distributed.launch.env_rank()
    quiet = contextlib.redirect_stdout(open(os.devnull, "w")) if rank else contextlib.nullcontext()
    try:
        with quiet:  # in an mpiexec job only rank 0 prints its progress
            return cmd_train(args) if args.command == "train" else cmd_evaluate(args)
    except CliError as e:
        if distributed.is_initialized() and distributed.get_world_size() > 1:
            # NOTE: after MPI started, the other ranks may be waiting in a collective: abort them.
            print(f"gpunet {args.command}: error on rank {rank}: {e}", file=sys.stderr)
            distributed.get_communicator().abort(1)
        if rank == 0:  # before MPI started every rank met the same error: say it once
            print(f"gpunet {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
