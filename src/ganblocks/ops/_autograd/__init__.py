"""``torch.library`` custom ops wrapping the Triton kernels, with fake kernels and autograd formulas.

Importing these modules registers the ops but does not import Triton: the kernels are loaded on the first
eager call, so ``torch.compile`` can trace the ops through their fake kernels on any machine.
"""
