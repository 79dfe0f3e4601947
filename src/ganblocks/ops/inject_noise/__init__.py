"""Noise injection (StyleGAN), optionally fused with bias, activation and clamp."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import check_device, check_input, check_optional_clamp, check_optional_finite, check_tensor
from .._activations import Activation, resolve_activation
from .._backend import Backend, use_triton
from .reference import inject_noise_reference


def inject_noise(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: Optional[torch.Tensor] = None,
    *,
    bias: Optional[torch.Tensor] = None,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    generator: Optional[torch.Generator] = None,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Add per-pixel noise scaled by a learned strength, then bias, activation and clamp, in one pass.

    .. math::
        y = \operatorname{clamp}\big(g \cdot \phi(x + s \cdot n + b),\ -c,\ c\big)

    where the noise :math:`n` has shape ``(N, 1, H, W)`` and is shared by all channels, and :math:`s` is
    one scalar (StyleGAN2) or one value per channel (StyleGAN). With the defaults
    (``act="linear"``, no bias) this is plain ``x + strength * noise``.

    Args:
        x: input of shape ``(N, C, H, W)``.
        strength: scalar tensor (shape ``()`` or ``(1,)``) or per-channel ``(C,)``. Every tensor argument
            is on the device of ``x``.
        noise: ``(N, 1, H, W)``; None draws standard normal noise (with ``generator`` if given).
        bias: per-channel bias ``(C,)`` or None.
        act: activation (see :func:`ganblocks.functional.bias_act`).
        alpha: activation slope; None for its default.
        gain: output gain; None for the activation's default.
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it.
        generator: random generator for the drawn noise.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import inject_noise
        >>> x = torch.zeros(1, 2, 1, 1)
        >>> inject_noise(x, torch.tensor([1.0, -1.0]), torch.full((1, 1, 1, 1), 0.5)).flatten()
        tensor([ 0.5000, -0.5000])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR 2019.
    """
    check_input("x", x, exact=4)
    n, c, h, w = x.shape
    check_tensor("strength", strength)
    sdim = strength.ndim
    if not (sdim == 0 or (sdim == 1 and (strength.shape[0] == 1 or strength.shape[0] == c))):
        raise ValueError(
            f"strength must be a scalar tensor (shape () or (1,)) or have shape (C,) = ({c},), "
            f"got {tuple(strength.shape)}"
        )
    if sdim == 1 and c != 1 and strength.shape[0] == 1:
        strength = strength.reshape(())
    if noise is None:
        noise = torch.randn((n, 1, h, w), device=x.device, dtype=x.dtype, generator=generator)
    elif not (isinstance(noise, torch.Tensor) and noise.shape == (n, 1, h, w)):
        check_tensor("noise", noise)
        raise ValueError(f"noise must have shape (N, 1, H, W) = ({n}, 1, {h}, {w}), got {tuple(noise.shape)}")
    if bias is not None and not (isinstance(bias, torch.Tensor) and bias.ndim == 1 and bias.shape[0] == c):
        check_tensor("bias", bias)
        raise ValueError(f"bias must have shape (C,) = ({c},), got {tuple(bias.shape)}")
    for name, t in (("strength", strength), ("noise", noise), ("bias", bias)):
        check_device(name, t, x)
    check_optional_clamp("clamp", clamp)
    check_optional_finite("alpha", alpha)
    check_optional_finite("gain", gain)
    spec, a, g = resolve_activation(act, alpha, gain)
    if use_triton(backend, x, op="inject_noise"):
        from .custom_op import inject_noise_triton

        return inject_noise_triton(x, strength, noise, bias, spec=spec, alpha=a, gain=g, clamp=clamp)
    return inject_noise_reference(x, strength, noise, bias, spec=spec, alpha=a, gain=g, clamp=clamp)
