"""The names every documentation example may use without defining them, as in one shared session.

``python tests/doc_namespace.py`` runs every docstring example of ``gpunet`` (and of the NumPy
kernels and the geometry beneath it) in a fresh interpreter, each with a fresh copy of these
names, and prints each failure; ``tests/test_docs.py`` asserts there are none.  The names are
the ones the examples and the README use for the usual things:

* ``x`` a batch of four 28x28 grey images (4, 1, 28, 28) and ``y`` their labels (4,);
* ``w`` (6, 1, 3, 3) and ``b`` (6,) a conv's weight and bias;
* ``logits`` (3, 10) scores and ``labels`` = [3, 0, 9] their classes;
* ``model`` a small convnet from ``x`` to 10 scores, ``loss_fn`` its loss, ``opt`` its SGD;
* ``x_train, y_train`` (64 images) and ``x_test, y_test`` (32) as NumPy arrays, ``ds`` /
  ``train_set`` their dataset, ``train_loader`` / ``test_loader`` batches of 16;
* ``comm`` the one-process communicator and ``be`` the current backend.
"""
from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gpunet", "numpy_kernels", "kernel_geometry")


def namespace() -> dict:
    """A fresh set of the shared names (seeded, on the NumPy backend)."""
    import numpy as np

    import gpunet as gn
    from gpunet import functional as F
    from gpunet import nn, optim
    from gpunet.data import DataLoader, TensorDataset

    gn.set_backend("numpy")
    gn.manual_seed(0)
    rng = np.random.default_rng(0)
    images = lambda n: rng.standard_normal((n, 1, 28, 28)).astype(np.float32)  # noqa: E731
    x_train, y_train = images(64), rng.integers(0, 10, 64)
    x_test, y_test = images(32), rng.integers(0, 10, 32)
    ds = TensorDataset(x_train, y_train)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(6 * 14 * 14, 10))
    return dict(
        np=np, gn=gn, F=F, nn=nn, optim=optim, DataLoader=DataLoader, TensorDataset=TensorDataset,
        x=gn.tensor(images(4)), y=gn.tensor(rng.integers(0, 10, 4)),
        w=gn.randn(6, 1, 3, 3), b=gn.randn(6),
        logits=gn.randn(3, 10), labels=gn.tensor([3, 0, 9]),
        model=model, loss_fn=nn.CrossEntropyLoss(), opt=optim.SGD(model.parameters(), lr=0.1),
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, ds=ds, train_set=ds,
        train_loader=DataLoader(ds, batch_size=16, shuffle=True, seed=0),
        test_loader=DataLoader(TensorDataset(x_test, y_test), batch_size=16),
        comm=gn.distributed.init(), be=gn.get_backend(),
    )


def modules():
    """Every module of PACKAGES (``__main__`` modules left out: they run a program)."""
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), name + "."):
            if not info.name.endswith("__main__"):
                found.append(importlib.import_module(info.name))
    return found


def run_all() -> tuple[int, list[str]]:
    """(examples run, one report per failing docstring)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    count, failures = 0, []
    for module in modules():
        for test in finder.find(module, module.__name__):
            if not test.examples:
                continue
            test.globs = {**test.globs, **namespace()}
            out = io.StringIO()
            result = doctest.DocTestRunner(optionflags=flags).run(test, out=out.write)
            count += result.attempted
            if result.failed:
                failures.append(out.getvalue())
    return count, failures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    attempted, failed = run_all()
    print("\n".join(failed))
    print(f"{attempted} examples run, {len(failed)} docstrings failed")
    sys.exit(1 if failed else 0)
