"""Instance normalization with per-channel or per-sample affine and a fused activation; AdaIN."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import (
    check_device,
    check_input,
    check_ndim,
    check_optional_finite,
    check_positive,
    check_tensor,
)
from .._activations import Activation, resolve_activation
from .._backend import Backend, use_triton
from .eager import instance_norm_act_eager
from .reference import instance_norm_act_reference


def _check_affine(name: str, p: Optional[torch.Tensor], x: torch.Tensor, *, per_sample_only: bool) -> None:
    if p is None:
        return
    check_tensor(name, p)
    n, c = x.shape[0], x.shape[1]
    check_device(name, p, x)
    if per_sample_only:
        if p.ndim != 2 or p.shape[1] != c or p.shape[0] != n:
            raise ValueError(
                f"{name} must have shape (N, C) = ({n}, {c}) to match x of shape {tuple(x.shape)}, "
                f"got {tuple(p.shape)}"
            )
        return
    if not ((p.ndim == 1 and p.shape[0] == c) or (p.ndim == 2 and tuple(p.shape) == (n, c))):
        raise ValueError(
            f"{name} must have shape (C,) = ({c},) or (N, C) = ({n}, {c}) to match x of shape "
            f"{tuple(x.shape)}, got {tuple(p.shape)}"
        )


def instance_norm_act(
    x: torch.Tensor,
    scale: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Instance normalization, optional affine, activation and gain in one pass per plane.

    .. math::
        y = g \cdot \phi\Big(s \cdot \frac{x - \mu_{hw}}{\sqrt{\sigma^2_{hw} + \epsilon}} + b\Big)

    with :math:`\mu_{hw}, \sigma^2_{hw}` the mean and biased variance of each ``(n, c)`` plane. With
    ``scale=bias=None`` and ``act="lrelu", gain=1`` this is pix2pixHD's ``InstanceNorm2d`` + ``LeakyReLU(0.2)``.

    Args:
        x: input of shape ``(N, C, *spatial)`` with at least one spatial dim.
        scale: per-channel ``(C,)`` or per-sample ``(N, C)`` scale on the device of ``x``, or None for 1.
        bias: per-channel ``(C,)`` or per-sample ``(N, C)`` shift, or None for 0.
        eps: added to the variance; a finite number ``> 0`` (a constant plane has zero variance).
        act: activation (see :func:`ganblocks.functional.bias_act`).
        alpha: activation slope; None for its default.
        gain: output gain; None for the activation's default.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import instance_norm_act
        >>> y = instance_norm_act(torch.arange(4.0).reshape(1, 1, 2, 2))
        >>> y.flatten()
        tensor([-1.3416, -0.4472,  0.4472,  1.3416])

    Reference:
        Ulyanov et al., "Instance Normalization: The Missing Ingredient for Fast Stylization", 2016.
    """
    check_input("x", x, minimum=3)
    check_positive("eps", eps)
    _check_affine("scale", scale, x, per_sample_only=False)
    _check_affine("bias", bias, x, per_sample_only=False)
    check_optional_finite("alpha", alpha)
    check_optional_finite("gain", gain)
    spec, a, g = resolve_activation(act, alpha, gain)
    if use_triton(backend, x, op="instance_norm_act"):
        from .custom_op import instance_norm_act_triton

        return instance_norm_act_triton(x, scale, bias, eps=eps, spec=spec, alpha=a, gain=g)
    if x.device.type == "cpu":
        return instance_norm_act_eager(x, scale, bias, eps=eps, spec=spec, alpha=a, gain=g)
    return instance_norm_act_reference(x, scale, bias, eps=eps, spec=spec, alpha=a, gain=g)


def adain(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    *,
    eps: float = 1e-5,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Adaptive instance normalization: normalize each plane, then apply a per-sample style.

    .. math::
        y_{nc} = s_{nc} \cdot \frac{x_{nc} - \mu_{nc}}{\sqrt{\sigma^2_{nc} + \epsilon}} + b_{nc}

    with :math:`\mu, \sigma^2` the mean and biased variance over the spatial dims.

    Args:
        x: input of shape ``(N, C, *spatial)``.
        scale: style scale of shape ``(N, C)``.
        bias: style shift of shape ``(N, C)``.
        eps: added to the variance; a finite number ``> 0`` (a constant plane has zero variance).
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import adain
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> adain(x, torch.tensor([[2.0]]), torch.tensor([[1.0]])).flatten()
        tensor([-1.6833,  0.1056,  1.8944,  3.6833])

    Reference:
        Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
        ICCV 2017.
    """
    check_tensor("x", x)
    check_ndim("x", x, minimum=3)
    check_tensor("scale", scale)
    check_tensor("bias", bias)
    _check_affine("scale", scale, x, per_sample_only=True)
    _check_affine("bias", bias, x, per_sample_only=True)
    return instance_norm_act(x, scale, bias, eps=eps, backend=backend)
