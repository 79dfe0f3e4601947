r"""R1 and R2 zero-centred gradient penalties (Mescheder et al. 2018), on the real or the fake samples."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._checks import check_nonnegative, check_requires_autograd
from ..losses._reduction import Reduction, check_reduction
from ..outputs import PredLike
from ._common import (
    Discriminator,
    Inputs,
    LogitReduction,
    check_condition,
    check_inputs,
    check_logit_reduction,
    finish,
    input_gradients,
    input_gradients_of,
    logits_total,
    squared_norms,
)


def _check_options(gamma: float, logit_reduction: str, reduction: str) -> None:
    check_nonnegative("gamma", gamma)
    check_logit_reduction(logit_reduction)
    check_reduction(reduction)


def r1_penalty_from_outputs(
    outputs: PredLike,
    inputs: Inputs,
    *,
    gamma: float = 10.0,
    logit_reduction: LogitReduction = "sum",
    reduction: Reduction = "mean",
    scaler: Optional[torch.amp.GradScaler] = None,
) -> torch.Tensor:
    r"""R1 (or R2) from a forward pass the caller already made: :math:`\frac{\gamma}{2}\|\nabla_x D(x)\|^2`.

    Saves the extra forward of :func:`r1_penalty` when the discriminator's loss on the same batch is
    computed anyway: call ``real.requires_grad_(True)`` before ``outputs = D(real)``, use ``outputs`` for
    the adversarial loss, and pass both here. Passing a forward on fake samples gives R2. The forward
    must have run eagerly (not through ``torch.compile``, which cannot differentiate twice). The graph is
    kept (``create_graph=True`` retains it), so the adversarial loss can still be backpropagated.

    Args:
        outputs: what the discriminator returned (tensor, list, nested lists or ``DiscriminatorOutput``).
        inputs: the tensor (or list of scales) the discriminator was called with; must require grad.
            For a conditional discriminator called with ``torch.cat([c, x], 1)``, pass ``x`` alone
            (the tensor that requires grad), so the condition's channels are not penalised.
        gamma: the weight :math:`\gamma`.
        logit_reduction: ``"sum"`` or ``"mean"`` over each scale's logits (see :func:`r1_penalty`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        scaler: an optional ``torch.amp.GradScaler`` used for the gradient (see :func:`r1_penalty`).

    Returns:
        A scalar tensor (float32 or wider), or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import r1_penalty_from_outputs
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> r1_penalty_from_outputs((x * 3).sum(1), x, gamma=2.0)
        tensor(18., grad_fn=<AddBackward0>)
    """
    _check_options(gamma, logit_reduction, reduction)
    check_requires_autograd("the R1/R2 penalty")
    items, _ = check_inputs("inputs", inputs)
    total = logits_total(outputs, logit_reduction)
    grads = input_gradients(total, items, scaler=scaler, name="inputs")
    return finish(squared_norms(grads), 0.5 * gamma, reduction, total)


def _penalty(
    discriminator: Discriminator,
    x: Inputs,
    *,
    gamma: float,
    logit_reduction: LogitReduction,
    reduction: Reduction,
    scaler: Optional[torch.amp.GradScaler],
    name: str,
    condition: Optional[Inputs],
) -> torch.Tensor:
    _check_options(gamma, logit_reduction, reduction)
    check_requires_autograd("the R1/R2 penalty")
    items, single = check_inputs(name, x)
    conds = check_condition(condition, items, single, name)
    leaves = [t.detach().requires_grad_(True) for t in items]
    grads, total = input_gradients_of(
        discriminator, leaves, single, conds, logit_reduction=logit_reduction, scaler=scaler, name=name
    )
    return finish(squared_norms(grads), 0.5 * gamma, reduction, total)


def r1_penalty(
    discriminator: Discriminator,
    real: Inputs,
    *,
    gamma: float = 10.0,
    logit_reduction: LogitReduction = "sum",
    reduction: Reduction = "mean",
    condition: Optional[Inputs] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> torch.Tensor:
    r"""R1: the squared gradient norm of the discriminator on real samples.

    .. math::
        R_1 = \frac{\gamma}{2}\, \mathbb{E}_{x \sim p_\text{data}} \big[\|\nabla_x D(x)\|_2^2\big]

    :math:`D(x)` is, with ``logit_reduction="sum"``, the sum of every logit the discriminator returns for
    sample :math:`x` (all patches, all scales of a ``DiscriminatorOutput``, list or tensor): the paper's
    and StyleGAN2-ADA's definition for a single-logit discriminator. On a patch discriminator the
    gradients of its :math:`L` patch logits add up, so the penalty grows with the patch count (roughly as
    :math:`L` to :math:`L^2`). ``logit_reduction="mean"`` uses each scale's mean logit instead,
    :math:`D(x) = \sum_s \frac{1}{L_s}\sum_j D_{s,j}(x)`, the scale of the adversarial losses' per-scale
    means, so :math:`\gamma` keeps its single-logit meaning (on one scale the penalty is the ``"sum"``
    one divided by :math:`L^2`). The norm runs over every non-batch dimension of the input, and of every
    input scale when ``real`` is a list (MSG-GAN). ``real`` is detached, so no gradient reaches whatever
    produced it.

    Details that make it a drop-in for real training loops:

    - A ``torch.compile``\ d discriminator is called through its eager module (``_orig_mod``), because
      compiled graphs cannot be differentiated twice; the parameters are the same.
    - The result includes a zero term for every parameter the forward used, so each gets a gradient
      tensor (zero where the penalty has none, such as the last bias): pass the DDP-wrapped
      discriminator and the penalty's backward all-reduces like any loss, and Adam steps every parameter.
    - Mixed precision: call it inside the same ``torch.autocast`` as the discriminator's loss. With
      float16 and a ``GradScaler``, pass ``scaler=scaler``: the input gradient is taken of the scaled
      output and unscaled before the norm (the recipe of PyTorch's AMP notes), so small gradients do not
      flush to zero; then ``scaler.scale(loss).backward()`` as usual. bfloat16 needs no scaler. The norm
      is accumulated in float32. Alternatively run the penalty outside autocast, in float32.
    - NaN or inf in ``real`` (or in D's output) propagates to a NaN penalty; nothing is checked, since
      checking would synchronise with the device.

    Args:
        discriminator: a callable returning a tensor, a list of per-scale tensors or a
            ``DiscriminatorOutput``; called with ``real`` (a tensor, or the list when ``real`` is a list).
            Called with ``torch.cat([condition, real], 1)`` when a ``condition`` is given. For a
            discriminator that takes the condition as a second argument pass ``lambda x: d(x, c)``
            around the eager module instead.
        real: real samples ``(N, ...)``, or a list of scales with one batch size.
        gamma: the weight :math:`\gamma`: with ``"sum"`` on a single-logit discriminator 10 in StyleGAN2
            at 1024², often 0.1–10; with ``"sum"`` on a patch discriminator a value that small relative to
            the patch count; with ``"mean"`` the single-logit values.
        logit_reduction: ``"sum"`` (default, the paper's) or ``"mean"`` over each scale's logits.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch; ``"none"`` returns
            :math:`\frac{\gamma}{2}\|\nabla_x D(x)\|^2` per sample, shape ``(N,)``.
        condition: for a conditional discriminator that sees the condition concatenated with the image
            along the channels (pix2pixHD): the condition ``(N, C_cond, *spatial)``, or a list with one
            per scale when ``real`` is a list. It is concatenated in front of ``real``
            (``torch.cat([condition, real], 1)``) for the forward, but is **not** differentiated: the norm
            runs over the image channels only, as in StyleGAN2-ADA, which penalises the gradient with
            respect to the image and not the label. Detached, and cast to ``real``'s dtype.
        scaler: an enabled ``torch.amp.GradScaler`` to scale the inner gradient with, or None.

    Returns:
        The weighted penalty (float32 or wider), differentiable w.r.t. D's parameters: a scalar, or
        ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import r1_penalty
        >>> d = lambda x: 0.5 * x.square().sum(1)  # gradient x: R1 = gamma/2 * E||x||^2
        >>> r1_penalty(d, torch.tensor([[3.0, 4.0]]), gamma=2.0)
        tensor(25., grad_fn=<...>)

    Reference:
        Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018;
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020.
    """
    return _penalty(
        discriminator,
        real,
        gamma=gamma,
        logit_reduction=logit_reduction,
        reduction=reduction,
        scaler=scaler,
        name="real",
        condition=condition,
    )


def r2_penalty(
    discriminator: Discriminator,
    fake: Inputs,
    *,
    gamma: float = 10.0,
    logit_reduction: LogitReduction = "sum",
    reduction: Reduction = "mean",
    condition: Optional[Inputs] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> torch.Tensor:
    r"""R2: the squared gradient norm of the discriminator on fake samples.

    .. math::
        R_2 = \frac{\gamma}{2}\, \mathbb{E}_{x \sim p_G} \big[\|\nabla_x D(x)\|_2^2\big]

    Everything else as :func:`r1_penalty`; ``fake`` is detached, so no gradient reaches the generator.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import r2_penalty
        >>> r2_penalty(lambda x: 2.0 * x.sum(1), torch.zeros(4, 3), gamma=1.0)
        tensor(6., grad_fn=<AddBackward0>)

    Reference:
        Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018.
    """
    return _penalty(
        discriminator,
        fake,
        gamma=gamma,
        logit_reduction=logit_reduction,
        reduction=reduction,
        scaler=scaler,
        name="fake",
        condition=condition,
    )


class R1Penalty(nn.Module):
    r"""R1 penalty :math:`\frac{\gamma}{2}\mathbb{E}\|\nabla_x D(x)\|^2` on real samples; see :func:`r1_penalty`.

    Args:
        gamma: the weight :math:`\gamma`.
        logit_reduction: ``"sum"`` or ``"mean"`` over each scale's logits.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.

    Example:
        >>> import torch
        >>> from ganblocks import R1Penalty
        >>> R1Penalty(gamma=2.0)(lambda x: 0.5 * x.square().sum(1), torch.tensor([[3.0, 4.0]]))
        tensor(25., grad_fn=<...>)
    """

    _samples = "real"  # what the penalised samples are called in error messages

    def __init__(
        self, *, gamma: float = 10.0, logit_reduction: LogitReduction = "sum", reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        _check_options(gamma, logit_reduction, reduction)
        self.gamma = float(gamma)
        self.logit_reduction: LogitReduction = logit_reduction
        self.reduction: Reduction = reduction

    def forward(
        self,
        discriminator: Discriminator,
        x: Inputs,
        *,
        condition: Optional[Inputs] = None,
        scaler: Optional[torch.amp.GradScaler] = None,
    ) -> torch.Tensor:
        return _penalty(
            discriminator,
            x,
            gamma=self.gamma,
            logit_reduction=self.logit_reduction,
            reduction=self.reduction,
            scaler=scaler,
            name=self._samples,
            condition=condition,
        )

    def from_outputs(
        self, outputs: PredLike, inputs: Inputs, *, scaler: Optional[torch.amp.GradScaler] = None
    ) -> torch.Tensor:
        """The penalty on a forward pass already made; see :func:`r1_penalty_from_outputs`."""
        return r1_penalty_from_outputs(
            outputs,
            inputs,
            gamma=self.gamma,
            logit_reduction=self.logit_reduction,
            reduction=self.reduction,
            scaler=scaler,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, logit_reduction={self.logit_reduction!r}, reduction={self.reduction!r}"


class R2Penalty(R1Penalty):
    r"""R2 penalty :math:`\frac{\gamma}{2}\mathbb{E}\|\nabla_x D(x)\|^2` on fake samples; see :func:`r2_penalty`.

    Takes the arguments of :class:`R1Penalty`; ``forward(discriminator, x)`` with ``x`` the fake samples. The
    formula is R1's on other samples, so this is :class:`R1Penalty` under the name R3GAN (Huang et al. 2024) uses.

    Example:
        >>> import torch
        >>> from ganblocks import R2Penalty
        >>> R2Penalty(gamma=1.0)(lambda x: 2.0 * x.sum(1), torch.zeros(4, 3))
        tensor(6., grad_fn=<AddBackward0>)
    """

    _samples = "fake"
