from __future__ import annotations

from typing import Optional

import torch

from .._activations import ActSpec, apply_activation
from ..bias_act.reference import HOMOGENEOUS, IN_PLACE, bias_act_reference


def inject_noise_reference(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
) -> torch.Tensor:
    """``clamp(gain * act(x + strength * noise + bias))``; noise (N, 1, H, W), strength () or (C,).

    Parameters in another dtype (float32 strength with bfloat16 activations) are cast to ``x.dtype``, so
    the result has the dtype of ``x``. A positive gain of a homogeneous activation is folded into the
    pass that adds the bias to ``x`` (see :mod:`ganblocks.ops.bias_act.reference`) and into the small
    strength, ``(gain * s) * noise``, never into a full-size pass over the noise term; a scalar strength
    scales the ``(N, 1, H, W)`` noise before it is broadcast over the channels, so its gradient reduces
    over the channels first, as the plain ``x + w * noise`` does. The activation runs in place on the
    fresh sum, so autograd keeps only its output.
    """
    dt = x.dtype
    if torch.compiler.is_compiling():
        # The in-place and ``alpha=`` forms below are for eager speed; inductor fuses on its own and has
        # traced ``add(..., alpha=)`` after a matmul to wrong values: trace the plain formula.
        sv = strength.to(dt).reshape(-1, 1, 1) if strength.ndim == 1 else strength.to(dt)
        u = x + sv * noise.to(dt)
        return bias_act_reference(u, bias, spec=spec, alpha=alpha, gain=gain, clamp=clamp, dim=1)
    s = strength if strength.dtype == dt else strength.to(dt)
    n = noise if noise.dtype == dt else noise.to(dt)
    name = spec.name
    fold = gain > 0.0 and name in HOMOGENEOUS  # folds_gain, inlined: every µs shows on small tensors
    g = gain if fold else 1.0
    z: Optional[torch.Tensor] = None
    if bias is not None:
        bv = bias.view(-1, 1, 1)  # a 1-D tensor (checked) views as (C, 1, 1) whatever its stride
        if bv.dtype != dt:
            bv = bv.to(dt)
        # g * (x + b) in one pass as (g * b) + g * x.
        z = torch.add(bv * g, x, alpha=g) if g != 1.0 else x + bv
    elif g != 1.0:
        z = x * g
    # g goes into the strength, not into ``alpha=``/``value=`` of the full-size add: autograd scales the
    # full-size incoming gradient of such an op by g once more, while ``s * g`` scales only the gradient of
    # the () or (C,) strength.
    if g != 1.0:
        s = s * g
    if s.ndim == 1:
        s = s.view(-1, 1, 1)
        z = torch.addcmul(x, s, n) if z is None else z.addcmul_(s, n)
    else:
        sn = n * s
        z = x + sn if z is None else z.add_(sn)
    if name != "linear":  # activate_owned, inlined (not compiling: checked above)
        inplace = IN_PLACE.get(name)
        z = inplace(z, alpha) if inplace is not None else apply_activation(z, spec, alpha)
    if not fold and gain != 1.0:
        z = z * gain
    return z if clamp is None else z.clamp(-clamp, clamp)
