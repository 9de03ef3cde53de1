"""The main job in a few lines: train LeNet-5 on handwritten digits with gpunet's public API.

Data -> model -> optimiser -> fit (with a held-out tuning set and early stopping) -> evaluate
on the test set -> save the weights. The same script runs on a GPU (backend "auto").

Run:  python examples/digits_convnet.py [--fast] [--out DIR]
Writes digits_convnet_curves.png, digits_convnet_predictions.png and model.npz.
"""
import numpy as np

import gpunet as gn
from gpunet import models, nn, optim
from gpunet.data import DataLoader, TensorDataset
from gpunet.datasets import digits
from gpunet.train import evaluate, fit
from _common import parse_args, plt, save


def main(argv=None):
    args = parse_args(__doc__, argv)
    (x_train, y_train), (x_test, y_test) = digits()   # (N, 1, 28, 28) float32 in [0, 1], int64 labels
    n_train, epochs = (1200, 2) if args.fast else (3500, 12)
    x_val, y_val = x_train[3500:], y_train[3500:]     # 500 tuning images, never trained on
    x_train, y_train = x_train[:n_train], y_train[:n_train]

    gn.manual_seed(0)
    model = models.lenet5(batch_norm=True)             # conv-pool-conv-pool-fc-fc-fc, with BatchNorm
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=500)
    history = fit(model, loss_fn, optimizer, train_loader, epochs=epochs, val_loader=val_loader,
                  early_stopping=3, progress=not args.fast)

    test_loss, test_acc = evaluate(model, loss_fn, DataLoader(TensorDataset(x_test, y_test), batch_size=500))
    print(f"backend {gn.get_backend().name}: {len(history)} epochs on {n_train} images, "
          f"test accuracy {test_acc:.1%} (loss {test_loss:.3f}) on {len(y_test)} unseen digits")
    gn.save(model.state_dict(), args.out / "model.npz")        # a plain .npz file
    model.load_state_dict(gn.load(args.out / "model.npz"))       # and it loads back
    print(f"wrote {args.out / 'model.npz'}")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs_run = np.arange(1, len(history) + 1)
    ax1.plot(epochs_run, history.train_loss, "o-", label="training")
    ax1.plot(epochs_run, history.val_loss, "s-", label="tuning")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss per epoch")
    ax2.plot(epochs_run, history.train_acc, "o-", label="training")
    ax2.plot(epochs_run, history.val_acc, "s-", label="tuning")
    ax2.set(xlabel="epoch", ylabel="accuracy", title=f"Accuracy per epoch (test: {test_acc:.1%})")
    for ax in (ax1, ax2):
        ax.legend()
        ax.set_xticks(epochs_run)
    save(fig, args.out, "digits_convnet_curves.png")

    with gn.no_grad():
        predicted = model(gn.tensor(x_test[:24])).numpy().argmax(1)
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
    for ax, img, p, t in zip(axes.ravel(), x_test[:24, 0], predicted, y_test[:24]):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"says {p}" + ("" if p == t else f" (is {t})"), color="k" if p == t else "red",
                     fontsize=10)
        ax.set(xticks=[], yticks=[])
    fig.suptitle("LeNet-5 on test digits it never saw (red: wrong)")
    fig.tight_layout()
    save(fig, args.out, "digits_convnet_predictions.png")
    return {"test_accuracy": test_acc, "history": history}


if __name__ == "__main__":
    main()
