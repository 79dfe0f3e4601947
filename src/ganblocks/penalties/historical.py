r"""Historical averaging (Salimans et al. 2016): pull the parameters towards their running average."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_nonnegative


def historical_averaging_penalty(
    parameters: Sequence[torch.Tensor], averages: Sequence[torch.Tensor], *, weight: float = 1.0
) -> torch.Tensor:
    r"""The squared distance of the parameters from their historical average.

    .. math::
        P = \lambda \sum_j \Big\|\theta_j - \frac{1}{t} \sum_{i=1}^{t} \theta_j[i]\Big\|_2^2

    summed over every element of every parameter :math:`\theta_j`, with :math:`\theta_j[i]` the value at
    past step :math:`i` (``averages`` holds the averages, kept by :class:`HistoricalAveraging`). It is a
    penalty on the parameters, not on a batch, so it has no ``reduction=``: there are no samples to
    reduce over.

    Args:
        parameters: the current parameters (the gradient flows to them).
        averages: their historical averages, same shapes (treated as constants).
        weight: :math:`\lambda` (1).

    Returns:
        A scalar tensor (float32 or wider).

    Example:
        >>> import torch
        >>> from ganblocks.penalties import historical_averaging_penalty
        >>> historical_averaging_penalty([torch.tensor([1.0, 2.0])], [torch.tensor([0.0, 0.0])], weight=0.5)
        tensor(2.5000)

    Reference:
        Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (section 3.3).
    """
    check_nonnegative("weight", weight)
    params, avgs = list(parameters), list(averages)
    if len(params) != len(avgs) or not params:
        raise ValueError(
            f"parameters and averages must be non-empty and of one length, got {len(params)} and {len(avgs)}"
        )
    terms = []
    for i, (p, a) in enumerate(zip(params, avgs)):
        if p.shape != a.shape:
            raise ValueError(
                f"averages[{i}] must have the shape of parameters[{i}] {tuple(p.shape)}, got {tuple(a.shape)}"
            )
        d = p - a.detach().to(p.dtype)
        terms.append(d.square().sum(dtype=torch.promote_types(p.dtype, torch.float32)))
    return weight * torch.stack(terms).sum()


class HistoricalAveraging(nn.Module):
    r"""Keeps the running average of a model's parameters and penalises the distance from it.

    Per training step, call :meth:`penalty` (add it to the model's loss) and then :meth:`update` (after
    the optimizer step, or before it: the average then includes the value just penalised). The average
    over :math:`t` steps is kept incrementally,
    :math:`\bar\theta_t = \bar\theta_{t-1} + (\theta[t] - \bar\theta_{t-1}) / t`, in float32 or wider.
    Before the first :meth:`update` there is no history and the penalty is 0 (still in the graph, so DDP
    sees every parameter used).

    The averages are buffers (in the state dict with the step count) and follow ``.to()``; the model is
    referenced, not registered, so its parameters do not appear in this module's ``parameters()``.

    Args:
        model: the model whose parameters (those that require grad) are averaged; a DDP or compiled
            wrapper works (the parameters are shared).
        weight: :math:`\lambda` (1).

    Example:
        >>> import torch
        >>> from ganblocks.penalties import HistoricalAveraging
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> ha = HistoricalAveraging(model, weight=1.0)
        >>> for w in (1.0, 3.0):
        ...     _ = torch.nn.init.constant_(model.weight, w)
        ...     ha.update()  # average of 1 and 3: 2
        >>> _ = torch.nn.init.constant_(model.weight, 5.0)
        >>> ha.penalty()  # (5 - 2)^2
        tensor(9., grad_fn=<MulBackward0>)

    Reference:
        Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016 (section 3.3).
    """

    def __init__(self, model: nn.Module, *, weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.weight = check_nonnegative("weight", weight)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("model must have at least one parameter that requires grad, got none")
        # A plain list attribute: nn.Module registers only Parameters and Modules.
        self._params: list[torch.Tensor] = [p for _, p in named]
        self.names = [n for n, _ in named]
        for i, p in enumerate(self._params):
            dtype = torch.promote_types(p.dtype, torch.float32)
            self.register_buffer(f"average_{i}", torch.zeros(p.shape, dtype=dtype, device=p.device))
        self.steps = 0

    def averages(self) -> list[torch.Tensor]:
        """The historical average of each parameter, in the order of ``names``."""
        return [getattr(self, f"average_{i}") for i in range(len(self._params))]

    def penalty(self) -> torch.Tensor:
        """:math:`\\lambda \\sum_j \\|\\theta_j - \\bar\\theta_j\\|^2` (0, in the graph, before any update)."""
        if self.steps == 0:
            return historical_averaging_penalty(self._params, [p.detach() for p in self._params], weight=0.0)
        return historical_averaging_penalty(self._params, self.averages(), weight=self.weight)

    def forward(self) -> torch.Tensor:
        return self.penalty()

    @torch.no_grad()
    def update(self) -> None:
        """Add the parameters' current values to the average."""
        self.steps += 1
        avgs = self.averages()
        values = [p.detach().to(a.device, a.dtype) for p, a in zip(self._params, avgs)]
        torch._foreach_lerp_(avgs, values, 1.0 / self.steps)

    def get_extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])

    def extra_repr(self) -> str:
        return f"weight={self.weight}, parameters={len(self._params)}, steps={self.steps}"
