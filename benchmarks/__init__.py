"""ganblocks benchmarks: the public API against the plain formulations users write today.

``python -m benchmarks --help``; one script per area (ops, layers, networks, losses, training, dispatch, metrics),
one shared helper (:mod:`.common`), the baselines in :mod:`.plain`. Results: ``benchmarks/results/``.
"""

import importlib.util
import sys
from pathlib import Path

# From a checkout where ganblocks is not installed (a bare GPU machine): use the checkout's src/.
_SRC = Path(__file__).resolve().parent.parent / "src"
if importlib.util.find_spec("ganblocks") is None and (_SRC / "ganblocks").is_dir():
    sys.path.insert(0, str(_SRC))
