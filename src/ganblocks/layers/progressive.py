"""ProGAN's progressive growing: fade-in of a new resolution in G and D, and the alpha schedule.

``fade_in`` blends a generator's new, higher-resolution output with the upsampled output of the previous
resolution; ``fade_in_input`` blends a discriminator's new block with the previous from-RGB path on the
downsampled image; ``FadeInSchedule`` gives alpha (and the current resolution) from the number of images
seen. They work with any user network: they only combine tensors and call a from-RGB callable.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple, Optional, TypeAlias, Union, get_args

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_float_tensor, check_int, check_probability

UpsampleMode: TypeAlias = Literal["nearest", "bilinear"]
FADE_UPSAMPLE_MODES: tuple[UpsampleMode, ...] = get_args(UpsampleMode)
Phase: TypeAlias = Literal["stabilize", "fade"]
Weight: TypeAlias = Union[float, torch.Tensor]


def _check_weight(weight: Weight) -> Weight:
    if isinstance(weight, torch.Tensor):
        if weight.numel() != 1:
            raise ValueError(
                f"weight must be a number or a one-element tensor, got shape {tuple(weight.shape)}"
            )
        return weight
    return check_probability("weight", weight)


def _factor(name: str, big: int, small: int, what: str) -> int:
    if small <= 0 or big % small != 0 or big < small:
        raise ValueError(f"{name}: {what} must be a whole multiple of the other size, got {big} and {small}")
    return big // small


def _lerp(a: torch.Tensor, b: torch.Tensor, weight: Weight) -> torch.Tensor:
    if isinstance(weight, torch.Tensor):
        return torch.lerp(a, b, weight.to(device=a.device, dtype=a.dtype).reshape(()))
    return torch.lerp(a, b, weight)


def fade_in(
    low: torch.Tensor,
    high: torch.Tensor,
    weight: Weight,
    *,
    mode: UpsampleMode = "nearest",
) -> torch.Tensor:
    r"""Fade a generator's new resolution in: blend the upsampled old output with the new one.

    .. math::
        y = (1 - \alpha)\, \mathrm{up}(y_{\text{low}}) + \alpha\, y_{\text{high}}
          = \operatorname{lerp}(\mathrm{up}(y_{\text{low}}), y_{\text{high}}, \alpha)

    where :math:`\mathrm{up}` repeats each pixel (``"nearest"``, ProGAN's ``upscale2d``) or interpolates
    (``"bilinear"``) by the integer ratio of the two sizes. The arguments are in the order of
    :func:`torch.lerp` (start, end, weight). The weight :math:`\alpha` goes from 0 to 1 during the fade (see
    :class:`FadeInSchedule`); both outputs are typically to-RGB images.

    Args:
        low: ``(N, C, h, w)``, the previous resolution's output (from the new block's input).
        high: ``(N, C, H, W)`` with ``H = k h`` and ``W = k w``, the new block's output.
        weight: blend weight :math:`\alpha` in [0, 1], a float or a one-element tensor (a tensor is not
            range-checked, which would synchronize with the device).
        mode: ``"nearest"`` or ``"bilinear"``.

    Returns:
        ``(N, C, H, W)``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import fade_in
        >>> fade_in(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 2, 2), 0.25)
        tensor([[[[0.7500, 0.7500],
                  [0.7500, 0.7500]]]])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 3 and figure 2.
    """
    weight = _check_weight(weight)
    mode = check_choice("mode", mode, FADE_UPSAMPLE_MODES)
    low = check_float_tensor("low", low, exact_ndim=4)
    high = check_float_tensor("high", high, exact_ndim=4)
    if low.shape[:2] != high.shape[:2]:
        raise ValueError(
            f"low and high must have the same (N, C), got shapes {tuple(low.shape)} and {tuple(high.shape)}"
        )
    fy = _factor("fade_in", high.shape[2], low.shape[2], "the height of high")
    fx = _factor("fade_in", high.shape[3], low.shape[3], "the width of high")
    if (fy, fx) != (1, 1):
        if mode == "nearest":
            low = low.repeat_interleave(fy, dim=2).repeat_interleave(fx, dim=3)
        else:
            low = F.interpolate(low, size=tuple(high.shape[2:]), mode="bilinear", align_corners=False)
    return _lerp(low.to(high.dtype), high, weight)


def fade_in_input(
    images: torch.Tensor,
    from_rgb_low: Callable[[torch.Tensor], torch.Tensor],
    high: torch.Tensor,
    weight: Weight,
) -> torch.Tensor:
    r"""Fade a discriminator's new resolution in: blend the new block's output with the old from-RGB path.

    .. math::
        y = (1 - \alpha)\, \mathrm{fromRGB}_{\text{low}}\big(\mathrm{avgpool}_k(x)\big) + \alpha\, y_{\text{high}}

    where :math:`y_{\text{high}}` = ``new_block(from_rgb_high(images))`` is computed by the caller and
    :math:`k` is the ratio of the image size to its size (2 for one ProGAN step). As in :func:`fade_in`, the
    low-resolution side comes first, then the high one, then the weight (:func:`torch.lerp`'s order).

    Args:
        images: ``(N, C, H, W)`` discriminator input at the new resolution.
        from_rgb_low: the previous resolution's from-RGB layer, mapping ``(N, C, H/k, W/k)`` to the shape
            of ``high``.
        high: ``(N, F, H/k, W/k)``, the new block's output.
        weight: blend weight :math:`\alpha` in [0, 1], a float or a one-element tensor.

    Returns:
        The blended features, shaped as ``high``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import fade_in_input
        >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
        >>> fade_in_input(x, lambda t: 2 * t, torch.zeros(1, 1, 1, 1), 0.5)
        tensor([[[[1.5000]]]])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 3 and figure 2.
    """
    weight = _check_weight(weight)
    x = check_float_tensor("images", images, exact_ndim=4)
    high = check_float_tensor("high", high, exact_ndim=4)
    if not callable(from_rgb_low):
        raise TypeError(
            f"from_rgb_low must be callable (a module or function), got {type(from_rgb_low).__name__}"
        )
    if x.shape[0] != high.shape[0]:
        raise ValueError(
            f"images and high must have the same batch size, got shapes {tuple(x.shape)} and "
            f"{tuple(high.shape)}"
        )
    fy = _factor("fade_in_input", x.shape[2], high.shape[2], "the height of images")
    fx = _factor("fade_in_input", x.shape[3], high.shape[3], "the width of images")
    low = from_rgb_low(F.avg_pool2d(x, (fy, fx)) if (fy, fx) != (1, 1) else x)
    if not isinstance(low, torch.Tensor) or low.shape != high.shape:
        got = tuple(low.shape) if isinstance(low, torch.Tensor) else type(low).__name__
        raise ValueError(f"from_rgb_low must return the shape of high {tuple(high.shape)}, got {got}")
    return _lerp(low.to(high.dtype), high, weight)


class FadeInState(NamedTuple):
    """Where a :class:`FadeInSchedule` stands: stage (0 = start resolution), resolution, phase, alpha."""

    stage: int
    resolution: int
    phase: Phase
    alpha: float


class FadeInSchedule:
    r"""ProGAN's schedule: alpha and resolution from the number of real images shown to D.

    Stage 0 trains the start resolution for ``stabilize_images``; every later stage :math:`s \ge 1` doubles
    the resolution, fades it in over ``fade_images`` and then stabilizes it for ``stabilize_images``. With
    :math:`t` the images seen, :math:`T_0` = ``stabilize_images`` and :math:`T` = ``fade_images +
    stabilize_images``, stage :math:`s` starts at :math:`t_s = T_0 + (s - 1) T` and

    .. math::
        \alpha = \min\!\Big(1, \frac{t - t_s}{\text{fade\_images}}\Big) \ (s \ge 1), \qquad \alpha = 1 \ (s = 0).

    At ``max_resolution`` the last stage stabilizes forever. Like an LR scheduler it has ``state_dict``
    and ``load_state_dict``, to save with a checkpoint.

    Args:
        fade_images: images over which each new resolution fades in (ProGAN: 800k).
        stabilize_images: images of training at a resolution after its fade (ProGAN: 800k).
        start_resolution: resolution of stage 0 (4).
        max_resolution: final resolution, ``start_resolution`` times a power of 2; None grows forever.

    Example:
        >>> from ganblocks.layers import FadeInSchedule
        >>> schedule = FadeInSchedule(fade_images=100, stabilize_images=100, max_resolution=16)
        >>> schedule.step(150)
        True
        >>> schedule.state()
        FadeInState(stage=1, resolution=8, phase='fade', alpha=0.5)

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 3 and appendix A.1.
    """

    def __init__(
        self,
        *,
        fade_images: int,
        stabilize_images: int,
        start_resolution: int = 4,
        max_resolution: Optional[int] = None,
    ) -> None:
        self.fade_images = check_int("fade_images", fade_images)
        self.stabilize_images = check_int("stabilize_images", stabilize_images, minimum=0)
        self.start_resolution = check_int("start_resolution", start_resolution)
        self.max_stage: Optional[int] = None
        if max_resolution is not None:
            check_int("max_resolution", max_resolution)
            ratio = max_resolution // start_resolution
            if max_resolution % start_resolution or ratio & (ratio - 1):
                raise ValueError(
                    f"max_resolution must be start_resolution ({start_resolution}) times a power of 2, "
                    f"got {max_resolution}"
                )
            self.max_stage = ratio.bit_length() - 1
        self.max_resolution = max_resolution
        self.images_seen = 0

    def state(self, images_seen: Optional[int] = None) -> FadeInState:
        """The state after ``images_seen`` images (default: the images seen so far)."""
        t = self.images_seen if images_seen is None else check_int("images_seen", images_seen, minimum=0)
        period = self.fade_images + self.stabilize_images
        stage = 0 if t < self.stabilize_images else 1 + (t - self.stabilize_images) // period
        if self.max_stage is not None:
            stage = min(stage, self.max_stage)
        if stage == 0:
            return FadeInState(0, self.start_resolution, "stabilize", 1.0)
        offset = t - self.stabilize_images - (stage - 1) * period
        alpha = min(1.0, offset / self.fade_images)
        phase: Phase = "fade" if offset < self.fade_images else "stabilize"
        return FadeInState(stage, self.start_resolution * 2**stage, phase, alpha)

    @property
    def alpha(self) -> float:
        return self.state().alpha

    @property
    def resolution(self) -> int:
        return self.state().resolution

    @property
    def stage(self) -> int:
        return self.state().stage

    @property
    def phase(self) -> Phase:
        return self.state().phase

    def step(self, num_images: int) -> bool:
        """Count ``num_images`` more images (a batch); True when this moved to a new stage (grow the nets)."""
        before = self.stage
        self.images_seen += check_int("num_images", num_images, minimum=0)
        return self.stage != before

    def _config(self) -> dict[str, Any]:
        return {
            "fade_images": self.fade_images,
            "stabilize_images": self.stabilize_images,
            "start_resolution": self.start_resolution,
            "max_resolution": self.max_resolution,
        }

    def state_dict(self) -> dict[str, Any]:
        """The images seen and the configuration (checked on load)."""
        return {"images_seen": self.images_seen, **self._config()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the images seen; raise when the saved schedule was configured differently."""
        if not isinstance(state_dict, dict) or "images_seen" not in state_dict:
            raise ValueError(
                f"state_dict must be a dict from FadeInSchedule.state_dict(), got {state_dict!r}"
            )
        for key, value in self._config().items():
            if key in state_dict and state_dict[key] != value:
                raise ValueError(
                    f"state_dict was saved with {key}={state_dict[key]!r}, but this schedule has {key}={value!r}"
                )
        self.images_seen = check_int("images_seen", state_dict["images_seen"], minimum=0)

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v}" for k, v in self._config().items())
        return f"FadeInSchedule({cfg}, images_seen={self.images_seen})"
