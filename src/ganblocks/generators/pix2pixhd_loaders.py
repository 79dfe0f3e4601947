"""Loading pix2pixHD generator checkpoints: ``nn.Sequential`` indices to this package's module names.

pix2pixHD stores each network as ``nn.Sequential`` lists: ``GlobalGenerator`` and ``Encoder`` as
``model.<i>.*`` (a residual block as ``model.<i>.conv_block.<j>.*``), ``LocalEnhancer`` as ``model.<i>.*``
for G1 without its output layer, and ``model<k>_1.*`` (downsampling branch) and ``model<k>_2.*``
(upsampling branch) for enhancer ``k``. A *plan* maps each Sequential's parameterized indices to names
here; the same plans read the architecture back from a state dict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple, Optional

import torch
from torch import nn

from ._layers import GeneratorNorm

# One Sequential's plan: index → (module path here, whether it is a ResnetBlock).
Plan = dict[int, tuple[str, bool]]
_KEY = re.compile(r"^(?P<seq>model\d*(?:_\d+)?)\.(?P<i>\d+)\.(?:conv_block\.(?P<j>\d+)\.)?(?P<param>\w+)$")
# pix2pixHD's ResnetBlock.conv_block: pad, conv, norm, relu, pad, conv, norm.
_BLOCK = {1: "conv1.conv", 2: "conv1.norm", 5: "conv2.conv", 6: "conv2.norm"}


class GeneratorLayout(NamedTuple):
    """Architecture read from a pix2pixHD state dict."""

    in_channels: int
    out_channels: int
    base_channels: int
    num_downsampling: int
    num_blocks: int
    norm: GeneratorNorm


def trunk_plan(prefix: str, num_downsampling: int, num_blocks: int, *, head: bool) -> Plan:
    """``GlobalGenerator.model``: ``[pad, conv, norm, relu] + n×[conv, norm, relu] + blocks + n×[convT,
    norm, relu] + [pad, conv, tanh]`` (the last three only with ``head``)."""
    plan: Plan = {1: (f"{prefix}stem.conv", False), 2: (f"{prefix}stem.norm", False)}
    i = 4
    for k in range(num_downsampling):
        plan[i], plan[i + 1] = (f"{prefix}down.{k}.conv", False), (f"{prefix}down.{k}.norm", False)
        i += 3
    for j in range(num_blocks):
        plan[i] = (f"{prefix}blocks.{j}", True)
        i += 1
    for k in range(num_downsampling):
        plan[i], plan[i + 1] = (f"{prefix}up.{k}.conv", False), (f"{prefix}up.{k}.norm", False)
        i += 3
    if head:
        plan[i + 1] = (f"{prefix}head.conv", False)
    return plan


def global_generator_plans(num_downsampling: int, num_blocks: int, *, head: bool = True) -> dict[str, Plan]:
    return {"model": trunk_plan("", num_downsampling, num_blocks, head=head)}


def local_enhancer_plans(
    num_downsampling_global: int, num_blocks_global: int, num_local_enhancers: int, num_blocks_local: int
) -> dict[str, Plan]:
    plans = {"model": trunk_plan("global_generator.", num_downsampling_global, num_blocks_global, head=False)}
    for k in range(1, num_local_enhancers + 1):
        p = f"enhancers.{k - 1}."
        plans[f"model{k}_1"] = {
            1: (f"{p}stem.conv", False), 2: (f"{p}stem.norm", False),
            4: (f"{p}down.conv", False), 5: (f"{p}down.norm", False),
        }  # fmt: skip
        up: Plan = {j: (f"{p}blocks.{j}", True) for j in range(num_blocks_local)}
        b = num_blocks_local
        up[b], up[b + 1] = (f"{p}up.conv", False), (f"{p}up.norm", False)
        if k == num_local_enhancers:
            up[b + 4] = (f"{p}head.conv", False)
        plans[f"model{k}_2"] = up
    return plans


def _strip(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor], plans: Mapping[str, Plan], *, what: str, bias_before_norm: bool
) -> dict[str, torch.Tensor]:
    """Map pix2pixHD keys to this package's through ``plans``; raise on keys the plans do not know.

    Without ``bias_before_norm`` the conv biases in front of a norm are dropped (instance norm subtracts
    them) or folded into the batch norm's running mean (which then subtracts the same amount).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _KEY.match(_strip(key))
        plan = None if m is None else plans.get(m["seq"])
        if m is None or plan is None:
            raise ValueError(
                f"state_dict key {key!r} is not a pix2pixHD {what} key (expected {sorted(plans)})"
            )
        entry = plan.get(int(m["i"]))
        block = m["j"] is not None
        inner = _BLOCK.get(int(m["j"])) if block else None
        if entry is None or entry[1] != block or (block and inner is None):
            raise ValueError(
                f"state_dict key {key!r} names a layer that has no parameters in this {what}: check "
                "num_downsampling, num_blocks and the number of enhancers"
            )
        path = entry[0] if inner is None else f"{entry[0]}.{inner}"
        out[f"{path}.{m['param']}"] = value
    if not bias_before_norm:
        for key in [k for k in out if k.endswith(".conv.bias") and ".head." not in f".{k}"]:
            bias = out.pop(key)
            mean_key = key[: -len("conv.bias")] + "norm.running_mean"
            if mean_key in out:
                out[mean_key] = out[mean_key] - bias
    return out


def load_converted(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    plans: Mapping[str, Plan],
    *,
    what: str,
    strict: bool,
) -> None:
    """Convert ``state_dict`` with ``plans`` and load it into ``module``, naming any mismatch."""
    bias_before_norm = bool(getattr(module, "bias_before_norm", True))
    converted = convert_state_dict(state_dict, plans, what=what, bias_before_norm=bias_before_norm)
    own = module.state_dict()
    for key in own:
        if key.endswith("num_batches_tracked") and key not in converted:
            converted[key] = torch.zeros_like(own[key])  # checkpoints from PyTorch < 0.4.1
    missing = sorted(set(own) - set(converted))
    unexpected = sorted(set(converted) - set(own))
    if strict and (missing or unexpected):
        raise ValueError(
            f"state_dict does not match this {what} ({module.extra_repr()}): missing {missing[:6]}, "
            f"unexpected {unexpected[:6]} (after mapping pix2pixHD keys to this module's)"
        )
    for key, value in sorted(converted.items()):
        if key in own and own[key].shape != value.shape:
            raise ValueError(
                f"state_dict entry for {key} has shape {tuple(value.shape)}, this {what} expects "
                f"{tuple(own[key].shape)}: check in_channels, out_channels and base_channels"
            )
    module.load_state_dict({k: v for k, v in converted.items() if k in own}, strict=strict)


def _sequential(state_dict: Mapping[str, torch.Tensor], seq: str) -> tuple[list[torch.Tensor], set[int]]:
    """Conv weights (4-D, by index) and residual-block indices of the Sequential ``seq``."""
    convs: dict[int, torch.Tensor] = {}
    blocks: set[int] = set()
    for key, value in state_dict.items():
        m = _KEY.match(_strip(key))
        if m is None or m["seq"] != seq:
            continue
        if m["j"] is not None:
            blocks.add(int(m["i"]))
        elif m["param"] == "weight" and value.ndim == 4:
            convs[int(m["i"])] = value
    return [convs[i] for i in sorted(convs)], blocks


def _norm(state_dict: Mapping[str, torch.Tensor]) -> GeneratorNorm:
    return "batch" if any(k.endswith("running_mean") for k in state_dict) else "instance"


def global_generator_config(state_dict: Mapping[str, torch.Tensor], *, what: str) -> GeneratorLayout:
    """Layout of a pix2pixHD ``GlobalGenerator`` or ``Encoder`` (both ``model.<i>.*`` with an output conv)."""
    convs, blocks = _sequential(state_dict, "model")
    if len(convs) < 2 or len(convs) % 2:
        raise ValueError(
            f"state_dict does not hold a pix2pixHD {what}: expected model.<i>.weight convs (stem, pairs of "
            f"down/up convs, output conv), found {len(convs)} conv weights; keys such as {list(state_dict)[:4]}"
        )
    first, last = convs[0], convs[-1]
    return GeneratorLayout(
        first.shape[1], last.shape[0], first.shape[0], (len(convs) - 2) // 2, len(blocks), _norm(state_dict)
    )


class LocalEnhancerLayout(NamedTuple):
    """Architecture of a pix2pixHD ``LocalEnhancer`` read from its state dict."""

    in_channels: int
    out_channels: int
    base_channels: int
    num_downsampling_global: int
    num_blocks_global: int
    num_local_enhancers: int
    num_blocks_local: int
    norm: GeneratorNorm


def local_enhancer_config(state_dict: Mapping[str, torch.Tensor]) -> LocalEnhancerLayout:
    seqs = {m["seq"] for m in (_KEY.match(_strip(k)) for k in state_dict) if m is not None}
    num = sum(1 for s in seqs if re.fullmatch(r"model\d+_1", s))
    global_convs, global_blocks = _sequential(state_dict, "model")
    down: Optional[list[torch.Tensor]] = _sequential(state_dict, f"model{num}_1")[0] if num else None
    up_convs, up_blocks = _sequential(state_dict, f"model{num}_2")
    if not num or not down or not up_convs or len(global_convs) % 2 == 0:
        raise ValueError(
            "state_dict does not hold a pix2pixHD LocalEnhancer: expected model.<i>.* (global generator), "
            f"model<k>_1.* and model<k>_2.* (enhancers); keys such as {list(state_dict)[:4]}"
        )
    return LocalEnhancerLayout(
        down[0].shape[1], up_convs[-1].shape[0], down[0].shape[0], (len(global_convs) - 1) // 2,
        len(global_blocks), num, len(up_blocks), _norm(state_dict),
    )  # fmt: skip
