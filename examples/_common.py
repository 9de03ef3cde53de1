"""What every example shares: the command line (``--fast``, ``--out``) and saving figures.

Each example calls ``args = parse_args(__doc__, argv)`` and then reads ``args.fast`` (a small
training budget, for the tests and a quick look) and ``args.out`` (where the PNGs go).

    python examples/x_or_o.py                 # full budget, pictures in examples/out/
    python examples/x_or_o.py --fast          # small budget
    GPUNET_EXAMPLES_FAST=1 python examples/x_or_o.py
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw into files; no window, works on servers
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def parse_args(doc: str | None, argv=None) -> argparse.Namespace:
    """--fast (or env GPUNET_EXAMPLES_FAST=1) shortens training; --out DIR sets where PNGs go."""
    first_line = (doc or "").strip().splitlines()[0] if doc else None
    parser = argparse.ArgumentParser(description=first_line)
    parser.add_argument("--fast", action="store_true",
                        help="small training budget (also: GPUNET_EXAMPLES_FAST=1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the pictures (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.fast = args.fast or os.environ.get("GPUNET_EXAMPLES_FAST", "") not in ("", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def save(fig, out: Path, name: str) -> Path:
    """Write the figure as out/name, close it, and say where it went."""
    path = Path(out) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path
