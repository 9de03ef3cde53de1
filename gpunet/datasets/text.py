"""``shakespeare()``: 200 KB of Shakespeare's plays embedded in the package, for character models.

The text is the first 199,994 characters of "tiny Shakespeare" (Karpathy's char-rnn data:
scenes from *Coriolanus* and *King Richard III*), public domain; see
``data/LICENSE-shakespeare.txt`` for the source, the cut and checksums.

Example:
    >>> from gpunet import datasets
    >>> text = datasets.shakespeare()
    >>> len(text), text[:14]
    (199994, 'First Citizen:')
"""

import functools
import os

__all__ = ["shakespeare"]

_TEXT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shakespeare_200k.txt")


@functools.lru_cache(maxsize=1)
def shakespeare() -> str:
    """The embedded Shakespeare text as one ``str`` (ASCII, ``\\n`` line ends)."""
    if not os.path.exists(_TEXT_FILE):
        raise FileNotFoundError(
            f"the embedded text {_TEXT_FILE} is missing; the gpunet install is incomplete "
            f'(a wheel must include package data "gpunet.datasets" = ["data/*"])'
        )
    with open(_TEXT_FILE, encoding="ascii", newline="") as f:
        return f.read()
