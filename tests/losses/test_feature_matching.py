"""Feature matching: pix2pixHD's exact weighting, the general form, detaching, the multi-tensor path, errors."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from helpers import assert_close, grad_of, tensor_sum

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.losses import FeatureMatchingLoss, _distance, feature_matching_loss


def _nested(num_d: int, n_layers: int, dtype: torch.dtype = torch.float64) -> list[list[torch.Tensor]]:
    """pix2pixHD-shaped output: per scale n_layers + 1 features and then the logits."""
    out = []
    for i in range(num_d):
        size = 8 >> i
        feats = [torch.randn(2, 4 * (j + 1), size, size, dtype=dtype) for j in range(n_layers + 1)]
        out.append([*feats, torch.randn(2, 1, size, size, dtype=dtype)])
    return out


def _out(nested: list[list[torch.Tensor]]) -> DiscriminatorOutput:
    """pix2pixHD nested lists as feature matching takes them: through DiscriminatorOutput.from_nested."""
    return DiscriminatorOutput.from_nested(nested)


def pix2pixhd_reference(pred_fake, pred_real, num_d: int, n_layers_d: int, lambda_feat: float):
    """pix2pixHD's models/pix2pixHD_model.py loop, verbatim apart from names."""
    criterion_feat = torch.nn.L1Loss()
    loss_g_gan_feat = 0
    feat_weights = 4.0 / (n_layers_d + 1)
    d_weights = 1.0 / num_d
    for i in range(num_d):
        for j in range(len(pred_fake[i]) - 1):
            loss_g_gan_feat += (
                d_weights
                * feat_weights
                * criterion_feat(pred_fake[i][j], pred_real[i][j].detach())
                * lambda_feat
            )
    return loss_g_gan_feat


@pytest.mark.parametrize(("num_d", "n_layers"), [(3, 3), (2, 1)])
def test_pix2pixhd_preset_is_exact(num_d: int, n_layers: int) -> None:
    fake, real = _nested(num_d, n_layers), _nested(num_d, n_layers)
    loss = FeatureMatchingLoss.pix2pixhd(num_scales=num_d, num_layers=n_layers)
    expected = pix2pixhd_reference(fake, real, num_d, n_layers, 10.0)
    assert_close(loss(_out(fake), _out(real)), expected)
    # The same output built field by field, as the discriminators here return it.
    built = DiscriminatorOutput([s[-1] for s in fake], [s[:-1] for s in fake])
    assert_close(loss(built, _out(real)), expected)


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_general_form(criterion: Literal["l1", "l2"]) -> None:
    fake, real = _nested(2, 2), _nested(2, 2)
    lw, sw, lam = [0.5, 2.0, 3.0], [1.0, 0.25], 7.0
    p = 1 if criterion == "l1" else 2
    expected = tensor_sum(
        lam * sw[s] * lw[j] * (fake[s][j] - real[s][j]).abs().pow(p).mean()
        for s in range(2)
        for j in range(3)
    )
    got = feature_matching_loss(
        _out(fake), _out(real), layer_weights=lw, scale_weights=sw, criterion=criterion, weight=lam
    )
    assert_close(got, expected)
    # Defaults: layer weight 1, scale weight 1 / num_scales.
    expected_default = tensor_sum(
        (fake[s][j] - real[s][j]).abs().mean() / 2 for s in range(2) for j in range(3)
    )
    assert_close(feature_matching_loss(_out(fake), _out(real)), expected_default)
    assert_close(
        feature_matching_loss(_out(fake), _out(real), layer_weights=2.0, scale_weights=1.0),
        4 * expected_default,
    )


def test_real_is_detached_and_fake_gets_l1_gradient() -> None:
    fake = [[torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True), torch.zeros(2, 1)]]
    real = [[torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True), torch.zeros(2, 1)]]
    feature_matching_loss(_out(fake), _out(real)).backward()
    assert real[0][0].grad is None
    expected = torch.sign(fake[0][0] - real[0][0]).detach() / fake[0][0].numel()
    assert_close(grad_of(fake[0][0]), expected)


def test_gradcheck() -> None:
    f = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    r = [torch.randn(2, 3, 3, 3, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)]
    for criterion in ("l1", "l2"):
        assert torch.autograd.gradcheck(
            lambda a, b, c=criterion: feature_matching_loss(_out([[a, b, b]]), _out([[*r, b]]), criterion=c),
            (f, g),
        )


def test_loop_fallback_equals_foreach(monkeypatch: pytest.MonkeyPatch) -> None:
    fake, real = _nested(2, 2), _nested(2, 2)
    for criterion in ("l1", "l2"):
        fast = feature_matching_loss(
            _out(fake), _out(real), layer_weights=[1.0, 2.0, 3.0], criterion=criterion
        )
        with monkeypatch.context() as m:
            m.setattr(_distance, "_has_foreach", lambda: False)
            slow = feature_matching_loss(
                _out(fake), _out(real), layer_weights=[1.0, 2.0, 3.0], criterion=criterion
            )
        assert_close(fast, slow)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_features_accumulate_in_float32(dtype: torch.dtype) -> None:
    fake, real = _nested(2, 1, dtype), _nested(2, 1, dtype)
    got = FeatureMatchingLoss.pix2pixhd(2, 1)(_out(fake), _out(real))
    assert got.dtype == torch.float32
    ref = pix2pixhd_reference(
        [[t.double() for t in s] for s in fake], [[t.double() for t in s] for s in real], 2, 1, 10.0
    )
    assert_close(got, ref, dtype)


def test_channels_last() -> None:
    fake, real = _nested(2, 1), _nested(2, 1)
    cl = [[t.contiguous(memory_format=torch.channels_last) for t in s] for s in fake]
    assert_close(feature_matching_loss(_out(cl), _out(real)), feature_matching_loss(_out(fake), _out(real)))


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_reduction_is_over_samples_of_per_sample_losses(criterion: Literal["l1", "l2"]) -> None:
    fake, real = _nested(3, 2), _nested(3, 2)
    for batch in (fake, real):  # a third sample, so the per-sample values differ
        for scale in batch:
            scale[:] = [torch.cat([t, 3 * t[:1]]) for t in scale]
    loss = FeatureMatchingLoss.pix2pixhd(3, 2)
    each = FeatureMatchingLoss(
        layer_weights=loss.layer_weights,
        scale_weights=loss.scale_weights,
        weight=10.0,
        reduction="none",
        criterion=criterion,
    )(_out(fake), _out(real))
    # Each sample alone, through the default reduction: its own mean over its elements.
    alone = torch.stack(
        [
            feature_matching_loss(
                _out([[t[i : i + 1] for t in s] for s in fake]),
                _out([[t[i : i + 1] for t in s] for s in real]),
                layer_weights=loss.layer_weights,
                scale_weights=loss.scale_weights,
                weight=10.0,
                criterion=criterion,
            )
            for i in range(3)
        ]
    )
    assert each.shape == (3,)
    assert_close(each, alone)
    default = feature_matching_loss(
        _out(fake),
        _out(real),
        layer_weights=loss.layer_weights,
        scale_weights=loss.scale_weights,
        weight=10.0,
        criterion=criterion,
    )
    assert_close(default, each.mean())
    total = feature_matching_loss(
        _out(fake),
        _out(real),
        layer_weights=loss.layer_weights,
        scale_weights=loss.scale_weights,
        weight=10.0,
        criterion=criterion,
        reduction="sum",
    )
    assert_close(total, each.sum())
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'max'"):
        FeatureMatchingLoss(reduction="max")  # type: ignore[arg-type]


def test_compile_fullgraph() -> None:
    fake, real = _nested(2, 1, torch.float32), _nested(2, 1, torch.float32)
    loss = FeatureMatchingLoss.pix2pixhd(2, 1)
    # aot_eager: Dynamo must capture the whole graph (fullgraph) and AOTAutograd trace the foreach ops;
    # inductor's C++ codegen would add ~20 s on a CPU-only machine without testing anything of ours.
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    assert_close(compiled(_out(fake), _out(real)), loss(_out(fake), _out(real)))


def test_nan_propagates() -> None:
    fake, real = _nested(1, 1), _nested(1, 1)
    fake[0][1][0, 0, 0, 0] = float("nan")
    assert torch.isnan(feature_matching_loss(_out(fake), _out(real)))


def test_repr() -> None:
    assert repr(FeatureMatchingLoss.pix2pixhd(2, 1)) == (
        "FeatureMatchingLoss(layer_weights=(2.0, 2.0), scale_weights=(0.5, 0.5), criterion='l1', weight=10.0, "
        "reduction='mean')"
    )


def test_bad_inputs() -> None:
    fake_n, real_n = _nested(2, 1), _nested(2, 1)
    fake, real = _out(fake_n), _out(real_n)
    with pytest.raises(ValueError, match="same number of scales, got 2 and 1"):
        feature_matching_loss(fake, _out(real_n[:1]))
    with pytest.raises(ValueError, match="same number of feature maps at scale 1, got 2 and 1"):
        feature_matching_loss(fake, _out([real_n[0], real_n[1][1:]]))
    bad = [real_n[0], [torch.zeros(2, 4, 3, 3, dtype=torch.float64), *real_n[1][1:]]]
    with pytest.raises(
        ValueError, match=r"same shape at scale 1, layer 0, got \(2, 4, 4, 4\) and \(2, 4, 3, 3\)"
    ):
        feature_matching_loss(fake, _out(bad))
    with pytest.raises(
        ValueError, match=r"layer_weights must have one weight per feature map at scale 0 \(2\), got 4"
    ):
        FeatureMatchingLoss.pix2pixhd(2, 3)(fake, real)
    with pytest.raises(ValueError, match=r"scale_weights must have one weight per scale \(2\), got 3"):
        FeatureMatchingLoss.pix2pixhd(3, 1)(fake, real)
    with pytest.raises(ValueError, match="holds no features"):
        feature_matching_loss([torch.zeros(2, 1)], [torch.zeros(2, 1)])
    with pytest.raises(ValueError, match="criterion must be one of"):
        FeatureMatchingLoss(criterion="l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        FeatureMatchingLoss.pix2pixhd(3, 0)
    with pytest.raises(TypeError, match="layer_weights must be a number or a sequence"):
        feature_matching_loss(fake, real, layer_weights="1")  # type: ignore[arg-type]


def test_nested_lists_must_be_wrapped() -> None:
    """Per-scale lists do not say whether each scale ends with its logits: only from_nested decides."""
    fake, real = _nested(2, 1), _nested(2, 1)
    with pytest.raises(
        TypeError, match=r"fake is a list of per-scale lists, which is ambiguous here.*from_nested"
    ):
        feature_matching_loss(fake, real)
    with pytest.raises(TypeError, match=r"real is a list of per-scale lists, which is ambiguous here"):
        FeatureMatchingLoss()(_out(fake), real)
    # A DiscriminatorOutput's own .features (logits excluded) passed bare would lose a layer: also refused.
    with pytest.raises(TypeError, match="fake is a list of per-scale lists"):
        feature_matching_loss(_out(fake).features, _out(real))


def test_ambiguous_structures_raise() -> None:
    logits, feats = torch.zeros(2, 1, 3, 3), [torch.ones(2, 4, 6, 6), torch.ones(2, 8, 3, 3)]
    with pytest.raises(
        TypeError,
        match=r"fake is a tuple of 2 \(list, tensor\), which is ambiguous.*DiscriminatorOutput\(\[logits\], \[features\]\)",
    ):
        feature_matching_loss((logits, feats), (logits, feats))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fake is a list of 2 \(list, tensor\), mixing tensors and lists"):
        feature_matching_loss([logits, feats], [logits, feats])  # type: ignore[arg-type]
    # Wrapped, the features are compared and the logits left out: L1 of ones against zeros is 1 per map.
    fake = DiscriminatorOutput([logits], [feats])
    real = DiscriminatorOutput([logits + 5.0], [[torch.zeros_like(f) for f in feats]])
    assert_close(feature_matching_loss(fake, real), torch.tensor(2.0))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"weight": float("nan")}, ValueError, "weight must be a finite number, got nan"),
    ({"weight": -1.0}, ValueError, "weight must be >= 0, got -1.0"),
    ({"weight": "10"}, TypeError, "weight must be a number, got str"),
    ({"layer_weights": float("inf")}, ValueError, "layer_weights must be a finite number, got inf"),
    ({"layer_weights": [1.0, float("nan")]}, ValueError, r"layer_weights\[1\] must be a finite number, got nan"),
    ({"scale_weights": [-0.5]}, ValueError, r"scale_weights\[0\] must be >= 0, got -0.5"),
])  # fmt: skip
def test_bad_weights(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        FeatureMatchingLoss(**kwargs)  # type: ignore[arg-type]
    fake, real = _out(_nested(1, 1)), _out(_nested(1, 1))
    with pytest.raises(error, match=match):
        feature_matching_loss(fake, real, **kwargs)  # type: ignore[arg-type]


def test_empty_batch_raises() -> None:
    empty = DiscriminatorOutput([torch.zeros(0, 1)], [[torch.zeros(0, 4, 2, 2)]])
    with pytest.raises(
        ValueError,
        match=r"fake \(scale 0, layer 0\) must hold at least one element, got an empty tensor of shape \(0, 4, 2, 2\)",
    ):
        feature_matching_loss(empty, empty)
