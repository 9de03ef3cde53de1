"""X or O? A small convnet on 9x9 images whose pixels are -1 (background) or +1 (ink).

Computers are literal: a shifted, bigger or thicker X matches the original X pixel by pixel
badly. A convnet instead matches *pieces* of the image -- small features such as a diagonal
stroke -- wherever they are:

  * convolution (filtering): line a 3x3 feature up with each image patch, multiply pixel by
    pixel, add up (and divide by 9: a perfect match scores 1);
  * ReLU: a stack of images becomes a stack with no negative values;
  * max pooling (window 2, stride 2): a stack of images becomes a stack of smaller images;
  * a fully connected layer lets every pooled value vote for X or O.
The features and the votes are not written by hand: backpropagation learns them.

Run:  python examples/x_or_o.py [--fast] [--out DIR]
Writes x_or_o_data.png (training examples) and x_or_o_features_X.png / _O.png
(the learned filters and one image after each stage).
"""
import numpy as np

import gpunet as gn
from gpunet import functional as F, nn, optim
from gpunet.data import DataLoader, TensorDataset
from gpunet.train import evaluate, fit
from _common import parse_args, plt, save

CLASSES = ["X", "O"]


def draw(shape, size, top, left, thick):
    """A 9x9 image of -1 with an X or an O of the given size, position and stroke thickness."""
    i, j = np.mgrid[0:size, 0:size]
    if shape == "X":                                   # both diagonals, `thick` pixels either side
        ink = (np.abs(i - j) < thick) | (np.abs(i + j - (size - 1)) < thick)
    else:                                              # a ring `thick` wide, corners cut off
        to_edge = np.minimum.reduce([i, j, size - 1 - i, size - 1 - j])
        corner = np.isin(i, (0, size - 1)) & np.isin(j, (0, size - 1))
        ink = (to_edge < thick) & ~corner
    img = -np.ones((9, 9), dtype=np.float32)
    img[top:top + size, left:left + size][ink] = 1
    return img


def make_dataset(n, seed):
    """n random variants: X or O, size 5..9, any position that fits, thickness 1-2, 0-2 flipped pixels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        size = int(rng.integers(5, 10))
        top, left = rng.integers(0, 9 - size + 1, size=2)
        thick = int(rng.integers(1, 3)) if size >= 7 else 1   # thick strokes only on big letters
        img = draw(CLASSES[label], size, top, left, thick)
        flips = rng.integers(0, 9, size=(int(rng.integers(0, 3)), 2))
        img[flips[:, 0], flips[:, 1]] *= -1                   # a little noise
        images.append(img)
        labels.append(label)
    return np.stack(images)[:, None], np.array(labels, dtype=np.int64)


def stages(model, image):
    """The image after each stage: conv -> ReLU -> max pool, as (filters, H, W) arrays."""
    conv, relu, pool = model[0], model[1], model[2]
    with gn.no_grad():
        c = conv(gn.tensor(image[None, None]))
        r = relu(c)
        p = pool(r)
    return [("convolution", c.numpy()[0]), ("ReLU", r.numpy()[0]), ("max pool", p.numpy()[0])]


def plot_stages(model, image, name, out):
    filters = model[0].weight.numpy()[:, 0]
    rows = stages(model, image)
    fig, axes = plt.subplots(len(filters), 5, figsize=(11, 2.3 * len(filters) + 0.6))
    for f in range(len(filters)):
        axes[f, 0].imshow(image, cmap="gray", vmin=-1, vmax=1)
        axes[f, 0].set_title(f"input {name} 9x9", fontsize=9)
        lim = np.abs(filters[f]).max()
        axes[f, 1].imshow(filters[f], cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[f, 1].set_title(f"learned filter {f + 1} (3x3)", fontsize=9)
        lim = np.abs(rows[0][1][f]).max()              # one colour scale along the row
        for col, (stage, maps) in enumerate(rows, start=2):
            im = axes[f, col].imshow(maps[f], cmap="coolwarm", vmin=-lim, vmax=lim)
            axes[f, col].set_title(f"{stage} {maps.shape[1]}x{maps.shape[2]}", fontsize=9)
        fig.colorbar(im, ax=axes[f, 4], fraction=0.046, pad=0.04)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"An {name} through the convnet: each filter responds where its piece of the image is;\n"
                 "ReLU turns negatives (blue) into 0 (grey), max pooling shrinks the stack (red = high)",
                 fontsize=10)
    fig.tight_layout()
    save(fig, out, f"x_or_o_features_{name}.png")


def main(argv=None):
    args = parse_args(__doc__, argv)
    x_img, o_img = draw("X", 7, 1, 1, 1), draw("O", 7, 1, 1, 1)

    # Filtering by hand: a diagonal feature matched against the X, divided by the 9 pixels.
    feature = np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float32) / 9
    match = F.conv2d(gn.tensor(x_img[None, None]), gn.tensor(feature[None, None])).numpy()[0, 0]
    print(f"hand-set diagonal feature on the X: best match {match.max():.2f} "
          f"(1 = perfect), worst {match.min():.2f}")

    n_train, epochs = (400, 8) if args.fast else (1200, 20)
    x_train, y_train = make_dataset(n_train, seed=0)
    x_test, y_test = make_dataset(400, seed=1)
    gn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, kernel_size=3),   # 3 features of 3x3: 9x9 -> 3 maps of 7x7
        nn.ReLU(),
        nn.MaxPool2d(2),                  # 7x7 -> 3x3
        nn.Flatten(),                     # 3 * 3 * 3 = 27 values...
        nn.Linear(27, 2),                 # ...each votes for X and for O
    )
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True, seed=0)
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=200)
    history = fit(model, loss_fn, optim.Adam(model.parameters(), lr=0.02), train_loader,
                  epochs=epochs, progress=False)
    test_loss, test_acc = evaluate(model, loss_fn, test_loader)
    print(f"trained {epochs} epochs on {n_train} images: training accuracy {history.train_acc[-1]:.1%}, "
          f"accuracy on {len(y_test)} new images {test_acc:.1%}")
    with gn.no_grad():
        probs = F.softmax(model(gn.tensor(np.stack([x_img, o_img])[:, None])), axis=1).numpy()
    for name, p in zip(CLASSES, probs):
        print(f"  the slide's {name}: P(X) = {p[0]:.2f}, P(O) = {p[1]:.2f}")
    shapes = [m.shape for _, m in stages(model, x_img)]
    print(f"  stack of images: 9x9 -> conv {shapes[0]} -> ReLU {shapes[1]} -> max pool {shapes[2]}")

    fig, axes = plt.subplots(2, 8, figsize=(12, 3.6))
    for ax, k in zip(axes.ravel(), range(16)):
        ax.imshow(x_train[k, 0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{CLASSES[y_train[k]]}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Training images: X and O shifted, scaled, thickened, with a few flipped pixels "
                 "(white = +1, black = -1)", fontsize=10)
    fig.tight_layout()
    save(fig, args.out, "x_or_o_data.png")
    plot_stages(model, x_img, "X", args.out)
    plot_stages(model, o_img, "O", args.out)
    return {"test_accuracy": test_acc, "train_accuracy": history.train_acc[-1],
            "hand_match": float(match.max()), "stage_shapes": shapes, "slide_probs": probs}


if __name__ == "__main__":
    main()
