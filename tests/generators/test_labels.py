"""one_hot_labels and instance_boundary_map against pixel-by-pixel definitions."""

from __future__ import annotations

import pytest
import torch

from ganblocks.functional import instance_boundary_map, one_hot_labels


def boundary_formula(inst: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's get_edges, one pixel at a time: an edge if any 4-neighbour inside the image differs."""
    n, _, h, w = inst.shape
    out = torch.zeros(n, 1, h, w)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    y, x = i + di, j + dj
                    if 0 <= y < h and 0 <= x < w and inst[b, 0, y, x] != inst[b, 0, i, j]:
                        out[b, 0, i, j] = 1
    return out


def test_boundary_known_values() -> None:
    inst = torch.tensor([[[[1, 1, 1, 1], [1, 2, 2, 1], [1, 1, 1, 1]]]])
    expected = torch.tensor([[[[0.0, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 0]]]])
    torch.testing.assert_close(instance_boundary_map(inst), expected)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_boundary_matches_formula(dtype: torch.dtype) -> None:
    inst = torch.randint(0, 3, (2, 1, 5, 6)).to(dtype)
    out = instance_boundary_map(inst, dtype=torch.float64)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, boundary_formula(inst).double())


def test_boundary_of_one_instance_is_empty() -> None:
    assert instance_boundary_map(torch.full((1, 1, 3, 3), 26001)).sum() == 0


def test_one_hot_matches_definition() -> None:
    labels = torch.randint(0, 5, (2, 1, 3, 4))
    out = one_hot_labels(labels, 6)
    assert out.shape == (2, 6, 3, 4) and out.dtype == torch.float32 and out.is_contiguous()
    for b in range(2):
        for i in range(3):
            for j in range(4):
                expected = [1.0 if k == labels[b, 0, i, j] else 0.0 for k in range(6)]
                assert out[b, :, i, j].tolist() == expected
    assert one_hot_labels(labels, 5, dtype=torch.float16).dtype == torch.float16


@pytest.mark.parametrize(
    ("labels", "num_classes", "error", "match"),
    [
        (
            torch.tensor([[[[0, 35]]]]),
            35,
            ValueError,
            r"in \[0, num_classes - 1\] = \[0, 34\], got values in \[0, 35\]",
        ),
        (torch.tensor([[[[-1, 2]]]]), 35, ValueError, r"got values in \[-1, 2\]"),
        (torch.zeros(1, 1, 2, 2), 3, TypeError, "label_map must hold integer ids"),
        (torch.zeros(1, 2, 2, dtype=torch.long), 3, ValueError, r"label_map must have shape \(N, 1, H, W\)"),
        (torch.zeros(1, 1, 2, 2, dtype=torch.long), 0, ValueError, "num_classes must be an int >= 1, got 0"),
    ],
)
def test_one_hot_bad_inputs(
    labels: torch.Tensor, num_classes: int, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        one_hot_labels(labels, num_classes)


def test_boundary_bad_input() -> None:
    with pytest.raises(TypeError, match="instance_map must hold integer ids"):
        instance_boundary_map(torch.zeros(1, 1, 2, 2))
