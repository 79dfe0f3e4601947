"""Bias + activation + gain + clamp as a module: ``BiasAct`` and its lrelu preset ``FusedLeakyReLU``."""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import nn

from .._checks import (
    check_finite,
    check_int,
    check_optional_clamp,
    check_optional_finite,
    check_positive,
    check_tensor,
    normalize_dim,
)
from ..ops._activations import Activation, resolve_activation
from ..ops.bias_act import bias_act


class BiasAct(nn.Module):
    r"""Add a learned per-channel bias, apply an activation, scale and clamp, in one fused pass.

    .. math::
        y = \operatorname{clamp}\big(g \cdot \phi(x + \lambda b),\ -c,\ c\big)

    where :math:`\lambda` is ``lr_multiplier``. As in StyleGAN2-ADA the bias is stored as ``bias_init`` and
    multiplied by ``lr_multiplier`` at run time, so its effective learning rate is scaled by
    :math:`\lambda^2` under SGD (and by :math:`\lambda` under Adam). With ``num_channels=None``
    (``BiasAct(None, act="relu")``) the module owns no bias and is a plain activation. Calls :func:`ganblocks.functional.bias_act`.

    Args:
        num_channels: size of ``x`` along ``dim``; None for no bias.
        act: activation name (see :func:`ganblocks.functional.bias_act`).
        alpha: slope of ``lrelu`` (default 0.2) or scale of ``elu``; None for the default.
        gain: output gain; None for the activation's default (√2 for ``relu``, ``lrelu``, ``swish``).
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it.
        dim: the dimension the bias runs along.
        bias_init: initial stored bias value.
        lr_multiplier: run-time multiplier of the bias.
        device: device of the bias.
        dtype: dtype of the bias.

    Shape:
        - Input: any shape with ``x.shape[dim] == num_channels``.
        - Output: the shape, dtype and memory format of the input.

    Example:
        >>> import torch
        >>> from ganblocks.layers import BiasAct
        >>> layer = BiasAct(2, act="lrelu", bias_init=0.5)
        >>> layer(torch.tensor([[-1.0, 2.0]])).detach()
        tensor([[-0.1414,  3.5355]])
        >>> layer
        BiasAct(2, act=lrelu, bias_init=0.5)

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020.
    """

    bias: Optional[nn.Parameter]

    def __init__(
        self,
        num_channels: Optional[int],
        *,
        act: Activation = "linear",
        alpha: Optional[float] = None,
        gain: Optional[float] = None,
        clamp: Optional[float] = None,
        dim: int = 1,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_optional_finite("alpha", alpha)
        check_optional_finite("gain", gain)
        resolve_activation(act, alpha, gain)
        check_optional_clamp("clamp", clamp)
        check_positive("lr_multiplier", lr_multiplier)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        self.num_channels = None if num_channels is None else check_int("num_channels", num_channels)
        self.act: Activation = act
        self.alpha = alpha
        self.gain = gain
        self.clamp = clamp
        self.dim = dim
        self.bias_init = check_finite("bias_init", bias_init)
        self.lr_multiplier = float(lr_multiplier)
        if self.num_channels is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.empty(self.num_channels, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fill the bias with ``bias_init``."""
        if self.bias is not None:
            with torch.no_grad():
                self.bias.fill_(self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x)
        d = normalize_dim("dim", self.dim, x.ndim)
        # Checked here so the error names the module's setting, not the bias tensor bias_act receives.
        if self.num_channels is not None and x.shape[d] != self.num_channels:
            raise ValueError(
                f"x must have num_channels = {self.num_channels} entries along dim={self.dim}, got shape "
                f"{tuple(x.shape)} with {x.shape[d]}"
            )
        b = None
        if self.bias is not None:
            b = self.bias.to(x.dtype)
            if self.lr_multiplier != 1.0:
                b = b * self.lr_multiplier
        return bias_act(x, b, act=self.act, alpha=self.alpha, gain=self.gain, clamp=self.clamp, dim=self.dim)

    def extra_repr(self) -> str:
        # Settings equal to the activation's defaults are left out, so a preset prints short.
        spec, alpha, gain = resolve_activation(self.act, self.alpha, self.gain)
        parts = [f"{self.num_channels}", f"act={self.act}"]
        if alpha != spec.default_alpha:
            parts.append(f"alpha={alpha}")
        if gain != spec.default_gain:
            parts.append(f"gain={gain}")
        if self.clamp is not None:
            parts.append(f"clamp={self.clamp}")
        if self.dim != 1:
            parts.append(f"dim={self.dim}")
        if self.bias is not None and self.bias_init != 0.0:
            parts.append(f"bias_init={self.bias_init}")
        if self.lr_multiplier != 1.0:
            parts.append(f"lr_multiplier={self.lr_multiplier}")
        return ", ".join(parts)


class FusedLeakyReLU(BiasAct):
    r"""Bias + leaky ReLU + gain in one pass: :class:`BiasAct` with ``act="lrelu"``.

    .. math::
        y = \sqrt{2} \cdot \operatorname{lrelu}_{0.2}(x + b)

    The name and defaults of rosinality's ``stylegan2-pytorch`` ``FusedLeakyReLU``.

    Args:
        num_channels: size of ``x`` along ``dim``; None for no bias.
        alpha: negative slope.
        gain: output gain.
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it.
        dim: the dimension the bias runs along.
        bias_init: initial stored bias value.
        lr_multiplier: run-time multiplier of the bias.
        device: device of the bias.
        dtype: dtype of the bias.

    Example:
        >>> import torch
        >>> from ganblocks.layers import FusedLeakyReLU
        >>> FusedLeakyReLU(2)(torch.tensor([[-1.0, 1.0]])).detach()
        tensor([[-0.2828,  1.4142]])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020.
    """

    def __init__(
        self,
        num_channels: Optional[int],
        *,
        alpha: float = 0.2,
        gain: float = math.sqrt(2),
        clamp: Optional[float] = None,
        dim: int = 1,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            num_channels,
            act="lrelu",
            alpha=alpha,
            gain=gain,
            clamp=clamp,
            dim=dim,
            bias_init=bias_init,
            lr_multiplier=lr_multiplier,
            device=device,
            dtype=dtype,
        )
