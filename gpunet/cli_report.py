"""What the ``gpunet`` command shows of a run: the training curves as a PNG (``gpunet train``)
and the test set's confusion matrix as a text table (``gpunet evaluate``)."""
from __future__ import annotations

import sys

import numpy as np


def plot_history(record, path, title="training"):
    """Two panels (loss and accuracy vs epoch, train and validation) saved as a PNG; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'gpunet[train]'); no PNG written", file=sys.stderr)
        return None
    epochs = np.arange(1, len(record["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_loss.plot(epochs, record["train_loss"], "o-", label="train")
    ax_loss.plot(epochs, record["val_loss"], "s-", label="validation (held out)")
    ax_acc.plot(epochs, 100 * np.asarray(record["train_acc"]), "o-", label="train")
    ax_acc.plot(epochs, 100 * np.asarray(record["val_acc"]), "s-", label="validation (held out)")
    if record.get("test_acc") is not None:
        ax_acc.axhline(100 * record["test_acc"], color="tab:red", ls="--",
                       label=f"test (final model): {100 * record['test_acc']:.2f}%")
    if record.get("best_epoch"):
        for ax in (ax_loss, ax_acc):
            ax.axvline(record["best_epoch"], color="gray", ls=":", label=f"best epoch ({record['best_epoch']})")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

def confusion_matrix(pred, target, num_classes):
    """counts[i, j] = number of images of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (target, pred), 1)
    return counts


def format_confusion(counts, classes):
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    short = [c.split("/")[0][:7] for c in classes]
    width = max(5, max(len(s) for s in short), len(str(counts.max())) + 1)
    head = "true \\ pred".ljust(12) + "".join(s.rjust(width) for s in short) + "  recall".rjust(9)
    lines = [head]
    for i, s in enumerate(short):
        total = counts[i].sum()
        recall = f"{100 * counts[i, i] / total:.1f}%" if total else "-"
        lines.append(s.ljust(12) + "".join(str(v).rjust(width) for v in counts[i]) + recall.rjust(9))
    return "\n".join(lines)
