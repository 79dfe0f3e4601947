r"""Generator weight averaging with a half-life in images and a ramp-up (StyleGAN2-ADA's ``G_ema``)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from .._checks import check_int, check_positive


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under ``DistributedDataParallel`` / ``DataParallel`` (``.module``) and ``torch.compile``
    (``._orig_mod``) wrappers, in any nesting."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
            continue
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        return model


def ema_beta(
    batch_size: int, images_seen: int, *, half_life_kimg: float = 10.0, rampup: Optional[float] = 0.05
) -> float:
    r"""StyleGAN2-ADA's averaging factor :math:`\beta` for one step.

    .. math::
        n_\text{ema} = \begin{cases} \min(1000\, h,\; r\, n) & \text{with ramp-up } r \\
        1000\, h & \text{without} \end{cases}, \qquad
        \beta = 0.5^{\,B / \max(n_\text{ema},\, 10^{-8})}

    with :math:`h` = ``half_life_kimg``, :math:`n` = ``images_seen`` (before this step) and :math:`B` =
    ``batch_size``: the average forgets half of its past every :math:`n_\text{ema}` images.

    Args:
        batch_size: images in this step (summed over all processes under DDP).
        images_seen: images seen before this step (StyleGAN2-ADA's ``cur_nimg``).
        half_life_kimg: the half-life in thousands of images (``ema_kimg``, 10).
        rampup: the ramp-up ratio (``ema_rampup``, 0.05), or None for a fixed half-life.

    Returns:
        :math:`\beta \in [0, 1)`; 0 at ``images_seen=0`` with a ramp-up (the average starts as a copy).

    Example:
        >>> from ganblocks.training import ema_beta
        >>> round(ema_beta(32, 1_000_000), 6)  # 0.5 ** (32 / 10000)
        0.997784
        >>> ema_beta(32, 0)
        0.0
    """
    check_int("batch_size", batch_size)
    check_int("images_seen", images_seen, minimum=0)
    check_positive("half_life_kimg", half_life_kimg)
    nimg = half_life_kimg * 1000.0
    if rampup is not None:
        nimg = min(nimg, images_seen * check_positive("rampup", rampup))
    return float(0.5 ** (batch_size / max(nimg, 1e-8)))


class ModelEMA(nn.Module):
    r"""An exponential moving average of a model's parameters, for inference (StyleGAN2-ADA's ``G_ema``).

    Holds a deep copy of the model (``ema.module``, in eval mode, without gradients), unwrapped from
    ``DistributedDataParallel`` and ``torch.compile``. Each :meth:`update` after an optimizer step does

    .. math::
        \theta_\text{ema} \leftarrow \beta\, \theta_\text{ema} + (1 - \beta)\, \theta

    for every parameter, with :math:`\beta` from :func:`ema_beta` (a half-life in images, ramped up at the
    start of training), and copies every buffer (e.g. batch-norm statistics, spectral-norm vectors) unless
    ``copy_buffers`` says otherwise. The counter of images is kept here (and in the state dict), or given to each update.

    ``ema(*args)`` calls ``ema.module``. The state dict holds the averaged module (``module.*``) and the
    image counter, so a checkpoint restores both; ``ema.module.state_dict()`` alone is an ordinary
    checkpoint of the model. Under DDP every process keeps its own copy; since the parameters are
    identical on every rank after each step, so are the averages. Compile the average itself with
    ``torch.compile(ema.module)`` for fast sampling.

    Args:
        model: the model to average (possibly wrapped by DDP or ``torch.compile``).
        half_life_kimg: the half-life in thousands of images (StyleGAN2-ADA's ``ema_kimg``, 10).
        rampup: the half-life ramp-up ratio (``ema_rampup``, 0.05): the half-life is at most
            ``rampup * images_seen``; None disables it (StyleGAN2's configuration).
        device: where to keep the average (default: with the model's parameters), e.g. the CPU to
            save accelerator memory.
        dtype: the floating-point dtype of the average (default: the model's), e.g. float32 averages of a
            bfloat16 model, whose small steps :math:`(1 - \beta)(\theta - \theta_\text{ema})` would
            round away in bfloat16.
        copy_buffers: which buffers :meth:`update` copies from the model: True (default) every buffer
            (StyleGAN2-ADA's ``G_ema``), False none (rosinality's ``accumulate``, which averages parameters
            only), or a predicate on the buffer's name (as in ``named_buffers()``) that is True for those to
            copy, e.g. ``lambda name: "noise" not in name`` to keep the average's own noise buffers. Buffers
            not copied keep the values they had when the average was made (or loaded). Like the ``use_buffers``
            flag of ``torch.optim.swa_utils.AveragedModel``, it only decides what :meth:`update` touches.

    Example:
        >>> import torch
        >>> from ganblocks.training import ModelEMA
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> _ = torch.nn.init.zeros_(model.weight)
        >>> ema = ModelEMA(model, half_life_kimg=0.004, rampup=None)  # half-life: 4 images
        >>> _ = torch.nn.init.constant_(model.weight, 2.0)  # as if trained
        >>> ema.update(model, batch_size=4)  # beta = 0.5 ** (4 / 4)
        >>> ema.module.weight.item(), ema.images_seen
        (1.0, 4)
        >>> ema(torch.ones(1, 1))  # the averaged model's forward
        tensor([[1.]])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018 (generator weight averaging); Karras et al., "Training Generative Adversarial Networks
        with Limited Data" (StyleGAN2-ADA), NeurIPS 2020 (``training/training_loop.py``).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        half_life_kimg: float = 10.0,
        rampup: Optional[float] = 0.05,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
        copy_buffers: Union[bool, Callable[[str], bool]] = True,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(copy_buffers, bool) and not callable(copy_buffers):
            raise TypeError(
                f"copy_buffers must be a bool or a callable name -> bool, got {type(copy_buffers).__name__}"
            )
        self.copy_buffers = copy_buffers
        self.half_life_kimg = check_positive("half_life_kimg", half_life_kimg)
        self.rampup = None if rampup is None else check_positive("rampup", rampup)
        module = copy.deepcopy(unwrap_model(model))
        if device is not None or dtype is not None:
            module = module.to(device=device, dtype=dtype)
        self.module = module.eval().requires_grad_(False)
        self.images_seen = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The averaged module's forward."""
        return self.module(*args, **kwargs)

    def beta(self, batch_size: int, images_seen: Optional[int] = None) -> float:
        """The factor :math:`\\beta` that :meth:`update` would use (see :func:`ema_beta`)."""
        seen = self.images_seen if images_seen is None else images_seen
        return ema_beta(batch_size, seen, half_life_kimg=self.half_life_kimg, rampup=self.rampup)

    def _copies(self, name: str) -> bool:
        """Whether :meth:`update` copies the buffer ``name``."""
        if isinstance(self.copy_buffers, bool):
            return self.copy_buffers
        return bool(self.copy_buffers(name))

    def _pairs(
        self, model: nn.Module, kind: str
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """(average, model) floating-point tensors to lerp, and the others to copy, matched by name; buffers
        that ``copy_buffers`` leaves alone are in neither."""
        src = unwrap_model(model)
        mine: dict[str, torch.Tensor]
        theirs: dict[str, torch.Tensor]
        if kind == "parameters":
            mine, theirs = dict(self.module.named_parameters()), dict(src.named_parameters())
        else:
            mine, theirs = dict(self.module.named_buffers()), dict(src.named_buffers())
        if mine.keys() != theirs.keys():
            missing, extra = sorted(mine.keys() - theirs.keys()), sorted(theirs.keys() - mine.keys())
            raise ValueError(
                f"model must have the {kind} of the averaged model: missing {missing[:5]}, unexpected "
                f"{extra[:5]}"
            )
        lerp_a: list[torch.Tensor] = []
        lerp_b: list[torch.Tensor] = []
        copy_a: list[torch.Tensor] = []
        copy_b: list[torch.Tensor] = []
        for name, a in mine.items():
            b = theirs[name]
            if a.shape != b.shape:
                raise ValueError(
                    f"model's {kind[:-1]} {name!r} must have shape {tuple(a.shape)} like the average, got "
                    f"{tuple(b.shape)}"
                )
            if kind == "buffers" and not self._copies(name):
                continue
            b = b.detach().to(a.device, a.dtype)
            if kind == "parameters" and a.is_floating_point():
                lerp_a.append(a)
                lerp_b.append(b)
            else:
                copy_a.append(a)
                copy_b.append(b)
        return lerp_a, lerp_b, copy_a, copy_b

    @torch.no_grad()
    def update(self, model: nn.Module, *, batch_size: int, images_seen: Optional[int] = None) -> None:
        """Move the average towards ``model``'s parameters and copy its buffers (those ``copy_buffers``
        chooses).

        Args:
            model: the trained model (or its DDP / compiled wrapper), with the averaged model's names.
            batch_size: images in this step, over all processes (StyleGAN2-ADA's ``batch_size``).
            images_seen: images seen before this step; default: the internal counter. Either way the
                counter becomes ``images_seen + batch_size``.
        """
        seen = self.images_seen if images_seen is None else check_int("images_seen", images_seen, minimum=0)
        beta = self.beta(batch_size, seen)
        ema_p, model_p, copy_a, copy_b = self._pairs(model, "parameters")
        if ema_p:
            torch._foreach_lerp_(ema_p, model_p, 1.0 - beta)
        _, _, buf_a, buf_b = self._pairs(model, "buffers")
        for a, b in zip(copy_a + buf_a, copy_b + buf_b):
            a.copy_(b)
        self.images_seen = seen + batch_size

    def get_extra_state(self) -> dict[str, Any]:
        return {"images_seen": self.images_seen}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.images_seen = check_int("images_seen", state["images_seen"], minimum=0)

    def extra_repr(self) -> str:
        copy = self.copy_buffers if isinstance(self.copy_buffers, bool) else "<predicate>"
        return (
            f"half_life_kimg={self.half_life_kimg}, rampup={self.rampup}, copy_buffers={copy}, "
            f"images_seen={self.images_seen}"
        )
