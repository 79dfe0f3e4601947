"""The one return type of every ganblocks discriminator, and how losses and penalties read any result.

Accepted forms, everywhere in :mod:`ganblocks.losses` and :mod:`ganblocks.penalties`:

- a :class:`DiscriminatorOutput` (logits and features, nothing to guess);
- a single tensor (one scale of logits);
- a list of tensors (per-scale logits, finest first);
- pix2pixHD's nested lists, per scale ``[*features, logits]`` (for logits only: for features the same
  lists are ambiguous, see :func:`as_features`).

Anything else raises, in particular a plain tuple such as ``(logits, features)``: read as a list of scales it
would count features as logits, so it must be wrapped in a :class:`DiscriminatorOutput`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeAlias, Union

import torch


class DiscriminatorOutput(NamedTuple):
    """Logits and intermediate features of a (multi-scale) discriminator.

    A ``NamedTuple`` so that ``torch.compile``, DDP and ``torch.utils.checkpoint`` see through it.

    Attributes:
        logits: one tensor per scale, finest scale first.
        features: per scale, the intermediate activations in forward order, logits excluded; an empty
            list per scale when the discriminator was not asked for features.

    Example:
        >>> import torch
        >>> from ganblocks import DiscriminatorOutput
        >>> out = DiscriminatorOutput(logits=[torch.zeros(1, 1, 4, 4)], features=[[torch.ones(1, 8, 8, 8)]])
        >>> [len(scale) for scale in out.to_nested()]
        [2]
        >>> DiscriminatorOutput.from_nested(out.to_nested()).logits[0].shape
        torch.Size([1, 1, 4, 4])
    """

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]

    @property
    def num_scales(self) -> int:
        return len(self.logits)

    def to_nested(self) -> list[list[torch.Tensor]]:
        """pix2pixHD's format: per scale ``[*features, logits]``."""
        return [[*feats, logits] for feats, logits in zip(self.features, self.logits)]

    @classmethod
    def from_nested(
        cls, nested: Sequence[Sequence[torch.Tensor]] | Sequence[torch.Tensor]
    ) -> DiscriminatorOutput:
        """Build from pix2pixHD's nested lists (per scale ``[*features, logits]``) or a flat list of logits."""
        if isinstance(nested, torch.Tensor):
            raise TypeError(
                "nested must be a list of scales, got a single tensor; use DiscriminatorOutput([t], [[]])"
            )
        logits: list[torch.Tensor] = []
        features: list[list[torch.Tensor]] = []
        for i, scale in enumerate(nested):
            if isinstance(scale, torch.Tensor):
                logits.append(scale)
                features.append([])
                continue
            items = list(scale)
            if not items or not all(isinstance(t, torch.Tensor) for t in items):
                raise TypeError(
                    f"nested[{i}] must be a tensor or a non-empty list of tensors, got {scale!r:.80}"
                )
            logits.append(items[-1])
            features.append(items[:-1])
        if not logits:
            raise ValueError("nested must hold at least one scale, got an empty list")
        return cls(logits, features)


# Sequence covers lists of either level; DiscriminatorOutput is itself a (named) tuple, so it is tested first.
PredLike: TypeAlias = Union[
    torch.Tensor, DiscriminatorOutput, Sequence[torch.Tensor], Sequence[Sequence[torch.Tensor]]
]

_ACCEPTED = (
    "a DiscriminatorOutput, a tensor of logits, a list of per-scale logits, or pix2pixHD nested lists "
    "[[*features, logits], ...]"
)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        kinds = sorted({"tensor" if isinstance(v, torch.Tensor) else type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {len(value)} ({', '.join(kinds) or 'empty'})"
    return type(value).__name__


def as_output(name: str, pred: object, *, allow_nested: bool = True) -> DiscriminatorOutput:
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
    if isinstance(pred, tuple):
        raise TypeError(
            f"{name} is {_describe(pred)}, which is ambiguous: per-scale logits, or (logits, features)? "
            f"Pass {_ACCEPTED}; wrap (logits, features) as DiscriminatorOutput([logits], [features])"
        )
    if not isinstance(pred, list):
        raise TypeError(f"{name} must be {_ACCEPTED}, got {_describe(pred)}")
    if len(pred) == 0:
        raise ValueError(f"{name} must hold at least one scale, got an empty list")
    if all(isinstance(t, torch.Tensor) for t in pred):
        return DiscriminatorOutput(list(pred), [[] for _ in pred])
    if all(isinstance(s, (list, tuple)) for s in pred):
        if not allow_nested:
            raise TypeError(
                f"{name} is a list of per-scale lists, which is ambiguous here: pix2pixHD nested lists end "
                "each scale with its logits, a DiscriminatorOutput's .features do not. Pass the "
                "DiscriminatorOutput itself, or DiscriminatorOutput.from_nested(...) for pix2pixHD lists"
            )
        try:
            return DiscriminatorOutput.from_nested(pred)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: {err}") from None
    raise TypeError(
        f"{name} is {_describe(pred)}, mixing tensors and lists, which is ambiguous (e.g. [logits, features]); "
        f"pass {_ACCEPTED}, or wrap (logits, features) as DiscriminatorOutput([logits], [features])"
    )


def as_logits(name: str, pred: object) -> list[torch.Tensor]:
    """The per-scale logits of any accepted form."""
    return list(as_output(name, pred).logits)


def as_features(name: str, pred: object) -> list[list[torch.Tensor]]:
    """The per-scale features (logits excluded) of a :class:`DiscriminatorOutput`."""
    out = as_output(name, pred, allow_nested=False)
    if not any(out.features):
        raise ValueError(
            f"{name} holds no features (only logits, {len(out.logits)} scale(s)); ask the discriminator for "
            "its features (e.g. return_features=True), or pass DiscriminatorOutput.from_nested(...) for "
            "pix2pixHD nested lists [[*features, logits], ...]"
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
