r"""Lazy regularization (StyleGAN2): apply a penalty every k steps, scaled by k, and adjust the optimizer."""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from .._checks import check_positive, check_probability


def _check_interval(interval: int) -> None:
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a positive integer, got {interval!r}")


class LazyRegularizer(nn.Module):
    r"""Run a penalty only on every ``interval``-th step, multiplied by ``interval``.

    StyleGAN2 evaluates R1 (and path-length regularization) once per :math:`k` minibatches and multiplies
    it by :math:`k`, so that on average the regularizer has its full weight at :math:`1/k` of the cost.
    Run its result as a separate backward/optimizer step (StyleGAN2's ``Dreg`` phase), or add it to the
    main loss on the steps where it is not None.

    Pair it with :func:`lazy_optimizer_kwargs` for the optimizer of the regularized network: with
    lazy regularization the optimizer takes :math:`k + 1` steps where eager regularization would take
    :math:`k`, which StyleGAN2 compensates by scaling the learning rate and Adam's betas.

    Args:
        penalty: any callable returning a scalar tensor (e.g. :func:`~ganblocks.penalties.r1_penalty` or an
            :class:`~ganblocks.penalties.R1Penalty`).
        interval: the interval :math:`k` (16 in StyleGAN2 for R1: ``D_reg_interval``).

    A penalty that is an ``nn.Module`` is a submodule: its state (a
    :class:`~ganblocks.penalties.PathLengthPenalty`'s running mean ``pl_mean``) is in this module's
    ``state_dict`` as ``penalty.*``, so a checkpoint of the regularizer resumes it, and ``.to()`` moves it.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import LazyRegularizer, r1_penalty
        >>> lazy = LazyRegularizer(r1_penalty, interval=4)
        >>> d = lambda x: 0.5 * x.square().sum(1)
        >>> x = torch.tensor([[1.0, 1.0]])
        >>> [None if (p := lazy(step, d, x, gamma=1.0)) is None else p.item() for step in range(5)]
        [4.0, None, None, None, 4.0]
        >>> from ganblocks.penalties import PathLengthPenalty
        >>> list(LazyRegularizer(PathLengthPenalty(), interval=4).state_dict())
        ['penalty.pl_mean']
    """

    def __init__(self, penalty: Callable[..., torch.Tensor], *, interval: int = 16) -> None:
        _check_interval(interval)
        if not callable(penalty):
            raise TypeError(f"penalty must be callable, got {type(penalty).__name__}")
        super().__init__()
        self.penalty = penalty
        self.interval = interval

    def should_run(self, step: int) -> bool:
        """Whether ``step`` (counted from 0) is a regularization step: ``step % interval == 0``."""
        return step % self.interval == 0

    def forward(self, step: int, *args: Any, **kwargs: Any) -> Optional[torch.Tensor]:
        """``interval * penalty(*args, **kwargs)`` on regularization steps, else None (and no computation)."""
        if not self.should_run(step):
            return None
        return self.penalty(*args, **kwargs) * self.interval

    def __repr__(self) -> str:
        name = getattr(self.penalty, "__name__", None) or repr(self.penalty)
        return f"{type(self).__name__}({name}, interval={self.interval})"


def lazy_optimizer_kwargs(
    lr: float, betas: tuple[float, float] = (0.0, 0.99), *, interval: int
) -> dict[str, Any]:
    r"""StyleGAN2's Adam settings for a network regularized lazily every ``interval`` steps.

    .. math::
        c = \frac{k}{k + 1}, \qquad \text{lr}' = c \cdot \text{lr}, \qquad
        (\beta_1', \beta_2') = (\beta_1^{\,c}, \beta_2^{\,c})

    Args:
        lr: the learning rate meant for eager regularization.
        betas: Adam's betas meant for eager regularization (StyleGAN2: ``(0, 0.99)``).
        interval: the regularization interval :math:`k`.

    Returns:
        ``{"lr": ..., "betas": (...)}`` to splat into ``torch.optim.Adam``.

    Example:
        >>> from ganblocks.penalties import lazy_optimizer_kwargs
        >>> lazy_optimizer_kwargs(0.0025, (0.0, 0.99), interval=4)
        {'lr': 0.002, 'betas': (0.0, 0.99199...)}

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (section B,
        "lazy regularization"; ``training/training_loop.py`` of stylegan2-ada-pytorch).
    """
    _check_interval(interval)
    check_positive("lr", lr)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair of numbers in [0, 1], got {betas!r}")
    for i, beta in enumerate(betas):
        check_probability(f"betas[{i}]", beta)
    c = interval / (interval + 1)
    return {"lr": lr * c, "betas": (betas[0] ** c, betas[1] ** c)}
