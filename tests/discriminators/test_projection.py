"""Projection discriminator: the logit shift against ⟨e_y, Σ_hw h⟩ written out here, on every discriminator."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from ganblocks import AdversarialLoss, ConditionalBatchNorm2d, R1Penalty
from ganblocks.discriminators import (
    DiscriminatorOutput,
    MSGDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    ProjectionDiscriminator,
    ProjectionHead,
    image_pyramid,
)


def _weight(head: ProjectionHead, scale: int = 0) -> torch.Tensor:
    emb = head.embeddings[scale]
    assert isinstance(emb, nn.Embedding)
    return emb.weight


def projection_formula(
    out: DiscriminatorOutput,
    y: torch.Tensor,
    weights: list[torch.Tensor],
    *,
    equalized: bool,
    pool: str = "sum",
) -> list[torch.Tensor]:
    """logit + g ⟨E[y] (/√K), pool(h)⟩ per scale, with an explicit loop over the batch."""
    result = []
    for logit, feats, w in zip(out.logits, out.features, weights):
        h = feats[-1].detach().double()
        k, c = w.shape
        shifted = []
        for i in range(h.shape[0]):
            phi = h[i].reshape(c, -1).sum(1)
            if pool == "mean":
                phi = phi / h[i].reshape(c, -1).shape[1]
            e = w[int(y[i])].double() / (math.sqrt(k) if equalized else 1.0)
            term = float(torch.dot(e, phi)) / (math.sqrt(c) if equalized else 1.0)
            shifted.append(logit[i].double() + term)
        result.append(torch.stack(shifted))
    return result


def test_patch_discriminator_shift_matches_formula() -> None:
    torch.manual_seed(0)
    base = PatchDiscriminator(3, num_layers=2, base_channels=8).double()
    d = ProjectionDiscriminator(base, num_classes=5, feature_channels=32, dtype=torch.float64)
    x, y = torch.randn(3, 3, 24, 24, dtype=torch.float64), torch.tensor([0, 4, 2])
    got = d(x, y)
    plain = base(x, return_features=True)
    expected = projection_formula(plain, y, [_weight(d.head, 0).detach()], equalized=True)
    assert_close(got.logits[0], expected[0])
    assert got.logits[0].shape == plain.logits[0].shape  # the projection broadcasts over the patches
    assert len(got.features[0]) == len(plain.features[0])  # features pass through for feature matching
    # A different class moves every patch of an image by the same amount, and not by zero.
    moved = d(x, (y + 1) % 5).logits[0] - got.logits[0]
    assert (moved - moved[:, :, :1, :1]).abs().max() < 1e-12 and moved.abs().min() > 0


def test_multiscale_has_one_embedding_per_scale() -> None:
    torch.manual_seed(1)
    base = MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4).double()
    d = ProjectionDiscriminator(base, num_classes=3, feature_channels=8, pool="mean", equalized_lr=False)
    d = d.double()
    assert d.head.num_scales == 2 and d.head.feature_channels == [8, 8]
    x, y = torch.randn(2, 3, 32, 32, dtype=torch.float64), torch.tensor([1, 2])
    weights = [_weight(d.head, s).detach() for s in range(2)]
    expected = projection_formula(base(x, return_features=True), y, weights, equalized=False, pool="mean")
    for got, want in zip(d(x, y).logits, expected):
        assert_close(got, want)
    assert not torch.equal(weights[0][:, :1], weights[1][:, :1])  # separate embeddings per scale


def test_msg_discriminator_and_class_vectors() -> None:
    torch.manual_seed(2)
    base = MSGDiscriminator(3, resolution=16, base_channels=4, max_channels=8).double()
    d = ProjectionDiscriminator(base, num_classes=4, feature_channels=8, dtype=torch.float64)
    assert d.head.num_scales == 1  # MSG's num_scales counts input images, its output has one scale
    pyramid = image_pyramid(torch.randn(4, 3, 16, 16, dtype=torch.float64), base.num_scales)
    y = torch.tensor([3, 0, 1, 3])
    expected = projection_formula(
        base(pyramid, return_features=True), y, [_weight(d.head, 0).detach()], equalized=True
    )
    assert_close(d(pyramid, y).logits[0], expected[0])
    # A one-hot class vector is the index; a soft vector mixes the embeddings linearly.
    onehot = F.one_hot(y, 4).double()
    assert_close(d(pyramid, onehot).logits[0], d(pyramid, y).logits[0])
    mix = 0.25 * onehot + 0.75 * F.one_hot((y + 1) % 4, 4).double()
    plain = base(pyramid).logits[0]
    shift = lambda c: d(pyramid, c).logits[0] - plain  # noqa: E731
    assert_close(shift(mix), 0.25 * shift(y) + 0.75 * shift((y + 1) % 4))


def test_head_gradients_and_r1_through_it() -> None:
    head = ProjectionHead(3, 4, dtype=torch.float64)
    logits = torch.randn(2, 1, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([2, 0])
    torch.autograd.gradcheck(lambda a, b: head(DiscriminatorOutput([a], [[b]]), y).logits[0], (logits, h))
    torch.manual_seed(3)
    d = ProjectionDiscriminator(
        PatchDiscriminator(3, num_layers=1, base_channels=4), num_classes=3, feature_channels=8
    )
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    out = d(x, torch.tensor([0, 1]))
    penalty = R1Penalty(gamma=1.0)(lambda t: d(t, torch.tensor([0, 1])), x)
    assert penalty > 0
    loss = AdversarialLoss("non_saturating").d_loss(out, d(torch.randn(2, 3, 16, 16), torch.tensor([2, 2])))
    loss.backward()
    grad = _weight(d.head, 0).grad
    assert grad is not None and grad.abs().sum() > 0


def test_init_and_spectral_norm() -> None:
    torch.manual_seed(4)
    eq = ProjectionHead(10, 64)
    w = _weight(eq, 0).detach()
    assert abs(float(w.std()) - 1.0) < 0.1  # stored N(0, 1), scaled at run time
    sn = ProjectionHead(10, 64, equalized_lr=False)
    bound = math.sqrt(6 / (10 + 64))  # Xavier-uniform
    assert float(_weight(sn, 0).detach().abs().max()) <= bound
    nn.utils.parametrizations.spectral_norm(sn.embeddings[0])
    out = sn(DiscriminatorOutput([torch.zeros(2, 1)], [[torch.ones(2, 64)]]), torch.tensor([0, 1]))
    assert out.logits[0].shape == (2, 1)
    assert "num_classes=10" in repr(eq) and "equalized_lr=False" in repr(sn)
    assert sorted(ProjectionDiscriminator(nn.Identity(), num_classes=2, feature_channels=3).state_dict()) == [
        "head.embeddings.0.weight"
    ]


def test_errors() -> None:
    head = ProjectionHead(3, 4)
    out = DiscriminatorOutput([torch.zeros(2, 1)], [[torch.zeros(2, 4, 2, 2)]])
    with pytest.raises(ValueError, match=r"y must hold class indices in \[0, 2\].*got values in \[0, 3\]"):
        head(out, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"y as class indices must have shape \(N,\) = \(2,\)"):
        head(out, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y as class vectors must have shape"):
        head(out, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        head(out, torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"scale 0 must have shape \(N=2, C=5"):
        ProjectionHead(3, 5)(out, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="no features at scale 0"):
        head(DiscriminatorOutput([torch.zeros(2, 1)], [[]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="must have 2 scale"):
        ProjectionHead(3, [4, 4])(out, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="output must be a DiscriminatorOutput"):
        head(torch.zeros(2, 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="num_classes must be"):
        ProjectionHead(0, 4)
    with pytest.raises(TypeError, match="feature_channels must be"):
        ProjectionHead(3, [])
    with pytest.raises(ValueError, match="pool must be"):
        ProjectionHead(3, 4, pool="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_scales \(3\) must match"):
        ProjectionHead(3, [4, 4], num_scales=3)
    with pytest.raises(TypeError, match=r"discriminator must be an nn\.Module"):
        ProjectionDiscriminator(lambda x: x, num_classes=2, feature_channels=3)  # type: ignore[arg-type]

    class Plain(nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return x

    with pytest.raises(TypeError, match="must return a DiscriminatorOutput"):
        ProjectionDiscriminator(Plain(), num_classes=2, feature_channels=3)(
            torch.zeros(2, 1), torch.tensor([0, 1])
        )


def test_compile_fullgraph_traces_the_head_and_conditional_bn() -> None:
    """No graph break: the labels' range check (a host read) is skipped while tracing."""
    head, bn = ProjectionHead(3, 8), ConditionalBatchNorm2d(8, num_classes=3)
    out = DiscriminatorOutput([torch.randn(2, 1, 3, 3)], [[torch.randn(2, 8, 4, 4)]])
    y = torch.tensor([0, 2])
    # The eager backend checks the trace without a CPU inductor compile (minutes on this machine).
    compiled = torch.compile(head, fullgraph=True, backend="eager")
    assert_close(compiled(out, y).logits[0], head(out, y).logits[0])
    h = out.features[0][0]
    assert_close(torch.compile(bn, fullgraph=True, backend="eager")(h, y), bn(h, y))


def test_half_features_are_pooled_in_float32() -> None:
    head = ProjectionHead(2, 4, equalized_lr=False)
    with torch.no_grad():
        _weight(head).fill_(1.0)
    # 64 × 64 positions of 8 in 4 channels: φ = 32768 per channel and ⟨e, φ⟩ = 131072, past float16's
    # largest number (65504) had it been summed in float16.
    h = torch.full((1, 4, 64, 64), 8.0, dtype=torch.float16)
    out = head(DiscriminatorOutput([torch.zeros(1, 1)], [[h]]), torch.tensor([1]))
    assert out.logits[0].dtype == torch.float32 and float(out.logits[0].detach()) == 131072.0
    # The logits keep their dtype.
    low = DiscriminatorOutput([torch.zeros(1, 1, dtype=torch.bfloat16)], [[h.to(torch.bfloat16) / 64]])
    out = head(low, torch.tensor([0]))
    assert out.logits[0].dtype == torch.bfloat16 and float(out.logits[0].detach()) == 2048.0
