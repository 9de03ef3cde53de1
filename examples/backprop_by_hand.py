"""Backpropagation by hand: present a pattern, compare with the target, adjust the weights.

The course's table has three fields and a 0/1 class:

    fields          class
    1.4 2.7 1.9       0
    3.8 3.4 3.2       0
    6.4 2.8 1.7       1
    4.1 0.1 0.2       0
    etc ...

``make_table`` extends it with more rows from a documented rule. A small sigmoid network
(3 inputs -> 6 hidden -> 1 output) learns the rule one example at a time: forward pass,
error = target - output, backward pass, nudge every weight a little downhill. An epoch is one
pass over the training rows; we keep doing epochs until the *tuning*-set error stops improving.
No optimiser object is used: the weight update is one line you can read.

Run:  python examples/backprop_by_hand.py [--fast] [--out DIR]
Writes backprop_by_hand.png: training/tuning error per epoch and the decision boundary.
"""
import numpy as np

import gpunet as gn
from gpunet import functional as F
from _common import parse_args, plt, save

SLIDE_ROWS = np.array([[1.4, 2.7, 1.9], [3.8, 3.4, 3.2], [6.4, 2.8, 1.7], [4.1, 0.1, 0.2]])


def true_class(fields):
    """The hidden rule: class 1 when field1 > 4.5 + 0.5 * (field2 - 2.5)^2; field3 plays no part."""
    return (fields[:, 0] > 4.5 + 0.5 * (fields[:, 1] - 2.5) ** 2).astype(np.float32)


def make_table(n, seed=0):
    """n rows: the four slide rows first, then field1 ~ U(0, 7), field2, field3 ~ U(0, 4)."""
    rng = np.random.default_rng(seed)
    extra = rng.uniform([0, 0, 0], [7, 4, 4], size=(n - len(SLIDE_ROWS), 3))
    fields = np.concatenate([SLIDE_ROWS, extra]).astype(np.float32)
    return fields, true_class(fields)


def init_network(n_hidden, seed=0):
    """Random starting weights: the network knows nothing yet."""
    rng = np.random.default_rng(seed)
    shapes = {"W1": (n_hidden, 3), "b1": (n_hidden,), "W2": (1, n_hidden), "b2": (1,)}
    return {k: gn.tensor(rng.normal(0, 1, s).astype(np.float32), requires_grad=True)
            for k, s in shapes.items()}


def forward(net, x):
    """Weighted sum and squash, twice: a1 = sigmoid(W1 x + b1), out = sigmoid(W2 a1 + b2)."""
    hidden = F.sigmoid(F.linear(x, net["W1"], net["b1"]))
    return F.sigmoid(F.linear(hidden, net["W2"], net["b2"])), hidden


def squared_error(net, x, t):
    """Mean over rows of (target - output)^2, with no graph kept: for measuring only."""
    with gn.no_grad():
        out, _ = forward(net, gn.tensor(x))
        return float(((out.numpy()[:, 0] - t) ** 2).mean())


def main(argv=None):
    args = parse_args(__doc__, argv)
    n_train, max_epochs, patience, lr = (120, 25, 5, 0.5) if args.fast else (300, 150, 15, 0.5)
    fields, classes = make_table(n_train + 150, seed=1)
    # Scale each field to mean 0, spread 1 (using training rows only) so sigmoids start unsaturated.
    mean, std = fields[:n_train].mean(0), fields[:n_train].std(0)
    x_all = (fields - mean) / std
    x_train, t_train = x_all[:n_train], classes[:n_train]
    x_tune, t_tune = x_all[n_train:], classes[n_train:]

    gn.manual_seed(0)
    net = init_network(n_hidden=6)
    rng = np.random.default_rng(0)

    # The slide's hidden-to-output rule, checked once against autograd on the first pattern:
    #   delta_w_j = lr * a_j * (T - O) * O * (1 - O)      for the error 1/2 (T - O)^2
    out, hidden = forward(net, gn.tensor(x_train[:1]))
    (0.5 * F.mse_loss(out, gn.tensor(t_train[:1, None]), reduction="sum")).backward()
    o, a = out.item(), hidden.numpy()[0]
    slide_delta = lr * a * (t_train[0] - o) * o * (1 - o)
    autograd_delta = -lr * net["W2"].grad.numpy()[0]
    print(f"slide rule vs autograd for W2 on pattern 1: max difference "
          f"{np.abs(slide_delta - autograd_delta).max():.2e}")

    train_err, tune_err = [squared_error(net, x_train, t_train)], [squared_error(net, x_tune, t_tune)]
    best = (tune_err[0], {k: v.numpy().copy() for k, v in net.items()}, 0)
    for epoch in range(1, max_epochs + 1):
        for i in rng.permutation(n_train):                       # a random training pattern...
            out, _ = forward(net, gn.tensor(x_train[i:i + 1]))   # ...feed it through...
            loss = 0.5 * F.mse_loss(out, gn.tensor(t_train[i:i + 1, None]), reduction="sum")
            for w in net.values():                               # ...compare with the target...
                w.grad = None
            loss.backward()                                      # ...backpropagate the error...
            for w in net.values():                               # ...and adjust every weight.
                w.data -= lr * w.grad.data
        train_err.append(squared_error(net, x_train, t_train))
        tune_err.append(squared_error(net, x_tune, t_tune))
        if tune_err[-1] < best[0]:
            best = (tune_err[-1], {k: v.numpy().copy() for k, v in net.items()}, epoch)
        elif epoch - best[2] >= patience:                        # tuning error stopped improving
            break
    print(f"stopped after {epoch} epochs; best tuning error {best[0]:.4f} at epoch {best[2]}")
    net = {k: gn.tensor(v) for k, v in best[1].items()}         # keep the best weights

    with gn.no_grad():
        predicted = forward(net, gn.tensor(x_tune))[0].numpy()[:, 0] > 0.5
    accuracy = float((predicted == (t_tune > 0.5)).mean())
    print(f"tuning-set accuracy {accuracy:.1%} ({len(t_tune)} rows never trained on)")
    for row in SLIDE_ROWS:
        with gn.no_grad():
            p = forward(net, gn.tensor(((row - mean) / std)[None].astype(np.float32)))[0].item()
        print(f"  fields {row[0]:.1f} {row[1]:.1f} {row[2]:.1f} -> output {p:.2f}, "
              f"class {int(p > 0.5)} (table says {int(true_class(row[None])[0])})")

    # Pictures: error per epoch, and the learned boundary in fields 1 and 2 (field 3 at its mean).
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    ax1.plot(train_err, label="training set")
    ax1.plot(tune_err, label="tuning set")
    ax1.axvline(best[2], color="gray", ls=":", label=f"best tuning epoch ({best[2]})")
    ax1.set(xlabel="epoch", ylabel="mean squared error (log scale)", yscale="log",
            title="Error per epoch\n(stop when the tuning error stops improving)")
    ax1.legend()
    g1, g2 = np.meshgrid(np.linspace(0, 7, 120), np.linspace(0, 4, 80))
    grid = np.stack([g1.ravel(), g2.ravel(), np.full(g1.size, mean[2])], 1)
    with gn.no_grad():
        p = forward(net, gn.tensor(((grid - mean) / std).astype(np.float32)))[0].numpy()
    cs = ax2.contourf(g1, g2, p.reshape(g1.shape), levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.6)
    ax2.contour(g1, g2, p.reshape(g1.shape), levels=[0.5], colors="k")
    f2 = np.linspace(0, 4, 100)
    ax2.plot(4.5 + 0.5 * (f2 - 2.5) ** 2, f2, "k--", lw=1, label="true rule")
    tune_fields = fields[n_train:]
    for c, marker in ((0, "o"), (1, "^")):
        sel = t_tune == c
        ax2.scatter(tune_fields[sel, 0], tune_fields[sel, 1], marker=marker, s=18,
                    edgecolor="k", facecolor="white" if c == 0 else "black", label=f"class {c} (tuning)")
    ax2.set(xlim=(0, 7), ylim=(0, 4), xlabel="field 1", ylabel="field 2",
            title="Learned boundary (solid line: output = 0.5)\nin fields 1 and 2, field 3 held at its mean")
    ax2.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.colorbar(cs, ax=ax2, label="network output")
    save(fig, args.out, "backprop_by_hand.png")
    return {"train_error": train_err, "tune_error": tune_err, "best_epoch": best[2],
            "tune_accuracy": accuracy, "slide_vs_autograd": float(np.abs(slide_delta - autograd_delta).max())}


if __name__ == "__main__":
    main()
