"""Normalise what a discriminator returns into per-scale lists, with errors that name the argument.

Accepted forms, everywhere in :mod:`ganblocks.losses` and :mod:`ganblocks.penalties`:

- a :class:`~ganblocks.discriminators.DiscriminatorOutput`;
- a single tensor (one scale of logits);
- a list of tensors (per-scale logits, finest first);
- pix2pixHD's nested lists: per scale ``[*features, logits]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch

from ..discriminators.output import DiscriminatorOutput

# Sequence covers lists and tuples of either level; DiscriminatorOutput is itself a (named) tuple, so it is
# always tested first.
PredLike = Union[torch.Tensor, DiscriminatorOutput, Sequence[torch.Tensor], Sequence[Sequence[torch.Tensor]]]
TensorOrList = Union[torch.Tensor, Sequence[torch.Tensor]]


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def as_output(name: str, pred: object) -> DiscriminatorOutput:
    """Any accepted form as a :class:`DiscriminatorOutput` (features empty where none were given)."""
    if isinstance(pred, DiscriminatorOutput):
        if not pred.logits:
            raise ValueError(f"{name} must hold at least one scale, got a DiscriminatorOutput with no logits")
        if len(pred.features) != len(pred.logits):
            raise ValueError(
                f"{name} must have one feature list per scale: got {len(pred.logits)} logits and "
                f"{len(pred.features)} feature lists"
            )
        return pred
    if isinstance(pred, torch.Tensor):
        return DiscriminatorOutput([pred], [[]])
    if not isinstance(pred, Sequence) or isinstance(pred, (str, bytes)):
        raise TypeError(
            f"{name} must be a Tensor, a list of per-scale tensors, pix2pixHD nested lists or a "
            f"DiscriminatorOutput, got {_describe(pred)}"
        )
    if len(pred) == 0:
        raise ValueError(f"{name} must hold at least one scale, got an empty list")
    try:
        return DiscriminatorOutput.from_nested(pred)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: {err}") from None


def as_logits(name: str, pred: object) -> list[torch.Tensor]:
    """The per-scale logits of any accepted form."""
    return list(as_output(name, pred).logits)


def as_features(name: str, pred: object) -> list[list[torch.Tensor]]:
    """The per-scale features (logits excluded) of a DiscriminatorOutput or pix2pixHD nested lists."""
    out = as_output(name, pred)
    if not any(out.features):
        raise ValueError(
            f"{name} holds no features (only logits, {len(out.logits)} scale(s)); ask the discriminator for "
            "its features (e.g. return_features=True) or pass pix2pixHD nested lists [[*features, logits], ...]"
        )
    return [list(f) for f in out.features]


def as_tensor_list(name: str, x: object) -> tuple[list[torch.Tensor], bool]:
    """A tensor or a list of tensors (e.g. an image pyramid) as a list, and whether it was a single tensor."""
    if isinstance(x, torch.Tensor):
        return [x], True
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)) and len(x) > 0:
        items = list(x)
        for i, t in enumerate(items):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {_describe(t)}")
        return items, False
    if isinstance(x, Sequence) and len(x) == 0:
        raise ValueError(f"{name} must hold at least one tensor, got an empty list")
    raise TypeError(f"{name} must be a Tensor or a list of tensors, got {_describe(x)}")


def check_same_scales(
    a_name: str, a: Sequence[torch.Tensor], b_name: str, b: Sequence[torch.Tensor], *, batch: bool
) -> None:
    """Same number of scales and, per scale, the same shape (or the same shape after the batch dim)."""
    if len(a) != len(b):
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of scales, got {len(a)} and {len(b)}"
        )
    for i, (x, y) in enumerate(zip(a, b)):
        xs, ys = tuple(x.shape), tuple(y.shape)
        if (xs if batch else xs[1:]) != (ys if batch else ys[1:]):
            what = "shape" if batch else "shape after the batch dimension"
            raise ValueError(
                f"{a_name} and {b_name} must have the same {what} at scale {i}, got {xs} and {ys}"
            )
