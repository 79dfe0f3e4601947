"""pix2pixHD's multimodal inference: k-means, per-class clusters of instance features, sampling, the encoder."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks import FeatureEncoder
from ganblocks.functional import (
    encoder_feature_clusters,
    instance_avg_pool,
    instance_features,
    sample_cluster_features,
)
from ganblocks.generators import kmeans


def sse(points: torch.Tensor, centers: torch.Tensor) -> float:
    return float(torch.cdist(points.double(), centers.double()).square().min(1).values.sum())


def test_kmeans_finds_separated_clusters() -> None:
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([m + 0.1 * torch.randn(20, 2) for m in means])
    centers, assign = kmeans(points, 3)
    # Each center is the mean of its 20 points, and the points of one blob share a center.
    for k in range(3):
        members = points[assign == k]
        assert members.shape[0] == 20
        assert_close(centers[k], members.mean(0))
    assert {tuple(assign[i : i + 20].unique().tolist()) for i in (0, 20, 40)} == {(0,), (1,), (2,)}


def test_kmeans_optimal_on_small_sets() -> None:
    """Against the exhaustive optimum over every 2-partition of 7 points in 1-D (two well separated groups)."""
    points = torch.tensor([[0.0], [0.5], [1.0], [7.0], [7.2], [8.0], [9.0]])
    best = min(
        sum(float(((points[list(g)] - points[list(g)].mean()) ** 2).sum()) for g in (a, b) if g)
        for r in range(1, 7)
        for a in itertools.combinations(range(7), r)
        for b in [tuple(i for i in range(7) if i not in a)]
    )
    centers, _ = kmeans(points, 2)
    assert sse(points, centers) == pytest.approx(best)


def test_kmeans_is_deterministic_and_uses_the_generator() -> None:
    points = torch.randn(50, 3)
    a, _ = kmeans(points, 4)
    b, _ = kmeans(points, 4)
    torch.testing.assert_close(a, b)  # None means a generator seeded with 0
    c, _ = kmeans(points, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, c)


def test_kmeans_as_many_clusters_as_points_and_duplicates() -> None:
    points = torch.tensor([[1.0], [2.0], [4.0]])
    centers, _ = kmeans(points, 3)
    assert sorted(centers.flatten().tolist()) == [1.0, 2.0, 4.0]
    same = torch.ones(4, 2)
    centers, assign = kmeans(same, 2)  # every point coincides: no NaN, every center on the points
    assert torch.equal(centers, torch.ones(2, 2)) and assign.shape == (4,)


def test_kmeans_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"num_clusters must be at most the number of points \(3\), got 4"):
        kmeans(torch.randn(3, 2), 4)
    with pytest.raises(ValueError, match="points must have 2 dimensions"):
        kmeans(torch.randn(3), 1)


def pix2pixhd_encode_features(
    feat: torch.Tensor, inst: torch.Tensor, label: torch.Tensor
) -> dict[int, list[torch.Tensor]]:
    """pix2pixHD's encode_features per image (value at the instance's middle pixel, area test), with the
    instance's label read from the label map instead of from the id."""
    out: dict[int, list[torch.Tensor]] = {}
    _, _, h, w = feat.shape
    for b in range(feat.shape[0]):
        for i in inst[b].unique().tolist():
            idx = (inst[b : b + 1] == i).nonzero()
            num = idx.shape[0]
            y, x = idx[num // 2, 2], idx[num // 2, 3]
            if num / (h * w // 32) > 0.5:
                out.setdefault(int(label[b, 0, y, x]), []).append(feat[b, :, y, x])
    return out


def test_instance_features_match_pix2pixhd() -> None:
    inst = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    inst[:, :, :8] = 1
    inst[0, :, :2, :2] = 2  # 4 pixels: below 1/64 of 256, dropped
    inst[1, :, 8:, 8:] = 5
    label = torch.where(inst == 0, 3, inst).long()
    feat = torch.randn(2, 3, 16, 16)
    # Encoder outputs are constant on each instance: make them so.
    feat = instance_avg_pool(feat, inst)
    vectors, labels = instance_features(feat, inst, label)
    expected = pix2pixhd_encode_features(feat, inst, label)
    assert sorted(labels.tolist()) == sorted(k for k, v in expected.items() for _ in v)
    for k, v in expected.items():
        got = sorted(vectors[labels == k].tolist())
        assert_close(torch.tensor(got), torch.tensor(sorted(t.tolist() for t in v)))


@pytest.mark.parametrize("min_area", [2.0, 64.0, -0.1, float("nan")])
def test_min_area_is_a_fraction(min_area: float) -> None:
    feat, inst = torch.randn(1, 2, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="min_area must be"):
        instance_features(feat, inst, inst, min_area=min_area)
    with pytest.raises(ValueError, match="min_area must be"):
        encoder_feature_clusters(feat, inst, inst, min_area=min_area)


def test_min_area_bounds_are_accepted() -> None:
    feat, inst = torch.randn(1, 2, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.long)
    inst[..., 2:] = 1
    assert instance_features(feat, inst, inst, min_area=0.0)[0].shape == (2, 2)
    assert instance_features(feat, inst, inst, min_area=0.49)[0].shape == (2, 2)
    assert instance_features(feat, inst, inst, min_area=1.0)[0].shape == (0, 2)


def test_encoder_feature_clusters_per_class() -> None:
    # 4 images, two instances each: class 1 has features near (1, 1) or (-1, -1), class 2 near (5, 0).
    feats, insts, labels = [], [], []
    for i in range(4):
        inst = torch.zeros(1, 1, 8, 8, dtype=torch.long)
        inst[..., 4:] = 1
        f = torch.empty(1, 2, 8, 8)
        f[..., :4] = (1.0 if i % 2 else -1.0) + 0.01 * i
        f[..., 4:] = torch.tensor([5.0, 0.0]).view(1, 2, 1, 1)
        feats.append(f)
        insts.append(inst)
        labels.append(inst + 1)
    centers = encoder_feature_clusters(torch.cat(feats), torch.cat(insts), torch.cat(labels), num_clusters=2)
    assert sorted(centers) == [1, 2]
    assert_close(centers[1].sort(0).values, torch.tensor([[-0.99, -0.99], [1.02, 1.02]]))
    # min(K, M) = 2 centers, as pix2pixHD; its four points coincide, so both centers sit on them.
    assert_close(centers[2], torch.tensor([[5.0, 0.0], [5.0, 0.0]]))
    one = encoder_feature_clusters(torch.cat(feats), torch.cat(insts), torch.cat(labels), num_clusters=1)
    assert_close(one[1], torch.tensor([[0.015, 0.015]]))


def test_sample_cluster_features() -> None:
    inst = torch.tensor([[[[0, 0, 1, 1], [2, 2, 1, 1]]]])
    label = torch.tensor([[[[4, 4, 7, 7], [9, 9, 7, 7]]]])
    centers = {4: torch.tensor([[1.0, 2.0]]), 7: torch.tensor([[10.0, 20.0], [30.0, 40.0]])}
    seen = set()
    for seed in range(12):
        out = sample_cluster_features(inst, label, centers, generator=torch.Generator().manual_seed(seed))
        assert out.shape == (1, 2, 2, 4)
        assert out[0, :, 0, 0].tolist() == [1.0, 2.0] and out[0, :, 0, 1].tolist() == [1.0, 2.0]
        assert out[0, :, 1, :2].abs().sum() == 0  # class 9 has no centers
        block = out[0, :, :, 2:].flatten(1)
        assert (block == block[:, :1]).all()  # one center per instance
        seen.add(tuple(block[:, 0].tolist()))
    assert seen == {(10.0, 20.0), (30.0, 40.0)}
    g = torch.Generator().manual_seed(3)
    a = sample_cluster_features(inst, label, centers, generator=g)
    b = sample_cluster_features(inst, label, centers, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"centers\[7\] must have shape \(K, 2\)"):
        sample_cluster_features(inst, label, {4: centers[4], 7: torch.zeros(2, 3)})


@requires_triton
def test_encoder_on_triton_matches_reference() -> None:
    e = FeatureEncoder(3, 3, base_channels=2, num_downsampling=1).to(TRITON_DEVICE)
    x = torch.randn(2, 3, 4, 4, device=TRITON_DEVICE)
    inst = torch.randint(0, 2, (2, 1, 4, 4), device=TRITON_DEVICE) * 1000
    from ganblocks.ops import use_backend

    with use_backend("triton"):
        y = e(x, inst)
    assert_close(y, e(x, inst, backend="torch"), scale=10.0)  # conv outputs through two backends of norms
