"""Pure-PyTorch references: the specification of every fused op, differentiable to any order."""
