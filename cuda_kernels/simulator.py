"""The one rule for "is Numba's CUDA simulator on", read the way Numba reads it.

Numba reads ``NUMBA_ENABLE_CUDASIM`` once, when its config module loads, as an integer (empty or
unparsable means 0).  After that the environment no longer matters to Numba, so neither does it
here: the loaded config is the answer.  This module imports nothing, so ``gpunet.backends`` can
ask before choosing a backend without loading numba.

Example:
    >>> read_setting("1"), read_setting("0"), read_setting(""), read_setting("yes")
    (True, False, False, False)
"""
from __future__ import annotations

import os
import sys

_CONFIG_MODULES = ("numba.cuda.core.config", "numba.core.config")  # numba-cuda, then numba's own


def read_setting(raw: str | None) -> bool:
    """``NUMBA_ENABLE_CUDASIM``'s value as Numba's config reads it: an int, 0 when empty or not one."""
    if raw is None or not raw.strip():
        return False
    try:
        return int(raw) != 0
    except ValueError:
        return False


def simulator_on() -> bool:
    """True when Numba's CUDA simulator is (or, once numba loads, will be) on.

    Example:
        >>> isinstance(simulator_on(), bool)
        True
    """
    for name in _CONFIG_MODULES:
        config = sys.modules.get(name)
        if config is not None and hasattr(config, "ENABLE_CUDASIM"):
            return bool(config.ENABLE_CUDASIM)
    return read_setting(os.environ.get("NUMBA_ENABLE_CUDASIM"))
