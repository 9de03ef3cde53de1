"""Two ways to get the gradient: nudge every weight (numerical) or backpropagate (analytic).

Gradient descent needs, for every weight, the slope  d(error) / d(weight).

* Numerically: "for each weight, adjust it up and down a bit and see how the error changes":
      slope ~ (error(w + eps) - error(w - eps)) / (2 eps)        (central difference)
  That is two full forward passes *per weight*.
* Analytically: backpropagation applies the chain rule once, backwards through the network,
  and gets every slope for about the cost of one more forward pass.

The network is the small sigmoid network of backprop_by_hand.py (3 fields -> hidden -> 1) on the
same table. Both ways agree to ~1e-10, and the numerical way gets slower and slower as the
network grows, which is why every deep-learning library backpropagates.

Run:  python examples/gradients.py [--fast] [--out DIR]
Writes gradients.png: numerical vs backprop slopes, and the time each takes vs network size.
"""
import time

import numpy as np

import gpunet as gn
from gpunet import functional as F
from _common import parse_args, plt, save
from backprop_by_hand import make_table

EPS = 1e-6  # how far each weight is nudged up and down


def random_weights(n_hidden, seed=0):
    """float64 weights: finite differences lose half the digits, so we start with all 16."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(0, 1, (n_hidden, 3)), "b1": rng.normal(0, 1, n_hidden),
            "W2": rng.normal(0, 1, (1, n_hidden)), "b2": rng.normal(0, 1, 1)}


def error(weights, x, t):
    """Mean squared error of the network with these weights (NumPy arrays or tensors)."""
    w = {k: v if isinstance(v, gn.Tensor) else gn.tensor(v) for k, v in weights.items()}
    hidden = F.sigmoid(F.linear(x, w["W1"], w["b1"]))
    out = F.sigmoid(F.linear(hidden, w["W2"], w["b2"]))
    return F.mse_loss(out, t)


def numerical_gradient(weights, x, t):
    """Adjust each weight up and down by EPS and see how the error changes."""
    grads = {}
    for name, w in weights.items():
        g = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + EPS
            up = error(weights, x, t).item()
            w[i] = old - EPS
            down = error(weights, x, t).item()
            w[i] = old
            g[i] = (up - down) / (2 * EPS)
        grads[name] = g
    return grads


def backprop_gradient(weights, x, t):
    """One forward pass, one backward pass: every slope at once by the chain rule."""
    params = {k: gn.tensor(v, requires_grad=True) for k, v in weights.items()}
    error(params, x, t).backward()
    return {k: p.grad.numpy() for k, p in params.items()}


def timed(fn, *args, repeat=1):
    """fn's result and the CPU seconds it took (CPU time: other busy programs don't distort it)."""
    start = time.process_time()
    for _ in range(repeat):
        result = fn(*args)
    return result, (time.process_time() - start) / repeat


def main(argv=None):
    args = parse_args(__doc__, argv)
    fields, classes = make_table(64, seed=1)
    x = gn.tensor(((fields - fields.mean(0)) / fields.std(0)).astype(np.float64))
    t = gn.tensor(classes[:, None].astype(np.float64))

    sizes = [2, 4, 8, 16, 32] if args.fast else [2, 4, 8, 16, 32, 64, 128]
    rows = []
    print(f"{'hidden':>6} {'weights':>7} {'numerical':>11} {'backprop':>10} {'slower':>8} {'max |diff|':>11}")
    for n_hidden in sizes:
        weights = random_weights(n_hidden)
        numerical, t_num = timed(numerical_gradient, weights, x, t)
        analytic, t_bp = timed(backprop_gradient, weights, x, t, repeat=20)
        diff = max(np.abs(numerical[k] - analytic[k]).max() for k in weights)
        n_weights = sum(w.size for w in weights.values())
        rows.append((n_hidden, n_weights, t_num, t_bp, diff))
        print(f"{n_hidden:>6} {n_weights:>7} {t_num * 1e3:>9.1f}ms {t_bp * 1e3:>8.2f}ms "
              f"{t_num / t_bp:>7.0f}x {diff:>11.1e}")
        if n_hidden == 8:
            shown = (np.concatenate([numerical[k].ravel() for k in weights]),
                     np.concatenate([analytic[k].ravel() for k in weights]))
    worst = max(r[4] for r in rows)
    # In float64 (unit roundoff u ~ 1.1e-16), the central difference is off by about
    # eps^2 * |error'''| (truncation, ~1e-12) + u * |error| / eps (roundoff, ~1e-10).
    print(f"numerical and backprop slopes agree: worst difference {worst:.1e} "
          f"(float64 with eps={EPS:g} allows ~1e-10)")
    print(f"at {rows[-1][1]} weights the numerical gradient is {rows[-1][2] / rows[-1][3]:.0f}x slower")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    ax1.plot(shown[0], shown[1], "o", ms=5, label="one weight")
    lim = np.abs(shown[0]).max() * 1.1
    ax1.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="perfect agreement")
    ax1.set(xlabel="numerical slope  (error(w+eps) - error(w-eps)) / 2eps",
            ylabel="backpropagation slope  d error / d w",
            title="8 hidden neurons: every weight's slope, two ways")
    ax1.legend()
    n_w = [r[1] for r in rows]
    ax2.loglog(n_w, [r[2] * 1e3 for r in rows], "o-", label="numerical (2 forward passes per weight)")
    ax2.loglog(n_w, [r[3] * 1e3 for r in rows], "s-", label="backpropagation (1 forward + 1 backward)")
    ax2.set(xlabel="number of weights in the network", ylabel="CPU time for one gradient (ms)",
            title="Cost of the gradient as the network grows")
    ax2.set_ylim(bottom=min(r[3] for r in rows) * 1e3 / 20)   # room for the legend underneath
    ax2.legend(loc="lower right")
    save(fig, args.out, "gradients.png")
    return {"rows": rows, "worst_difference": worst}


if __name__ == "__main__":
    main()
