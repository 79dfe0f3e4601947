"""Minibatch discrimination against Salimans et al.'s formula, written out sample by sample."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from ganblocks.layers.minibatch_discrimination import MinibatchDiscrimination, minibatch_discrimination

F64 = torch.float64


def formula(x: torch.Tensor, t: torch.Tensor, include_self: bool) -> torch.Tensor:
    """o(x_i)_b = Σ_j exp(-Σ_c |M_ibc - M_jbc|), M_ibc = Σ_a x_ia T_abc, appended to x; j ≠ i unless
    include_self (improved-gan's MinibatchLayer leaves j = i out by adding 1e6 to the diagonal)."""
    n, a = x.shape
    _, b, c = t.shape
    xs, ts = x.tolist(), t.tolist()
    m = [
        [[sum(xs[i][k] * ts[k][kb][kc] for k in range(a)) for kc in range(c)] for kb in range(b)]
        for i in range(n)
    ]
    out = []
    for i in range(n):
        o = []
        for kb in range(b):
            js = [j for j in range(n) if include_self or j != i]
            o.append(sum(math.exp(-sum(abs(m[i][kb][kc] - m[j][kb][kc]) for kc in range(c))) for j in js))
        out.append(xs[i] + o)
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("include_self", [True, False])
def test_matches_formula(include_self: bool) -> None:
    x, t = torch.randn(5, 3, dtype=F64), 0.3 * torch.randn(3, 4, 2, dtype=F64)
    out = minibatch_discrimination(x, t, include_self=include_self)
    assert out.shape == (5, 7)
    assert_close(out, formula(x, t, include_self))


def test_default_leaves_out_the_self_term_as_the_authors_code() -> None:
    x, t = torch.randn(5, 3, dtype=F64), 0.3 * torch.randn(3, 4, 2, dtype=F64)
    assert_close(minibatch_discrimination(x, t), formula(x, t, include_self=False))
    layer = MinibatchDiscrimination(3, 4, 2, dtype=F64)
    assert not layer.include_self
    assert_close(layer(x), formula(x, layer.weight.detach(), include_self=False))


def test_self_term_is_exactly_one_and_identical_samples_count_the_batch() -> None:
    x, t = torch.randn(4, 3, dtype=F64), torch.randn(3, 2, 5, dtype=F64)
    with_self = minibatch_discrimination(x, t, include_self=True)
    assert_close(with_self[:, 3:] - 1, minibatch_discrimination(x, t, include_self=False)[:, 3:])
    collapsed = minibatch_discrimination(x[:1].expand(6, 3), t)  # a collapsed generator: all samples alike
    assert torch.equal(collapsed[:, 3:], torch.full((6, 2), 5.0, dtype=F64))
    collapsed_self = minibatch_discrimination(x[:1].expand(6, 3), t, include_self=True)
    assert torch.equal(collapsed_self[:, 3:], torch.full((6, 2), 6.0, dtype=F64))
    single = minibatch_discrimination(x[:1], t)
    assert torch.equal(single[:, 3:], torch.zeros(1, 2, dtype=F64))


def test_small_similarities_keep_their_precision_in_float32() -> None:
    # Samples 20 apart: c = exp(-20) ≈ 2e-9, below float32's spacing at 1, so (1 + c) - 1 would give 0.
    x, t = torch.tensor([[0.0], [20.0], [45.0]]), torch.ones(1, 1, 1)
    out = minibatch_discrimination(x, t)[:, 1]
    expected = formula(x.double(), t.double(), include_self=False)[:, 1]
    assert expected.min() > 1e-20
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=0.0)  # float32 relative, no floor


def test_permutation_equivariant() -> None:
    x, t = torch.randn(6, 3, dtype=F64), torch.randn(3, 2, 2, dtype=F64)
    perm = torch.randperm(6)
    assert_close(minibatch_discrimination(x[perm], t), minibatch_discrimination(x, t)[perm])


def test_gradcheck_and_gradgradcheck() -> None:
    # Distinct samples: |.| is differentiable away from 0 (the self term is constant and contributes 0).
    x = torch.randn(3, 2, dtype=F64, requires_grad=True)
    t = (0.5 * torch.randn(2, 2, 3, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: minibatch_discrimination(a, b, include_self=True), (x, t))
    assert torch.autograd.gradgradcheck(lambda a, b: minibatch_discrimination(a, b), (x, t))


def test_module() -> None:
    layer = MinibatchDiscrimination(64, 16, 4, dtype=F64)
    assert layer.weight.shape == (64, 16, 4) and layer.weight.dtype == F64
    assert abs(layer.weight.std().item() - 0.05) < 0.005  # 4096 draws of N(0, 0.05^2)
    x = torch.randn(3, 64, dtype=F64)
    assert_close(layer(x), formula(x, layer.weight.detach(), False))
    other = MinibatchDiscrimination(64, 16, 4, include_self=True, init_std=1.0, device="meta")
    assert other.weight.device.type == "meta"
    assert repr(other) == "MinibatchDiscrimination(64, 16, 4, include_self=True, init_std=1.0)"
    x.requires_grad_(True)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_errors() -> None:
    layer = MinibatchDiscrimination(4, 2, 3)
    with pytest.raises(
        ValueError, match=r"x must have shape \(N, in_features\) with in_features = 4, got \(2, 5\)"
    ):
        layer(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(2, 4, 1, 1\)"):
        layer(torch.randn(2, 4, 1, 1))
    with pytest.raises(
        ValueError,
        match=r"weight must have shape \(in_features, num_kernels, kernel_dim\) with in_features = 4",
    ):
        minibatch_discrimination(torch.randn(2, 4), torch.randn(4, 6))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        layer(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_kernels must be an int >= 1, got 0"):
        MinibatchDiscrimination(4, 0, 3)
    with pytest.raises(ValueError, match="init_std must be > 0, got 0"):
        MinibatchDiscrimination(4, 2, 3, init_std=0)
