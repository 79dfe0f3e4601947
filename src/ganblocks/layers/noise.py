"""Per-pixel noise injection (StyleGAN): ``NoiseInjection``."""

from __future__ import annotations

from typing import Literal, Optional, TypeAlias, Union, get_args

import torch
from torch import nn

from .._checks import check_int, check_ndim, check_pair, check_tensor
from ..ops.inject_noise import inject_noise

NoiseMode: TypeAlias = Literal["random", "const", "none"]
NOISE_MODES: tuple[str, ...] = get_args(NoiseMode)


class NoiseInjection(nn.Module):
    r"""Add single-channel Gaussian noise scaled by a learned strength.

    .. math::
        y = x + s \cdot n, \qquad n \in \mathbb{R}^{N \times 1 \times H \times W}

    with :math:`n` broadcast over channels and :math:`s` one scalar (StyleGAN2, ``per_channel=False``)
    or one value per channel (StyleGAN, ``per_channel=True``), initialized to 0. Where the noise comes
    from is set by ``mode``:

    - ``"random"``: fresh :math:`\mathcal{N}(0, 1)` noise at every call;
    - ``"const"``: a fixed noise map drawn at construction, stored in the persistent buffer
      ``noise_const`` of shape ``(1, 1, H, W)`` and shared by the batch (needs ``resolution``);
    - ``"none"``: no noise, the layer is the identity.

    A ``noise`` passed to :meth:`forward` overrides the mode. ``mode`` is a plain attribute: set it to
    ``"const"`` for reproducible evaluation (when ``resolution`` was given). Calls
    :func:`ganblocks.functional.inject_noise`.

    Args:
        num_channels: channels :math:`C` of ``x``, or None (StyleGAN2's scalar strength: ``NoiseInjection(None)``);
            required when ``per_channel``, else only checked.
        mode: ``"random"``, ``"const"`` or ``"none"``.
        per_channel: one strength per channel instead of a scalar.
        resolution: ``H`` (square) or ``(H, W)`` of the constant noise map; required for ``"const"``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - x: ``(N, C, H, W)``.
        - noise: ``(N, 1, H, W)`` or ``(1, 1, H, W)`` (shared by the batch).
        - Output: the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import NoiseInjection
        >>> layer = NoiseInjection(2, per_channel=True)
        >>> with torch.no_grad():
        ...     _ = layer.strength.copy_(torch.tensor([1.0, -1.0]))
        >>> layer(torch.zeros(1, 2, 1, 1), torch.full((1, 1, 1, 1), 0.5)).flatten().tolist()
        [0.5, -0.5]

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks",
        CVPR 2019, section 3.2.
    """

    noise_const: Optional[torch.Tensor]

    def __init__(
        self,
        num_channels: Optional[int],
        *,
        mode: NoiseMode = "random",
        per_channel: bool = False,
        resolution: Optional[Union[int, tuple[int, int]]] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if mode not in NOISE_MODES:
            raise ValueError(f"mode must be one of {NOISE_MODES}, got {mode!r}")
        self.num_channels = None if num_channels is None else check_int("num_channels", num_channels)
        if per_channel and self.num_channels is None:
            raise ValueError("num_channels must be given when per_channel=True, got None")
        if mode == "const" and resolution is None:
            raise ValueError("resolution must be given when mode='const', got None")
        self.mode: NoiseMode = mode
        self.per_channel = bool(per_channel)
        self.resolution = None if resolution is None else check_pair("resolution", resolution, minimum=1)
        shape = (self.num_channels,) if self.per_channel and self.num_channels is not None else ()
        self.strength = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))
        if self.resolution is None:
            self.register_buffer("noise_const", None)
        else:
            self.register_buffer(
                "noise_const", torch.randn((1, 1, *self.resolution), device=device, dtype=dtype)
            )

    def forward(self, x: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_tensor("x", x)
        check_ndim("x", x, exact=4)
        n, c, h, w = x.shape
        if self.num_channels is not None and c != self.num_channels:
            raise ValueError(
                f"x must have shape (N, num_channels, H, W) with num_channels = {self.num_channels}, "
                f"got {tuple(x.shape)}"
            )
        if noise is None:
            if self.mode == "none":
                return x
            if self.mode == "const":
                if self.noise_const is None:
                    raise ValueError("mode='const' needs the noise_const buffer: construct with resolution=")
                if tuple(self.noise_const.shape[2:]) != (h, w):
                    raise ValueError(
                        f"x must have spatial size resolution = {tuple(self.noise_const.shape[2:])} "
                        f"in mode='const', got {tuple(x.shape)}"
                    )
                noise = self.noise_const
            elif self.mode != "random":
                raise ValueError(f"mode must be one of {NOISE_MODES}, got {self.mode!r}")
        if noise is not None:
            check_tensor("noise", noise)
            # Checked here, on the shape the caller passed: inject_noise would only see the expanded view.
            if noise.ndim != 4 or noise.shape[0] not in (1, n) or tuple(noise.shape[1:]) != (1, h, w):
                raise ValueError(
                    f"noise must have shape (N, 1, H, W) = ({n}, 1, {h}, {w}), got {tuple(noise.shape)}; "
                    f"a (1, 1, {h}, {w}) map is also accepted and shared by the batch"
                )
            # A (1, 1, H, W) map is shared by the batch; a stride-0 view, no copy.
            if noise.shape[0] == 1 and n != 1:
                noise = noise.expand(n, -1, -1, -1)
            noise = noise.to(x.dtype)
        return inject_noise(x, self.strength.to(x.dtype), noise)

    def extra_repr(self) -> str:
        s = f"{self.num_channels}, mode={self.mode}, per_channel={self.per_channel}"
        if self.resolution is not None:
            s += f", resolution={self.resolution}"
        return s
