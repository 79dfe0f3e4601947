"""ganblocks benchmarks: speed, memory, saved bytes and FLOPs against what users write today.

Run ``python -m benchmarks --help`` from the repository root. Results go to ``benchmarks/results/`` as JSON
(with a rendered markdown table beside each file); ``docs/benchmarks.md`` shows them.
"""
