"""pix2pixHD's multimodal inference: per-class k-means of encoder features, and sampling from the clusters."""

from __future__ import annotations

from typing import Optional

import torch

from .._checks import check_finite, check_float_tensor, check_int
from .._precision import upcast
from ..ops.instance_avg_pool import check_instance_map
from ..ops.instance_avg_pool.reference import segment_ids


def _default_generator(generator: Optional[torch.Generator]) -> torch.Generator:
    # pix2pixHD runs scikit-learn's KMeans with random_state=0: the default is reproducible too.
    return torch.Generator().manual_seed(0) if generator is None else generator


def kmeans(
    points: torch.Tensor,
    num_clusters: int,
    *,
    num_iters: int = 300,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Lloyd's k-means with k-means++ seeding: centers minimizing :math:`\sum_i \min_k \|x_i - c_k\|^2`.

    Seeding picks the first center uniformly and each next one with probability proportional to the
    squared distance to the nearest chosen center (Arthur & Vassilvitskii, 2007). Lloyd's iterations then
    alternate nearest-center assignment and center = mean of its points until the assignment stops changing
    (or ``num_iters``); a cluster left empty is moved to the point farthest from its center.

    Args:
        points: ``(M, D)`` floating-point points.
        num_clusters: ``K``; at most ``M``.
        num_iters: maximum number of Lloyd iterations.
        generator: CPU ``torch.Generator`` for the seeding; None uses one seeded with 0, so results are
            reproducible by default.

    Returns:
        ``(centers, assignment)``: ``(K, D)`` centers in the dtype of ``points`` and the ``(M,)`` index of
        each point's center.

    Example:
        >>> import torch
        >>> from ganblocks.generators import kmeans
        >>> centers, assign = kmeans(torch.tensor([[0.0], [0.2], [10.0], [10.4]]), 2)
        >>> sorted(centers.flatten().tolist())
        [0.10000000149011612, 10.199999809265137]
    """
    check_float_tensor("points", points, exact_ndim=2)
    check_int("num_clusters", num_clusters)
    check_int("num_iters", num_iters)
    m = points.shape[0]
    if num_clusters > m:
        raise ValueError(f"num_clusters must be at most the number of points ({m}), got {num_clusters}")
    gen = _default_generator(generator)
    x = upcast(points)
    chosen = [int(torch.randint(m, (), generator=gen))]
    d2 = (x - x[chosen[0]]).square().sum(1)
    for _ in range(1, num_clusters):
        total = float(d2.sum())
        if total > 0:
            u = float(torch.rand((), generator=gen, dtype=torch.float64)) * total
            idx = int(torch.searchsorted(d2.cumsum(0), torch.tensor(u, dtype=d2.dtype, device=d2.device)))
            idx = min(idx, m - 1)
        else:  # every point coincides with a chosen center
            idx = next(i for i in range(m) if i not in chosen)
        chosen.append(idx)
        d2 = torch.minimum(d2, (x - x[idx]).square().sum(1))
    centers = x[chosen].clone()
    assignment = torch.full((m,), -1, dtype=torch.long, device=x.device)
    for _ in range(num_iters):
        dist = torch.cdist(x, centers).square()
        new = dist.argmin(1)
        if torch.equal(new, assignment):
            break
        assignment = new
        counts = torch.bincount(assignment, minlength=num_clusters)
        sums = torch.zeros_like(centers).index_add_(0, assignment, x)
        centers = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
        for k in (counts == 0).nonzero().flatten().tolist():
            far = int(dist.gather(1, assignment.unsqueeze(1)).squeeze(1).argmax())
            centers[k] = x[far]
            assignment[far] = k
            dist[far] = 0
    return centers.to(points.dtype), assignment


def _instance_labels(seg: torch.Tensor, num_segments: int, labels: torch.Tensor) -> torch.Tensor:
    """The most frequent label of each segment (ties: the smallest label)."""
    num_labels = int(labels.max()) + 1
    votes = torch.bincount(seg * num_labels + labels, minlength=num_segments * num_labels)
    return votes.view(num_segments, num_labels).argmax(1)


def _check_maps(
    features: Optional[torch.Tensor], instance_map: torch.Tensor, label_map: torch.Tensor
) -> None:
    check_instance_map("instance_map", instance_map, features)
    check_instance_map("label_map", label_map, features)
    if label_map.shape != instance_map.shape:
        raise ValueError(
            f"label_map must have the shape of instance_map {tuple(instance_map.shape)}, got {tuple(label_map.shape)}"
        )
    if label_map.numel() and int(label_map.min()) < 0:
        raise ValueError(f"label_map values must be >= 0, got a minimum of {int(label_map.min())}")


def instance_features(
    features: torch.Tensor, instance_map: torch.Tensor, label_map: torch.Tensor, *, min_area: float = 1 / 64
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One feature vector and class per instance (per sample), for instances larger than ``min_area``.

    The vector is the mean of ``features`` over the instance (the encoder output is already constant
    there); the class is the instance's most frequent label. pix2pixHD's ``encode_features`` keeps
    instances with ``count / (H·W // 32) > 0.5``, i.e. more than 1/64 of the image.

    Args:
        features: ``(N, C, H, W)`` encoder features.
        instance_map: ``(N, 1, H, W)`` integer instance ids.
        label_map: ``(N, 1, H, W)`` integer class labels (>= 0).
        min_area: keep instances covering more than this fraction of their image, in ``[0, 1]``.

    Returns:
        ``(vectors, labels)``: ``(M, C)`` float vectors and their ``(M,)`` class labels.
    """
    check_float_tensor("features", features, exact_ndim=4)
    _check_maps(features, instance_map, label_map)
    area = check_finite("min_area", min_area)
    if not 0.0 <= area <= 1.0:
        raise ValueError(
            f"min_area must be a fraction of the image area in [0, 1] (pix2pixHD keeps instances larger than "
            f"1/64 of the image), got {min_area}"
        )
    _, c, h, w = features.shape
    if features.numel() == 0:
        return features.new_zeros(0, c), torch.zeros(0, dtype=torch.long, device=features.device)
    seg, num_segments = segment_ids(instance_map)
    flat = upcast(features.detach()).permute(0, 2, 3, 1).reshape(-1, c)
    sums = flat.new_zeros(num_segments, c).index_add_(0, seg, flat)
    counts = torch.bincount(seg, minlength=num_segments)
    labels = _instance_labels(seg, num_segments, label_map.reshape(-1).long())
    keep = counts > min_area * h * w
    return (sums / counts.unsqueeze(1))[keep].to(features.dtype), labels[keep]


def encoder_feature_clusters(
    features: torch.Tensor,
    instance_map: torch.Tensor,
    label_map: torch.Tensor,
    *,
    num_clusters: int = 10,
    min_area: float = 1 / 64,
    num_iters: int = 300,
    generator: Optional[torch.Generator] = None,
) -> dict[int, torch.Tensor]:
    r"""Per-class k-means of per-instance encoder features (pix2pixHD's ``encode_features`` + ``KMeans``).

    For each class :math:`l`, the feature vectors of its instances (:func:`instance_features`) are
    clustered into :math:`\min(K, M_l)` centers with :func:`kmeans`. At inference,
    :func:`sample_cluster_features` gives every instance one center of its class, and the generator's
    output changes with the choice: that is pix2pixHD's multimodal synthesis. Run the encoder over the
    training set in batches and concatenate them (the maps too) before clustering, as pix2pixHD does.

    Args:
        features: ``(N, C, H, W)`` features of :class:`~ganblocks.generators.FeatureEncoder`.
        instance_map: ``(N, 1, H, W)`` integer instance ids.
        label_map: ``(N, 1, H, W)`` integer class labels.
        num_clusters: centers per class ``K`` (pix2pixHD's ``n_clusters``, 10).
        min_area: smallest instance kept, as a fraction of the image in ``[0, 1]``.
        num_iters: maximum Lloyd iterations per class.
        generator: CPU ``torch.Generator`` for the k-means++ seeding (None: seeded with 0).

    Returns:
        ``{label: (K_l, C) centers}`` for every class with at least one kept instance, by label.

    Example:
        >>> import torch
        >>> from ganblocks.functional import encoder_feature_clusters
        >>> feats = torch.tensor([[[[1.0, 1.0, 5.0, 5.0]]]])
        >>> inst = torch.tensor([[[[0, 0, 1, 1]]]])
        >>> encoder_feature_clusters(feats, inst, torch.zeros_like(inst), num_clusters=1)
        {0: tensor([[3.]])}
    """
    check_int("num_clusters", num_clusters)
    vectors, labels = instance_features(features, instance_map, label_map, min_area=min_area)
    gen = _default_generator(generator)
    centers: dict[int, torch.Tensor] = {}
    for label in sorted(set(labels.tolist())):
        points = vectors[labels == label]
        k = min(num_clusters, points.shape[0])
        centers[int(label)] = kmeans(points, k, num_iters=num_iters, generator=gen)[0]
    return centers


def sample_cluster_features(
    instance_map: torch.Tensor,
    label_map: torch.Tensor,
    centers: dict[int, torch.Tensor],
    *,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Feature map for multimodal inference: every instance gets a random center of its class.

    pix2pixHD's ``sample_features``: an instance of class ``l`` is filled with one of ``centers[l]``
    (uniformly chosen); instances of classes without centers get zeros.

    Args:
        instance_map: ``(N, 1, H, W)`` integer instance ids.
        label_map: ``(N, 1, H, W)`` integer class labels.
        centers: ``{label: (K_l, C) centers}`` from :func:`encoder_feature_clusters`.
        generator: CPU ``torch.Generator`` for the choices (None: PyTorch's global one).

    Returns:
        ``(N, C, H, W)`` features, in the dtype of the centers, to concatenate to the generator input.
    """
    _check_maps(None, instance_map, label_map)
    if not centers:
        raise ValueError("centers must hold at least one class, got an empty dict")
    first = next(iter(centers.values()))
    for label, c in centers.items():
        check_float_tensor(f"centers[{label}]", c, exact_ndim=2)
        if c.shape[1] != first.shape[1] or c.shape[0] == 0:
            raise ValueError(
                f"centers[{label}] must have shape (K, {first.shape[1]}) with K >= 1, got {tuple(c.shape)}"
            )
    n, _, h, w = instance_map.shape
    dim = first.shape[1]
    seg, num_segments = segment_ids(instance_map)
    labels = _instance_labels(seg, num_segments, label_map.reshape(-1).long())
    per_segment = first.new_zeros(num_segments, dim, device=instance_map.device)
    for label in sorted(centers):
        c = centers[label].to(per_segment)
        rows = (labels == label).nonzero().flatten()
        if rows.numel():
            choice = torch.randint(c.shape[0], (rows.numel(),), generator=generator).to(c.device)
            per_segment[rows] = c[choice]
    return per_segment[seg].reshape(n, h, w, dim).permute(0, 3, 1, 2).contiguous()
