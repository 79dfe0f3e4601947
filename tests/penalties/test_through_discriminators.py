"""Penalties and losses through ganblocks' MultiScaleDiscriminator and MSGDiscriminator, on both backends.

The penalties' double backward runs through every fused op of the discriminators (instance norm + lrelu,
bias_act, minibatch stddev); the Triton path (interpreted on CPU) must give the reference's values.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import pytest
import torch
from helpers import assert_close, requires_triton
from torch import nn

from ganblocks.discriminators import MSGDiscriminator, MultiScaleDiscriminator, image_pyramid
from ganblocks.losses import AdversarialLoss, FeatureMatchingLoss
from ganblocks.ops import Backend, use_backend
from ganblocks.penalties import gradient_penalty, r1_penalty, r1_penalty_from_outputs, r2_penalty

Penalty = Callable[[nn.Module, Any, Any], torch.Tensor]
PENALTIES: dict[str, Penalty] = {
    "r1": lambda d, real, fake: r1_penalty(d, real),
    "r2": lambda d, real, fake: r2_penalty(d, fake),
    "wgan_gp": lambda d, real, fake: gradient_penalty(
        d, real, fake, generator=torch.Generator().manual_seed(3)
    ),
}


def _multiscale() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4, return_features=True).double()
    return d, torch.randn(2, 3, 12, 12, dtype=torch.float64), torch.randn(2, 3, 12, 12, dtype=torch.float64)


def _msg() -> tuple[nn.Module, list[torch.Tensor], list[torch.Tensor]]:
    torch.manual_seed(0)
    d = MSGDiscriminator(
        3, resolution=16, base_channels=4, max_channels=16, combine="cat_lin", mbstd_group_size=2
    )
    d = d.double()
    real = image_pyramid(torch.randn(2, 3, 16, 16, dtype=torch.float64), d.num_scales)
    fake = [torch.randn_like(t) for t in real]  # a generator's per-scale outputs
    return d, real, fake


Inputs = Union[torch.Tensor, list[torch.Tensor]]
BUILDERS: dict[str, Callable[[], tuple[nn.Module, Inputs, Inputs]]] = {"multiscale": _multiscale, "msg": _msg}


def _run(builder: str, penalty: str, backend: Backend) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    d, real, fake = BUILDERS[builder]()
    with use_backend(backend):
        value = PENALTIES[penalty](d, real, fake)
        value.backward()
    grads = {n: p.grad for n, p in d.named_parameters()}
    for name, g in grads.items():
        assert g is not None and torch.isfinite(g).all(), (
            f"{builder}/{penalty}: {name} has no finite gradient"
        )
    return value.detach(), grads  # type: ignore[return-value]


@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_every_parameter_gets_a_finite_gradient(builder: str, penalty: str) -> None:
    value, grads = _run(builder, penalty, "torch")
    assert torch.isfinite(value) and value > 0
    # Not only the DDP guard's zeros: the penalty reaches the convolutions of every scale.
    assert sum(int(g.abs().sum() > 0) for g in grads.values()) >= len(grads) // 2


@requires_triton
@pytest.mark.triton
@pytest.mark.parametrize("builder", list(BUILDERS))
@pytest.mark.parametrize("penalty", ["r1", "wgan_gp"])
def test_backends_agree(builder: str, penalty: str) -> None:
    ref_value, ref_grads = _run(builder, penalty, "torch")
    value, grads = _run(builder, penalty, "triton")
    assert_close(value, ref_value, torch.float32)
    for name, g in grads.items():
        assert_close(g, ref_grads[name], torch.float32)


def test_msg_gradient_reaches_every_input_scale() -> None:
    d, real, _ = _msg()
    points = [t.clone().requires_grad_() for t in real]
    out = d(points)
    r1 = r1_penalty_from_outputs(out, points)
    grads = torch.autograd.grad(out.logits[0].sum(), points, retain_graph=True)
    assert all(g.abs().sum() > 0 for g in grads)
    assert_close(r1, r1_penalty(d, real))


def test_losses_take_multiscale_output() -> None:
    d, real, fake = _multiscale()
    fake.requires_grad_()
    out_real, out_fake = d(real), d(fake)
    adv = AdversarialLoss("lsgan")
    expected_g = sum(((f - 1) ** 2).mean() for f in out_fake.logits)
    assert_close(adv.g_loss(out_fake), expected_g)
    fm = FeatureMatchingLoss.pix2pixhd(num_scales=2, num_layers=1)
    expected_fm = sum(
        10 * 0.5 * 2.0 * (f - r).abs().mean()
        for fs, rs in zip(out_fake.features, out_real.features)
        for f, r in zip(fs, rs)
    )
    loss = fm(out_fake, out_real)
    assert_close(loss, expected_fm)
    loss.backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_unpacked_output_is_refused_not_misread(builder: str) -> None:
    """``logits, feats = D(x)`` re-packed as a tuple would count every feature map as a scale of logits."""
    d, real, fake = BUILDERS[builder]()

    def unpacked(x: Any) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, feats = d(x, return_features=True)
        return logits, feats

    with pytest.raises(TypeError, match=r"discriminator output is a tuple of 2 \(list\), which is ambiguous"):
        r1_penalty(unpacked, real)
    with pytest.raises(TypeError, match=r"discriminator output is a tuple of 2 \(list\)"):
        gradient_penalty(unpacked, real, fake)
    with pytest.raises(TypeError, match=r"fake_pred is a tuple of 2 \(list\), which is ambiguous"):
        AdversarialLoss("hinge").g_loss(unpacked(fake))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fake is a tuple of 2 \(list\)"):
        FeatureMatchingLoss()(unpacked(fake), unpacked(real))
    # The DiscriminatorOutput itself (what D returns) gives R1 of the logits only.
    assert_close(r1_penalty(lambda x: d(x, return_features=True), real), r1_penalty(d, real))


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_penalty_through_a_discriminator_of_another_dtype_names_both(builder: str) -> None:
    d, real, _ = BUILDERS[builder]()  # float64 discriminators
    real32 = real.float() if isinstance(real, torch.Tensor) else [t.float() for t in real]
    with pytest.raises(
        TypeError, match=r"must have the dtype of .*'s parameters \(torch\.float64\), got torch\.float32"
    ):
        r1_penalty(d, real32)
    with torch.no_grad(), pytest.raises(RuntimeError, match="needs autograd"):
        r1_penalty(d, real)
