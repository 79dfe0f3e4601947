"""Fused bias + activation + gain + clamp."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import (
    check_device,
    check_input,
    check_optional_clamp,
    check_optional_finite,
    check_tensor,
    normalize_dim,
)
from .._activations import Activation, resolve_activation
from .._backend import Backend, use_triton
from .reference import bias_act_reference


def bias_act(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    *,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    dim: int = 1,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Add a bias, apply an activation, scale and clamp, in one pass.

    .. math::
        y = \operatorname{clamp}\big(g \cdot \phi(x + b),\ -c,\ c\big)

    with :math:`b` broadcast along ``dim``. Elements that were clamped (beyond the bounds) get zero
    gradient. NaN and infinity propagate as in PyTorch on both backends. This is StyleGAN2-ADA's
    ``bias_act``; the Triton backward saves only the output for ``linear``, ``relu`` and ``lrelu`` without
    a clamp, and the input otherwise.

    Args:
        x: input of any shape, floating point.
        b: bias of shape ``(x.shape[dim],)`` on the device of ``x``, or None.
        act: ``linear``, ``relu``, ``lrelu``, ``tanh``, ``sigmoid``, ``elu``, ``selu``, ``softplus`` or
            ``swish``.
        alpha: negative slope of ``lrelu`` (default 0.2) or scale of ``elu`` (default 1).
        gain: output scale; default √2 for ``relu``, ``lrelu`` and ``swish``, else 1.
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it. Its gradient is that of
            ``torch.clamp``: 1 inside and on the bounds, 0 outside.
        dim: the dimension ``b`` runs along.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import bias_act
        >>> x = torch.tensor([[-1.0, 2.0]])
        >>> bias_act(x, torch.tensor([0.5, 0.5]), act="lrelu", dim=1)
        tensor([[-0.1414,  3.5355]])

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020.
    """
    check_input("x", x, minimum=1)
    d = normalize_dim("dim", dim, x.ndim)
    check_optional_finite("alpha", alpha)
    check_optional_finite("gain", gain)
    spec, a, g = resolve_activation(act, alpha, gain)
    if b is not None and not (isinstance(b, torch.Tensor) and b.ndim == 1 and b.shape[0] == x.shape[d]):
        check_tensor("b", b)
        raise ValueError(f"b must have shape ({x.shape[d]},) to match x.shape[{d}], got {tuple(b.shape)}")
    check_device("b", b, x)
    check_optional_clamp("clamp", clamp)
    if use_triton(backend, x, op="bias_act"):
        from .custom_op import bias_act_triton

        return bias_act_triton(x, b, spec=spec, alpha=a, gain=g, clamp=clamp, dim=d)
    return bias_act_reference(x, b, spec=spec, alpha=a, gain=g, clamp=clamp, dim=d)
