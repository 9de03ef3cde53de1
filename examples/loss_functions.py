"""Loss functions: what does it cost to be off by d? And how to find the cheapest guess.

Part 1 -- the cost of being off by d = n_actual - n_guess, under
  * MAE (mean absolute error)      |d|
  * MSE (mean squared error)        d^2
  * binary cross-entropy           -(y log p + (1 - y) log(1 - p))
  * categorical cross-entropy      -sum_c y_c log p_c = -log(probability of the right answer)
For the two cross-entropies "off by d" means the right answer got probability 1 - d.
Every value is computed with gpunet's loss functions and checked against the formula.

Part 2 -- how many M&Ms in a bag? We count a few bags (noisy counts) and look for the single
number n_est that minimises  L(n_est) = mean_i (n_i - n_est)^2:
  * exhaustive search: try every guess on a fine grid and pick the lowest point;
  * gradient descent: start anywhere and let the marble roll downhill, using autograd's slope.
Both land on the same answer (the mean of the counts).

Run:  python examples/loss_functions.py [--fast] [--out DIR]
Writes loss_functions.png.
"""
import numpy as np

import gpunet as gn
from gpunet import functional as F
from _common import parse_args, plt, save


def regression_costs(d):
    """MAE and MSE of a guess that misses the actual count by d, computed by gpunet."""
    d = np.asarray(d, dtype=np.float64)
    actual, guess = gn.tensor(np.zeros_like(d)), gn.tensor(-d)     # n_actual - n_guess = d
    return {"MAE": F.l1_loss(guess, actual, reduction="none").numpy(),
            "MSE": F.mse_loss(guess, actual, reduction="none").numpy()}


def classification_costs(d):
    """The losses when the right answer got probability 1 - d (0 <= d < 1), computed by gpunet."""
    d = np.asarray(d, dtype=np.float64)
    p_right = gn.tensor(1.0 - d)
    costs = regression_costs(d)                      # MAE/MSE on a probability, for comparison
    costs["binary cross-entropy"] = F.binary_cross_entropy(
        p_right, gn.tensor(np.ones_like(d)), reduction="none").numpy()
    # Three classes: the right one (class 0) gets 1 - d, the other two share d.
    # softmax(log p) = p, so these logits give exactly those probabilities (log 0 clipped).
    probs = np.clip(np.stack([1.0 - d, d / 2, d / 2], axis=1), 1e-300, 1.0)
    right = gn.tensor(np.zeros(len(d), dtype=np.int64))
    costs["categorical cross-entropy"] = F.softmax_cross_entropy(
        gn.tensor(np.log(probs)), right, reduction="none").numpy()
    return costs


def main(argv=None):
    args = parse_args(__doc__, argv)

    # --- Part 1: the cost of being off by d --------------------------------------------------
    print("cost of being off by d (the slide's table; sqrt and 10^(d-1) are other possible choices)")
    d = np.array([1.0, 2.0, 4.0, 8.0])
    regression = regression_costs(d)
    print(f"{'d':>10}" + "".join(f"{v:>12g}" for v in d))
    print(f"{'sqrt(d)':>10}" + "".join(f"{v:>12.3g}" for v in np.sqrt(d)))
    print(f"{'MAE |d|':>10}" + "".join(f"{v:>12g}" for v in regression["MAE"]))
    print(f"{'MSE d^2':>10}" + "".join(f"{v:>12g}" for v in regression["MSE"]))
    print(f"{'10^(d-1)':>10}" + "".join(f"{v:>12.0f}" for v in 10 ** (d - 1)))

    misses = np.linspace(0.0, 0.95, 96)
    costs = classification_costs(misses)
    formulas = {"MAE": np.abs(misses), "MSE": misses ** 2,
                "binary cross-entropy": -np.log(1 - misses),
                "categorical cross-entropy": -np.log(1 - misses)}
    worst = max(np.abs(costs[k] - formulas[k]).max() for k in costs)
    print(f"gpunet's four losses match their formulas: worst difference {worst:.1e}")

    # The slide's "error function": four points, each given a probability of its right class.
    for probs in ([0.6, 0.2, 0.1, 0.7], [0.7, 0.9, 0.8, 0.6]):
        p = gn.tensor(np.array(probs))
        bce = F.binary_cross_entropy(p, gn.tensor(np.ones(4)), reduction="sum").item()
        print(f"  probabilities {probs}: product {np.prod(probs):.4f}, "
              f"cross-entropy -sum(log p) = {bce:.1f}")

    # --- Part 2: how many M&Ms in a bag? -----------------------------------------------------
    rng = np.random.default_rng(7)
    counts = rng.poisson(55, size=12).astype(np.float64)
    print(f"M&Ms counted in {len(counts)} bags: {counts.astype(int).tolist()}")

    def loss(guess):
        """L(n_est) = mean over bags of (n_i - n_est)^2, for each guess in a tensor of guesses."""
        return ((gn.tensor(counts) - guess) ** 2).mean(axis=-1)

    # Exhaustive search: evaluate the loss for every guess on a grid, take the lowest point.
    step = 0.01
    grid = np.arange(40.0, 70.0 + step / 2, step)
    grid_losses = loss(gn.tensor(grid[:, None])).numpy()     # all 3001 guesses in one go
    exhaustive = float(grid[grid_losses.argmin()])
    print(f"exhaustive search over {len(grid)} guesses: best n_est = {exhaustive:.2f}")

    # Gradient descent: the slope of the loss says which way is downhill; take a step that way.
    guess = gn.tensor(np.array(42.0), requires_grad=True)
    lr, steps = 0.1, 60                              # cheap: same in --fast
    path = []
    for _ in range(steps):
        value = loss(guess)
        path.append((guess.item(), value.item()))
        guess.grad = None
        value.backward()
        guess.data -= lr * guess.grad.data              # roll downhill
    descent = guess.item()
    print(f"gradient descent, {steps} steps of lr={lr}: n_est = {descent:.4f} "
          f"(mean of the counts {counts.mean():.4f}; exhaustive search {exhaustive:.2f})")

    # --- Pictures ------------------------------------------------------------------------------
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    dd = np.linspace(-3, 3, 121)
    reg = regression_costs(dd)
    ax = axes[0, 0]
    ax.plot(dd, reg["MAE"], label="MAE  |d|")
    ax.plot(dd, reg["MSE"], label="MSE  d²")
    ax.plot(dd, np.sqrt(np.abs(dd)), ":", label="sqrt|d| (another choice)")
    ax.set(xlabel="deviation d = n_actual - n_guess", ylabel="cost",
           title="Regression: cost of being off by d")
    ax.legend()
    ax = axes[0, 1]
    for name in ("MAE", "MSE", "binary cross-entropy", "categorical cross-entropy"):
        style = "--" if name.startswith("categorical") else "-"
        ax.plot(misses, costs[name], style, label=name)
    ax.set(xlabel="d = 1 - probability given to the right answer", ylabel="cost",
           title="Classification: cross-entropy = -log p(right answer)")
    ax.legend()
    ax = axes[1, 0]
    ax.plot(grid, grid_losses, color="gray", label="L(n_est), every guess tried")
    gx, gy = np.array(path).T
    ax.plot(gx, gy, "o-", ms=4, color="tab:orange", label="gradient descent steps")
    ax.axvline(exhaustive, color="tab:blue", ls="--", label=f"exhaustive search: {exhaustive:.2f}")
    ax.set(xlabel="guess n_est (M&Ms per bag)", ylabel="mean squared error",
           title="Pick the lowest point, or roll downhill")
    ax.legend()
    ax = axes[1, 1]
    ax.semilogy(np.arange(len(gy)), gy - grid_losses.min() + 1e-12, "o-", ms=3, color="tab:orange")
    ax.set(xlabel="gradient descent step", ylabel="loss above the minimum (log scale)",
           title="The loss curve: gradient descent converges")
    fig.tight_layout()
    save(fig, args.out, "loss_functions.png")
    return {"costs": costs, "formulas": formulas, "table": regression, "counts": counts,
            "exhaustive": exhaustive, "descent": descent, "grid_step": step, "path": path}


if __name__ == "__main__":
    main()
