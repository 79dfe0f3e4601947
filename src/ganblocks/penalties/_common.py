"""What every gradient penalty shares: calling D eagerly, the gradient w.r.t. its input, the DDP guard."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Callable, Literal, Optional, TypeAlias, Union, get_args

import torch

from .._checks import check_choice
from ..losses._reduction import Reduction, reduce_batch
from ..outputs import as_logits, as_tensor_list

Discriminator = Callable[..., Any]
Inputs: TypeAlias = Union[torch.Tensor, Sequence[torch.Tensor]]
LogitReduction: TypeAlias = Literal["sum", "mean"]
LOGIT_REDUCTIONS: tuple[LogitReduction, ...] = get_args(LogitReduction)
_HALF = (torch.float16, torch.bfloat16)


def check_logit_reduction(value: object) -> LogitReduction:
    return check_choice("logit_reduction", value, LOGIT_REDUCTIONS)


def working_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half inputs (random draws and the points built from them are rounded once, at the end)."""
    return torch.promote_types(x.dtype, torch.float32)


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


def logits_total(outputs: object, logit_reduction: LogitReduction) -> torch.Tensor:
    r"""The scalar whose input gradient is penalised (float32 or wider).

    ``"sum"``: :math:`\sum_s \sum_j x_{s,j}`, every logit of every scale; the gradient of a sample's
    patch logits adds up, so the penalty grows with the number of patches. ``"mean"``:
    :math:`\sum_s \frac{1}{L_s} \sum_j x_{s,j}` with :math:`L_s` the logits per sample at scale
    :math:`s`: each scale's mean patch logit, summed over scales like the adversarial losses' per-scale
    means, so a patch discriminator's penalty has the size of a single-logit one.
    """
    total: Optional[torch.Tensor] = None
    for x in as_logits("discriminator output", outputs):
        s = x.sum(dtype=torch.promote_types(x.dtype, torch.float32))
        if logit_reduction == "mean" and x.ndim > 0 and x.shape[0] > 0:
            s = s / (x.numel() // x.shape[0])
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


def input_gradients_of(
    discriminator: Discriminator,
    points: list[torch.Tensor],
    single: bool,
    condition: Optional[list[torch.Tensor]],
    *,
    logit_reduction: LogitReduction,
    scaler: Optional[torch.amp.GradScaler],
    name: str,
    autocast: bool = True,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """D at ``points`` (leaves that require grad), and the gradients of its :func:`logits_total` there.

    ``autocast=False`` runs D outside any enclosing ``torch.autocast`` of the points' device, in its own
    dtype. Returns the gradients (float32 or wider) and the total, for :func:`finish`.
    """
    with torch.autocast(points[0].device.type, enabled=False) if not autocast else contextlib.nullcontext():
        total = logits_total(call(discriminator, points, single, condition), logit_reduction)
        return input_gradients(total, points, scaler=scaler, name=name), total


def finish(
    per_sample: torch.Tensor, weight: float, reduction: Reduction, total: torch.Tensor
) -> torch.Tensor:
    """``weight`` times the batch reduction of ``per_sample``, with every parameter of D kept in the graph."""
    return keep_parameters_in_graph(weight * reduce_batch(per_sample, reduction), total)


def squared_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """``(N,)``: each sample's squared norm over every non-batch dim of every scale, one reduction per scale."""
    sq = grads[0].square().sum(sample_dims(grads[0]))
    for g in grads[1:]:
        sq = sq + g.square().sum(sample_dims(g))
    return sq


def norm_deviations(
    grads: list[torch.Tensor], *, norm: Literal["sample", "pixel"], target: float, one_sided: bool
) -> torch.Tensor:
    r"""``(N,)``: each sample's :math:`(\|g\| - t)^2` (``max(0, \cdot)^2`` when one-sided).

    ``"sample"``: one norm per sample over every non-batch dim, jointly over the scales. ``"pixel"``: the
    norm over the channels at each position, and the squared deviations averaged over the sample's
    positions of every scale.
    """
    if norm == "sample":
        # vector_norm (not sqrt of a sum) so the double backward stays finite at a zero gradient.
        norms = [torch.linalg.vector_norm(g, dim=sample_dims(g)) for g in grads]
        d = (norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms), dim=0)) - target
        return (torch.relu(d) if one_sided else d).square()
    total: Optional[torch.Tensor] = None
    count = 0
    for g in grads:
        d = torch.linalg.vector_norm(g, dim=1) - target
        d = (torch.relu(d) if one_sided else d).square()
        s = d.sum(sample_dims(d)) if d.ndim > 1 else d
        total = s if total is None else total + s
        count += d[0].numel() if d.ndim > 1 else 1
    assert total is not None
    return total / count


def _leaves(root: Any) -> list[torch.Tensor]:
    """The leaves that require grad below the autograd node ``root`` (its AccumulateGrad nodes' variables)."""
    found: list[torch.Tensor] = []
    seen: set[Any] = set()
    stack = [root]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):  # AccumulateGrad
            found.append(fn.variable)
        else:
            stack.extend(nxt for nxt, _ in fn.next_functions)
    return found


def keep_parameters_in_graph(penalty: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """``penalty`` plus zero times one element of every leaf of ``total``'s graph (every parameter D used).

    A penalty on the input gradient reaches only some parameters: the last layer's bias never, and a
    parameter whose output enters a linear op such as a fixed blur only through that op's saved input,
    whose double backward returns no gradient for it. Those would get no gradient at all (``grad`` None):
    DDP (``find_unused_parameters=False``) would wait for them or skip their bucket's all-reduce, and Adam
    would skip their step, so its step count falls behind. The autograd graph cannot tell which leaves
    get None (a structural path may carry none), so every leaf gets a zero term. One element per leaf
    keeps the forward to a gather and a sum per device; the backward writes each parameter's zero
    gradient once. If a parameter holds inf/NaN the penalty becomes NaN, as D's logits are then.
    """
    # A Python walk over the autograd nodes: a few hundred for a multi-scale discriminator, well under a ms.
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for leaf in _leaves(total.grad_fn):
        if leaf.numel() > 0:
            by_device.setdefault(leaf.device, []).append(leaf.reshape(-1)[:1])
    for firsts in by_device.values():
        penalty = penalty + (torch.cat(firsts).to(penalty.dtype) * 0).sum().to(penalty.device)
    return penalty
