"""ganblocks benchmarks: speed, memory, saved bytes and FLOPs against what users write today.

Run ``python -m benchmarks --help`` from the repository root. Results go to ``benchmarks/results/`` as JSON
(with a rendered markdown table beside each file); ``docs/benchmarks.md`` shows them.
"""

import importlib.util
import sys
from pathlib import Path

# Run from a checkout where ganblocks is not installed (a bare GPU machine, say): use the checkout's src/.
_SRC = Path(__file__).resolve().parent.parent / "src"
if importlib.util.find_spec("ganblocks") is None and (_SRC / "ganblocks").is_dir():
    sys.path.insert(0, str(_SRC))
