r"""Two time-scale update rule (TTUR, Heusel et al. 2017): one Adam per network, each with its own settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, Union

import torch
from torch import nn

from .._checks import check_positive, check_probability
from ..penalties.lazy import lazy_optimizer_kwargs

Params = Union[nn.Module, Iterable[torch.Tensor], Iterable[dict[str, Any]]]


def _settings(
    name: str, lr: float, betas: tuple[float, float], reg_interval: Optional[int]
) -> dict[str, Any]:
    check_positive(f"{name}_lr", lr)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{name}_betas must be a pair of numbers in [0, 1], got {betas!r}")
    for i, beta in enumerate(betas):
        check_probability(f"{name}_betas[{i}]", beta)
    if reg_interval is None:
        return {"lr": float(lr), "betas": (float(betas[0]), float(betas[1]))}
    if isinstance(reg_interval, bool) or not isinstance(reg_interval, int) or reg_interval < 1:
        raise ValueError(f"{name}_reg_interval must be a positive integer or None, got {reg_interval!r}")
    return lazy_optimizer_kwargs(lr, (betas[0], betas[1]), interval=reg_interval)


def ttur_adam(
    generator: Params,
    discriminator: Params,
    *,
    g_lr: float,
    d_lr: float,
    g_betas: tuple[float, float] = (0.0, 0.99),
    d_betas: tuple[float, float] = (0.0, 0.99),
    g_reg_interval: Optional[int] = None,
    d_reg_interval: Optional[int] = None,
    **adam_kwargs: Any,
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    r"""The generator's and the discriminator's Adam optimisers, each at its own learning rate and betas.

    TTUR gives the two networks separate learning rates (Heusel et al. prove convergence to a local Nash
    equilibrium under stochastic-approximation step sizes with the discriminator on the faster time scale;
    in practice SAGAN and BigGAN train D at :math:`4\times` G's rate, e.g.
    ``g_lr=1e-4, d_lr=4e-4`` with betas ``(0, 0.9)``). A network regularised lazily every :math:`k` steps
    (``*_reg_interval``, StyleGAN2's ``G_reg_interval`` / ``D_reg_interval``) gets
    :func:`~ganblocks.penalties.lazy_optimizer_kwargs`' correction on top:
    :math:`\text{lr}' = c\,\text{lr}`, :math:`\beta' = \beta^{c}`, :math:`c = k / (k + 1)`.

    Args:
        generator: the generator (its ``parameters()``) or an iterable of parameters / parameter groups.
        discriminator: the same for the discriminator.
        g_lr: the generator's learning rate (before the lazy correction).
        d_lr: the discriminator's learning rate (before the lazy correction).
        g_betas: the generator's Adam betas (StyleGAN2's ``(0, 0.99)`` by default).
        d_betas: the discriminator's Adam betas.
        g_reg_interval: the generator's lazy-regularisation interval (path length), or None.
        d_reg_interval: the discriminator's lazy-regularisation interval (R1), or None.
        **adam_kwargs: passed to both :class:`torch.optim.Adam` (``eps``, ``fused``, ...).

    Returns:
        ``(opt_g, opt_d)``.

    Example:
        >>> import torch
        >>> from ganblocks.training import ttur_adam
        >>> g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        >>> opt_g, opt_d = ttur_adam(g, d, g_lr=1e-4, d_lr=4e-4, d_reg_interval=4)
        >>> opt_g.defaults["lr"], round(opt_d.defaults["lr"], 8)  # D: 4e-4 * 4/5
        (0.0001, 0.00032)

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium", NeurIPS 2017; Zhang et al., "Self-Attention Generative Adversarial Networks", ICML
        2019; Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (lazy
        regularisation).
    """
    g = _settings("g", g_lr, g_betas, g_reg_interval)
    d = _settings("d", d_lr, d_betas, d_reg_interval)
    for key in ("lr", "betas"):
        if key in adam_kwargs:
            raise TypeError(f"ttur_adam sets {key} per network: use g_{key} and d_{key}, not {key}=")
    opt_g = torch.optim.Adam(_params("generator", generator), **g, **adam_kwargs)
    opt_d = torch.optim.Adam(_params("discriminator", discriminator), **d, **adam_kwargs)
    return opt_g, opt_d


def _params(name: str, value: Params) -> Any:
    if isinstance(value, nn.Module):
        return value.parameters()
    if isinstance(value, torch.Tensor) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be an nn.Module or an iterable of parameters or parameter groups, got "
            f"{type(value).__name__}"
        )
    return value
