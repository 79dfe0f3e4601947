"""ConditionalBatchNorm2d: batch statistics and per-class (or embedded) gain and bias by hand; torch's BN state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from ganblocks import ConditionalBatchNorm2d


def normalised(x: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean((0, 2, 3), keepdim=True)  # biased, as BatchNorm normalises
    return (x - mean) / torch.sqrt(var + eps)


def test_per_class_gain_and_bias_by_hand() -> None:
    torch.manual_seed(0)
    bn = ConditionalBatchNorm2d(3, num_classes=4, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        assert bn.weight is not None and bn.bias is not None
        assert torch.equal(bn.weight, torch.ones(4, 3, dtype=torch.float64)) and not bn.bias.any()
        bn.weight.normal_()
        bn.bias.normal_()
    x, y = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.tensor([0, 3, 3, 1, 2])
    gamma, beta = bn.weight.detach()[y], bn.bias.detach()[y]
    want = normalised(x, 1e-3) * gamma[:, :, None, None] + beta[:, :, None, None]
    assert_close(bn(x, y), want)
    # One-hot class vectors are the indices; soft vectors mix the rows.
    assert_close(bn(x, F.one_hot(y, 4).double()), want)
    mix = torch.full((5, 4), 0.25, dtype=torch.float64)
    mixed = (
        normalised(x, 1e-3) * bn.weight.detach().mean(0)[None, :, None, None]
        + bn.bias.detach().mean(0)[None, :, None, None]
    )
    assert_close(bn(x, mix), mixed)


def test_embedding_mode_by_hand() -> None:
    torch.manual_seed(1)
    bn = ConditionalBatchNorm2d(3, embedding_dim=6, dtype=torch.float64)
    x, e = torch.randn(4, 3, 2, 2, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    assert bn.gain is not None and bn.shift is not None
    gamma = 1 + e @ bn.gain.weight.detach().T + bn.gain.bias.detach()
    beta = e @ bn.shift.weight.detach().T + bn.shift.bias.detach()
    assert_close(bn(x, e), normalised(x, 1e-5) * gamma[:, :, None, None] + beta[:, :, None, None])
    nn.utils.parametrizations.spectral_norm(bn.gain)  # BigGAN's spectral norm wraps the linear layers
    assert bn(x, e).shape == x.shape


def test_running_statistics_follow_torch_batchnorm() -> None:
    torch.manual_seed(2)
    bn = ConditionalBatchNorm2d(3, num_classes=2, momentum=0.3)
    ref = nn.BatchNorm2d(3, momentum=0.3, affine=False)
    for _ in range(3):
        x = torch.randn(6, 3, 4, 4) * 2 + 1
        bn(x, torch.zeros(6, dtype=torch.long))
        ref(x)
    for mine, theirs in ((bn.norm.running_mean, ref.running_mean), (bn.norm.running_var, ref.running_var)):
        assert mine is not None and theirs is not None
        assert_close(mine, theirs)
    bn.eval()
    ref.eval()
    x = torch.randn(2, 3, 4, 4)
    assert_close(bn(x, torch.tensor([1, 1])), ref(x))  # gains 1, biases 0: the plain BN in eval mode
    assert sorted(bn.state_dict()) == [
        "bias",
        "norm.num_batches_tracked",
        "norm.running_mean",
        "norm.running_var",
        "weight",
    ]


def test_gradcheck_both_modes() -> None:
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    classes = ConditionalBatchNorm2d(2, num_classes=3, dtype=torch.float64)
    torch.autograd.gradcheck(lambda t: classes(t, torch.tensor([0, 2, 1, 2])), (x,))
    embedded = ConditionalBatchNorm2d(2, embedding_dim=3, dtype=torch.float64)
    e = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(embedded, (x, e))


def test_repr_and_errors() -> None:
    assert "num_classes=10" in repr(ConditionalBatchNorm2d(4, num_classes=10))
    assert "embedding_dim=8" in repr(ConditionalBatchNorm2d(4, embedding_dim=8))
    with pytest.raises(ValueError, match="exactly one of num_classes"):
        ConditionalBatchNorm2d(4)
    with pytest.raises(ValueError, match="exactly one of num_classes"):
        ConditionalBatchNorm2d(4, num_classes=2, embedding_dim=3)
    with pytest.raises(ValueError, match="momentum must be"):
        ConditionalBatchNorm2d(4, num_classes=2, momentum=2.0)
    bn = ConditionalBatchNorm2d(4, num_classes=2)
    with pytest.raises(ValueError, match=r"x must have num_features=4 channels, got shape \(2, 3, 2, 2\)"):
        bn(torch.zeros(2, 3, 2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 1\]"):
        bn(torch.zeros(2, 4, 2, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        bn(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"y must be the embedding of shape \(N, embedding_dim\) = \(2, 8\)"):
        ConditionalBatchNorm2d(4, embedding_dim=8)(torch.zeros(2, 4, 2, 2), torch.zeros(2, 7))
