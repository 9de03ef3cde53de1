"""Filtering: slide a small kernel over an image, multiply pixel by pixel, add up.

This is what a convolution layer does, with kernels it learns. Here the kernels are set by hand,
the classic ones from an image editor's "convolution matrix" filter:

    blur (divide by 9)     sharpen           edge detect
      1  1  1              0 -1  0            0  1  0
      1  1  1             -1  5 -1            1 -4  1
      1  1  1              0 -1  0            0  1  0

All three are stacked into one weight tensor of shape (3 filters, 1 channel, 3, 3) and applied
to a real handwritten digit from gpunet's embedded MNIST subset with a single ``F.conv2d``
call: one image in, a stack of three filtered images out. Then ReLU (negatives -> 0) and 2x2
max pooling shrink each filtered image to half its size -- the layers of a convnet.

Run:  python examples/image_filters.py [--fast] [--out DIR]
Writes image_filters.png.
"""
import numpy as np

import gpunet as gn
from gpunet import functional as F
from gpunet.datasets import digits
from _common import parse_args, plt, save

KERNELS = {
    "blur": np.ones((3, 3)) / 9,
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
    "edge detect": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float),
}


def apply_filters(image):
    """image (H, W) -> filtered (3, H, W) and pooled (3, H/2, W/2), as NumPy arrays."""
    x = gn.tensor(image[None, None].astype(np.float32))                    # (N=1, C=1, H, W)
    w = gn.tensor(np.stack(list(KERNELS.values()))[:, None].astype(np.float32))  # (3, 1, 3, 3)
    filtered = F.conv2d(x, w, padding=1)   # pad with one ring of zeros: output stays H x W
    pooled = F.max_pool2d(F.relu(filtered), kernel_size=2)
    return filtered.numpy()[0], pooled.numpy()[0]


def main(argv=None):
    args = parse_args(__doc__, argv)
    (x_train, y_train), _ = digits()
    index = int(np.flatnonzero(y_train == 8)[0])          # a digit with curves and holes
    image = x_train[index, 0]
    filtered, pooled = apply_filters(image)
    print(f"digit {y_train[index]} of shape {image.shape}: conv2d with 3 kernels -> {filtered.shape}, "
          f"ReLU + 2x2 max pool -> {pooled.shape}")

    # What each filter does, in numbers: the sum of the kernel is what a flat patch gets
    # multiplied by. Blur and sharpen keep flat areas (sum 1); edge detect zeroes them (sum 0).
    for name, img in zip(KERNELS, filtered):
        print(f"  {name:<12} kernel sum {KERNELS[name].sum():+.0f}: output range "
              f"[{img.min():+.2f}, {img.max():+.2f}]")
    flat, _ = apply_filters(np.full((8, 8), 0.5))
    print(f"  a flat grey image: blur {flat[0, 4, 4]:.2f}, sharpen {flat[1, 4, 4]:.2f}, "
          f"edge {flat[2, 4, 4]:.2f} (away from the border)")

    fig, axes = plt.subplots(3, 4, figsize=(10.5, 8.6))
    names = ["original"] + list(KERNELS)
    kernels = [np.pad([[1.0]], 1)] + list(KERNELS.values())           # "original" = identity kernel
    images = [image] + list(filtered)
    small = [F.max_pool2d(gn.tensor(image[None, None]), 2).numpy()[0, 0]] + list(pooled)
    for col, name in enumerate(names):
        k = kernels[col]
        ax = axes[0, col]
        ax.imshow(k, cmap="coolwarm", vmin=-5, vmax=5)     # red: positive, blue: negative weight
        for (i, j), v in np.ndenumerate(k):
            text = "1/9" if name == "blur" else f"{v:g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=12, fontweight="bold")
        ax.set_title(f"{name} kernel" if col else "identity kernel")
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[1, col]
        im = ax.imshow(images[col], cmap="gray")
        ax.set_title(f"{name} {images[col].shape[0]}x{images[col].shape[1]}")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax = axes[2, col]
        ax.imshow(small[col], cmap="gray")
        ax.set_title(f"ReLU + max pool {small[col].shape[0]}x{small[col].shape[1]}"
                     if col else f"max pool {small[col].shape[0]}x{small[col].shape[1]}")
    for ax in axes[1:].ravel():
        ax.set(xlabel="x (pixel)", ylabel="y (pixel)")
    fig.suptitle(f"Hand-set 3x3 filters on a handwritten {y_train[index]} (one F.conv2d call, 3 filters)")
    fig.tight_layout()
    save(fig, args.out, "image_filters.png")
    return {"image": image, "filtered": filtered, "pooled": pooled, "flat": flat}


if __name__ == "__main__":
    main()
