"""The one return type of every ganblocks discriminator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

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
