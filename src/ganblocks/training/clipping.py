r"""WGAN weight clipping (Arjovsky et al. 2017): keep every critic parameter in :math:`[-c, c]`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

import torch
from torch import nn

from .._checks import check_positive


@torch.no_grad()
def clip_weights_(module: Union[nn.Module, Iterable[torch.Tensor]], c: float = 0.01) -> None:
    r"""Clamp every parameter in place to :math:`[-c, c]`, after each critic optimizer step (WGAN).

    .. math::
        \theta \leftarrow \operatorname{clamp}(\theta, -c, c)

    The original WGAN clips *all* critic parameters, biases and normalization scales included, with
    :math:`c = 0.01` (RMSProp, lr 5e-5). Weight clipping caps the critic's capacity and its gradients
    vanish or explode for poorly chosen :math:`c`; WGAN-GP (:func:`~ganblocks.penalties.gradient_penalty`)
    replaces it. With a parametrized weight (``spectral_norm``, ``equalized_lr``) the stored tensor
    (``parametrizations.weight.original``) is what gets clipped, not the weight the forward uses.

    Args:
        module: the critic, or an iterable of its parameters (e.g. one parameter group).
        c: the clipping bound :math:`c` (0.01).

    Example:
        >>> import torch
        >>> from ganblocks.training import clip_weights_
        >>> critic = torch.nn.Linear(3, 1)
        >>> _ = torch.nn.init.constant_(critic.weight, 0.5)
        >>> clip_weights_(critic, c=0.01)
        >>> torch.equal(critic.weight, torch.full((1, 3), 0.01)), critic.bias.abs().max().item() <= 0.01
        (True, True)

    Reference:
        Arjovsky et al., "Wasserstein Generative Adversarial Networks", ICML 2017 (Algorithm 1).
    """
    bound = check_positive("c", c)
    params = list(module.parameters() if isinstance(module, nn.Module) else module)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"module must be an nn.Module or an iterable of tensors, got item {i}: {p!r:.60}")
    floating = [p for p in params if p.is_floating_point()]
    if floating:
        torch._foreach_clamp_min_(floating, -bound)
        torch._foreach_clamp_max_(floating, bound)
