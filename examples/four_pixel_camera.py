"""A four-pixel camera: sort 2x2 images into solid, vertical, diagonal and horizontal.

Each pixel's brightness is -1 (black) or +1 (white); every category comes in both polarities
(a white-over-black horizontal and a black-over-white one). That makes simple rules fail:
no single weighted sum of the pixels can say "horizontal" for both an image x and its
negative -x (their sums differ only in sign), so a network without hidden layers cannot sort
all eight. A small network of weighted sum-and-squash (tanh) neurons can:

    4 pixels -> 6 tanh neurons -> 6 tanh neurons -> 4 answers (one per category)

Training compares each answer with the truth (1 for the right category, 0 otherwise) and
adjusts the weights to shrink the squared error. Then we draw what each hidden neuron
"looks for": its receptive field, the pattern of weights over the four pixels.

Run:  python examples/four_pixel_camera.py [--fast] [--out DIR]
Writes four_pixel_camera.png.
"""
import numpy as np

import gpunet as gn
from gpunet import nn, optim
from _common import parse_args, plt, save

CATEGORIES = ["solid", "vertical", "diagonal", "horizontal"]
PATTERNS = {  # one polarity of each; the other is its negative
    "solid": [[1, 1], [1, 1]],
    "vertical": [[1, -1], [1, -1]],
    "diagonal": [[1, -1], [-1, 1]],
    "horizontal": [[1, 1], [-1, -1]],
}


def make_images():
    """All eight 2x2 images (both polarities of each category) and their category numbers."""
    images, labels = [], []
    for label, name in enumerate(CATEGORIES):
        for sign in (1, -1):
            images.append(sign * np.array(PATTERNS[name], dtype=np.float32))
            labels.append(label)
    return np.stack(images), np.array(labels)


def train(model, x, truth, steps, lr):
    """Full-batch training on all eight images: answer, compare with the truth, adjust."""
    optimizer = optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    for _ in range(steps):
        error = loss_fn(model(x), truth)
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
    return error.item()


def accuracy(model, x, labels):
    with gn.no_grad():
        return float((model(x).numpy().argmax(1) == labels).mean())


def main(argv=None):
    args = parse_args(__doc__, argv)
    images, labels = make_images()
    x = gn.tensor(images.reshape(8, 4))                     # input vector: 4 pixel brightnesses
    truth = gn.tensor(np.eye(4, dtype=np.float32)[labels])  # 1 for the right category, else 0
    steps = 200 if args.fast else 400
    gn.manual_seed(0)

    # Simple rules can't do it: one layer of weighted sums, straight from pixels to answers.
    no_hidden = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    train(no_hidden, x, truth, steps, lr=0.05)
    print(f"no hidden layer:   {accuracy(no_hidden, x, labels):.0%} of the 8 images right")

    # Add layers of tanh neurons: receptive fields get more complex, and the task becomes easy.
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(),
                          nn.Linear(6, 4), nn.Tanh())
    final_error = train(model, x, truth, steps, lr=0.05)
    acc = accuracy(model, x, labels)
    print(f"two tanh layers:   {acc:.0%} of the 8 images right (mean squared error {final_error:.4f})")

    with gn.no_grad():
        answers = model(x).numpy()
    i = 6  # a horizontal image: truth vs answer, as on the slide
    print(f"image {i} ({CATEGORIES[labels[i]]}):")
    for c, name in enumerate(CATEGORIES):
        print(f"  {name:<11} truth {truth.numpy()[i, c]:.0f}  answer {answers[i, c]:+.2f}  "
              f"error {abs(truth.numpy()[i, c] - answers[i, c]):.2f}")

    # Receptive fields. Layer 1: each neuron's four weights, drawn as a 2x2 image.
    # Layer 2: a neuron sees the layer-1 fields mixed by its weights; ignoring the squash,
    # its field is the weighted sum  sum_j w_kj * field_j  -- more complex patterns.
    w1 = model[0].weight.numpy()                     # (6 neurons, 4 pixels)
    w2 = model[2].weight.numpy()                     # (6 neurons, 6 layer-1 neurons)
    fields = {"layer 1": w1, "layer 2": w2 @ w1}
    fig = plt.figure(figsize=(12, 6.6))
    grid = fig.add_gridspec(3, 24, height_ratios=[1, 0.8, 1.3], hspace=0.75, wspace=0.6,
                            left=0.09, right=0.97, top=0.84, bottom=0.1)
    for k in range(8):
        ax = fig.add_subplot(grid[0, 3 * k:3 * k + 3])          # 8 images, 3 columns each
        ax.imshow(images[k], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{CATEGORIES[labels[k]]}\nanswer: {CATEGORIES[answers[k].argmax()]}", fontsize=9)
        ax.set(xticks=[], yticks=[])
    for layer, (name, f) in enumerate(fields.items()):
        for n in range(6):                                       # 12 fields, 2 columns each
            ax = fig.add_subplot(grid[1, 2 * (layer * 6 + n):2 * (layer * 6 + n) + 2])
            lim = np.abs(f[n]).max()
            ax.imshow(f[n].reshape(2, 2), cmap="coolwarm", vmin=-lim, vmax=lim)
            ax.set_title(f"{name}\nneuron {n + 1}", fontsize=8)
            ax.set(xticks=[], yticks=[])
    ax = fig.add_subplot(grid[2, :])
    im = ax.imshow(answers.T, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set(xticks=range(8), xticklabels=[f"{k}: {CATEGORIES[labels[k]]}" for k in range(8)],
           yticks=range(4), yticklabels=CATEGORIES, xlabel="image", ylabel="output neuron",
           title="Answers (tanh outputs) for every image: the right category lights up")
    fig.colorbar(im, ax=ax, label="answer", fraction=0.03, pad=0.01)
    fig.suptitle("Four-pixel camera. Row 1: the images and the network's answer. "
                 "Row 2: receptive fields of the hidden neurons\n(red = positive weight, "
                 "blue = negative; layer 2 drawn as its weighted mix of layer-1 fields)", fontsize=11)
    save(fig, args.out, "four_pixel_camera.png")
    return {"accuracy": acc, "no_hidden_accuracy": accuracy(no_hidden, x, labels),
            "final_error": final_error}


if __name__ == "__main__":
    main()
