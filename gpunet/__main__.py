"""``python -m gpunet train`` / ``python -m gpunet evaluate WEIGHTS``: the same as the ``gpunet`` command."""
import sys

from .cli import main

sys.exit(main())
