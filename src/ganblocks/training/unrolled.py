r"""Unrolled GANs (Metz et al. 2017): k differentiable discriminator steps for the generator's loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

import torch
from torch import nn
from torch.func import functional_call

from .._checks import check_int, check_positive
from .ema import unwrap_model

Params = dict[str, torch.Tensor]
StepFn = Callable[[Params, Params], Params]


def unrolled_discriminator(
    d_module: nn.Module,
    params: Optional[Mapping[str, torch.Tensor]],
    d_loss_fn: Callable[[Any, Any], torch.Tensor],
    real: torch.Tensor,
    fake_fn: Union[torch.Tensor, Callable[[], torch.Tensor]],
    *,
    steps: int,
    lr: float = 1e-3,
    step_fn: Optional[StepFn] = None,
    differentiable: bool = True,
) -> Params:
    r"""Discriminator parameters after ``steps`` differentiable optimisation steps, for the generator's loss.

    Starting from :math:`\theta_D^0` (``params``), each step evaluates the discriminator's loss on a
    functional copy of the discriminator (:func:`torch.func.functional_call`; the module is not changed)
    and takes a gradient step (SGD by default) that stays in the autograd graph:

    .. math::
        \theta_D^{k+1} = \theta_D^k - \eta\, \nabla_{\theta_D} L_D\big(D(x; \theta_D^k),\,
        D(G(z); \theta_D^k)\big)

    The generator's unrolled loss :math:`L_G(D(G(z); \theta_D^K))` then backpropagates through the
    :math:`K` steps into the generator: both directly through :math:`G(z)` and through how the fakes of
    the unrolling moved :math:`\theta_D^K` (the second-order term of the paper). Compute it with
    ``torch.func.functional_call(d_module, unrolled, (fake,))``. The discriminator's own update is the
    usual one (the unrolled parameters are discarded after the generator's step).

    Args:
        d_module: the discriminator (a DDP or ``torch.compile`` wrapper is unwrapped; the compiled form
            cannot differentiate twice). Its buffers are used as they are.
        params: the starting parameters by name (``dict(d_module.named_parameters())`` when None).
            Parameters not named here keep their module values.
        d_loss_fn: the discriminator's loss of ``(real_logits, fake_logits)``, e.g.
            ``AdversarialLoss("non_saturating").d_loss``.
        real: the real batch for the unrolling.
        fake_fn: the fakes, a tensor that depends on the generator (used at every step) or a callable
            returning one (called once per step, e.g. with fresh latents).
        steps: the number of unrolling steps :math:`K` (5 to 10 in the paper; 0 returns ``params``).
        lr: :math:`\eta` for the default SGD step.
        step_fn: a differentiable update ``(params, grads) -> new params`` to use instead of SGD (e.g. a
            functional Adam); ``lr`` is then unused.
        differentiable: keep the steps in the graph (``create_graph=True``). False detaches each step's
            gradient: the generator then gets only the direct term (the paper's cheaper approximation).

    Returns:
        The unrolled parameters by name; they depend on the generator through the fakes.

    Example:
        >>> import torch
        >>> from torch.func import functional_call
        >>> from ganblocks.training import unrolled_discriminator
        >>> d = torch.nn.Linear(1, 1)
        >>> theta = torch.zeros(1, requires_grad=True)  # a "generator": fakes at theta
        >>> wgan_d = lambda r, f: f.mean() - r.mean()
        >>> unrolled = unrolled_discriminator(d, None, wgan_d, torch.ones(4, 1), lambda: theta.expand(4, 1),
        ...                                   steps=3, lr=0.1)
        >>> g_loss = -functional_call(d, unrolled, (theta.view(1, 1),)).mean()
        >>> g_loss.backward()  # through the three steps: -w0 + 3 * 0.1 * (2 * theta - 1)
        >>> torch.allclose(theta.grad, -d.weight.detach().view(1) - 0.3)
        True

    Reference:
        Metz et al., "Unrolled Generative Adversarial Networks", ICLR 2017.
    """
    module = unwrap_model(d_module)
    check_int("steps", steps, minimum=0)
    if step_fn is None:
        check_positive("lr", lr)
    if not callable(d_loss_fn):
        raise TypeError(f"d_loss_fn must be callable, got {type(d_loss_fn).__name__}")
    start = dict(module.named_parameters() if params is None else params)
    # A discriminator frozen for the generator's step (requires_grad_(False)) still unrolls: its values
    # start a fresh leaf. Tensors that require grad stay in the graph (gradients reach them too).
    current: Params = {n: t if t.requires_grad else t.detach().requires_grad_(True) for n, t in start.items()}
    if not current:
        raise ValueError("params must hold at least one tensor to unroll, got none")
    unknown = sorted(set(current) - {n for n, _ in module.named_parameters()})
    if unknown:
        raise ValueError(f"params must name parameters of d_module, got unknown names {unknown[:5]}")
    if steps > 0 and not torch.is_grad_enabled():
        raise RuntimeError(
            "unrolled_discriminator differentiates the discriminator's loss and needs autograd"
        )
    for _ in range(steps):
        fake = fake_fn() if callable(fake_fn) else fake_fn
        loss = d_loss_fn(functional_call(module, current, (real,)), functional_call(module, current, (fake,)))
        names = list(current)
        grads_t = torch.autograd.grad(
            loss, [current[n] for n in names], create_graph=differentiable, allow_unused=True
        )
        grads: Params = {n: torch.zeros_like(current[n]) if g is None else g for n, g in zip(names, grads_t)}
        if step_fn is None:
            current = {n: current[n] - lr * grads[n] for n in names}
            continue
        stepped = step_fn(current, grads)
        if not isinstance(stepped, Mapping) or set(stepped) != set(current):
            raise ValueError(
                f"step_fn must return a dict with the names of params {sorted(current)[:5]}, got "
                f"{sorted(stepped)[:5] if isinstance(stepped, Mapping) else type(stepped).__name__}"
            )
        current = dict(stepped)
    return current
