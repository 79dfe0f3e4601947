"""What every gradient penalty shares: calling D eagerly, the gradient w.r.t. its input, the DDP guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional, TypeAlias, Union

import torch
from torch.autograd.function import BackwardCFunction

from ..outputs import as_logits, as_tensor_list

Discriminator = Callable[..., Any]
Inputs: TypeAlias = Union[torch.Tensor, Sequence[torch.Tensor]]
_HALF = (torch.float16, torch.bfloat16)


def eager(discriminator: Discriminator) -> Discriminator:
    """The module under a ``torch.compile`` wrapper: AOTAutograd cannot run the double backward."""
    return getattr(discriminator, "_orig_mod", discriminator)


def check_inputs(name: str, x: Inputs) -> tuple[list[torch.Tensor], bool]:
    """A tensor or list of scales, all floating point with one batch size; and whether it was a tensor."""
    items, single = as_tensor_list(name, x)
    for i, t in enumerate(items):
        where = name if single else f"{name}[{i}]"
        if not t.is_floating_point():
            raise TypeError(f"{where} must be a floating-point tensor, got dtype {t.dtype}")
        if t.ndim < 1 or t.shape[0] == 0:
            raise ValueError(f"{where} must have a non-empty batch dimension, got shape {tuple(t.shape)}")
    n = items[0].shape[0]
    if any(t.shape[0] != n for t in items):
        raise ValueError(f"{name} must have one batch size at every scale, got {[t.shape[0] for t in items]}")
    return items, single


def check_condition(
    condition: Optional[Inputs], inputs: list[torch.Tensor], single: bool, name: str
) -> Optional[list[torch.Tensor]]:
    """The condition per scale, detached, in the inputs' dtype; None when there is none.

    Each scale must be ``(N, C_cond, *spatial)`` with the input's batch size, spatial size and device, so
    that it can be concatenated in front of the input along the channel dimension.
    """
    if condition is None:
        return None
    conds, cond_single = as_tensor_list("condition", condition)
    if cond_single != single or len(conds) != len(inputs):
        given = "a tensor" if cond_single else f"a list of {len(conds)} scales"
        wanted = "a tensor" if single else f"a list of {len(inputs)} scales"
        raise ValueError(f"condition must be {wanted} like {name}, got {given}")
    out: list[torch.Tensor] = []
    for i, (c, x) in enumerate(zip(conds, inputs)):
        where = "condition" if single else f"condition[{i}]"
        if x.ndim < 2 or c.ndim != x.ndim or c.shape[0] != x.shape[0] or c.shape[2:] != x.shape[2:]:
            expected = (
                f"(N, C_cond, *spatial) = ({x.shape[0]}, C_cond{''.join(f', {s}' for s in x.shape[2:])})"
            )
            raise ValueError(
                f"{where} must have shape {expected} to be concatenated with {name} of shape "
                f"{tuple(x.shape)} along dim 1, got {tuple(c.shape)}"
            )
        if c.device != x.device:
            raise ValueError(f"{where} must be on {name}'s device {x.device}, got {c.device}")
        out.append(c.detach().to(x.dtype))
    return out


def call(
    discriminator: Discriminator,
    inputs: list[torch.Tensor],
    single: bool,
    condition: Optional[list[torch.Tensor]] = None,
) -> Any:
    """D on the inputs, with the (checked) condition concatenated in front along the channels."""
    if condition is not None:
        inputs = [torch.cat([c, x], dim=1) for c, x in zip(condition, inputs)]
    return eager(discriminator)(inputs[0] if single else inputs)


def logits_sum(outputs: object) -> torch.Tensor:
    """The sum of every logit of every scale (float32 or wider): the scalar whose input gradient is penalised.

    For a patch or multi-scale discriminator the gradient of this sum is the sum of the gradients of every
    patch logit, which is what R1/WGAN-GP implementations of such discriminators penalise.
    """
    total: Optional[torch.Tensor] = None
    for x in as_logits("discriminator output", outputs):
        s = x.sum(dtype=torch.promote_types(x.dtype, torch.float32))
        total = s if total is None else total + s
    assert total is not None
    return total


def input_gradients(
    total: torch.Tensor,
    inputs: list[torch.Tensor],
    *,
    scaler: Optional[torch.amp.GradScaler],
    name: str,
) -> list[torch.Tensor]:
    """``d total / d inputs`` with ``create_graph=True``, in float32 or wider.

    With an enabled ``GradScaler`` the gradient is taken of ``scale / N * total`` (so float16 gradients do
    not underflow) and divided by that factor afterwards, without a host synchronisation. The ``1 / N``
    gives each logit the gradient it gets from a batch-mean loss scaled by the same scaler, so the scaler's
    usual overflow/underflow balance holds (with ``scale`` alone, 2**16 per float16 logit overflows). An
    overflow gives an inf/NaN penalty, whose parameter gradients make the scaler skip the step.
    """
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise ValueError(
                f"{name}[{i}] does not require grad; call .requires_grad_(True) on it before the discriminator's "
                "forward so the penalty can differentiate the output with respect to it"
            )
    scale: Optional[torch.Tensor] = None
    if scaler is not None and scaler.is_enabled():
        scale = scaler.scale(torch.ones((), device=total.device, dtype=torch.float32)) / inputs[0].shape[0]
        total = total * scale
    grads = torch.autograd.grad(total, inputs, create_graph=True, allow_unused=True)
    out: list[torch.Tensor] = []
    for i, g in enumerate(grads):
        if g is None:
            raise ValueError(
                f"the discriminator's output does not depend on {name}[{i}]; pass the tensors the "
                "discriminator was called with"
            )
        g = g.float() if g.dtype in _HALF else g
        out.append(g if scale is None else g / scale)
    return out


def sample_dims(t: torch.Tensor) -> tuple[int, ...]:
    # Reducing over these dims (instead of flatten(1)) keeps channels_last gradients copy-free.
    return tuple(range(1, t.ndim))


def _leaves(root: Any, *, through_custom: bool) -> set[Any]:
    """The AccumulateGrad nodes (leaves that require grad) below the autograd node ``root``.

    With ``through_custom=False`` the walk does not pass custom autograd functions (``torch.autograd.Function``
    and ``torch.library`` ops, such as the Triton kernels' backward): one may return None for an input whose
    derivative is zero, so a leaf reached only through one may still get no gradient.
    """
    found: set[Any] = set()
    seen: set[Any] = set()
    stack = [root]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):  # AccumulateGrad
            found.add(fn)
        elif through_custom or not isinstance(fn, BackwardCFunction):
            stack.extend(nxt for nxt, _ in fn.next_functions)
    return found


def keep_parameters_in_graph(penalty: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``penalty + 0 * sum(p.sum())`` over the leaves of ``total``'s graph the penalty does not reach.

    The input gradient does not depend on some parameters (e.g. the last layer's bias), so they would
    get no gradient from the penalty alone, and DDP (``find_unused_parameters=False``) would wait for them
    forever, or skip the all-reduce of their bucket. Leaves the penalty reaches only through custom
    autograd functions count as unreached too (see :func:`_leaves`). Adding ``0 * total`` would give
    them all a gradient, but its backward runs the last layers' backward (a convolution's input and weight
    gradients) on zeros, a few percent of an R1 step; ``0 * p.sum()`` for just those parameters costs a
    sum of a bias each. If such a parameter is inf/NaN the penalty becomes NaN, as its logits are then.
    """
    # A Python walk over the autograd nodes: a few hundred for a multi-scale discriminator, well under a ms.
    reached = _leaves(penalty.grad_fn, through_custom=False)
    missing: list[torch.Tensor] = [
        fn.variable for fn in _leaves(total.grad_fn, through_custom=True) if fn not in reached
    ]
    if not missing:
        return penalty
    # Zero each leaf before summing it: the sum of a large float16 parameter can overflow, and 0 * inf is
    # NaN. One term per leaf, moved to the penalty's device (a model may span several).
    for leaf in missing:
        penalty = penalty + (leaf * 0).sum().to(penalty.device, penalty.dtype)
    return penalty
