r"""Read rosinality/stylegan2-pytorch checkpoints (``g``, ``d``, ``g_ema``, ``args``) into ganblocks networks.

rosinality's layers compute StyleGAN2-ADA's formulas with the same stored weights (both follow the official
TensorFlow weights: equalized learning rate at run time, the mapping's learning-rate multiplier folded into the
stored weight, modulation biases initialised at 1, the transposed upsampling convolution unflipped), so the
conversion is a renaming plus reshapes: ``style.{i}`` -> ``mapping.fc{i-1}``, ``input.input`` ->
``synthesis.b4.const``, ``conv1``/``to_rgb1`` -> ``synthesis.b4.conv1``/``torgb``, ``convs.{2k}``/``convs.{2k+1}``
/``to_rgbs.{k}`` -> ``synthesis.b{8·2^k}.conv0``/``conv1``/``torgb``, ``noises.noise_{i}`` -> ``noise_const``
of the i-th synthesis layer; the discriminator's ``convs.0`` -> ``b{size}.fromrgb``, ``convs.{j}`` (ResBlock:
``conv1``, ``conv2``, ``skip``) -> ``b{size/2^(j-1)}.conv0``/``conv1``/``skip``, ``final_conv``/``final_linear``
-> ``b4.conv``/``fc``/``out``. rosinality's ``(out + skip) / sqrt(2)`` is StyleGAN2-ADA's gain ``sqrt(0.5)``
on both branches.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from ..discriminators import StyleGAN2Discriminator
from ..generators import StyleGAN2Generator
from ._common import PathOrFile, load_into, open_binary, to_dtype

_LOCK = threading.Lock()
_BLUR = (1.0, 3.0, 3.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class RosinalityCheckpoint:
    """What :func:`load_rosinality_checkpoint` read.

    Attributes:
        G: the trained generator (``g``), or None when the file has none.
        D: the discriminator (``d``), or None.
        G_ema: the averaged generator (``g_ema``), or None.
        config: ``size``, ``style_dim``, ``n_mlp`` and ``channel_multiplier`` (None when the channels do not
            follow rosinality's table), read from the tensors' shapes.
        args: the training arguments (``args``, an ``argparse.Namespace`` in the file) as a dict, or None.
        ada_aug_p: the adaptive augmentation probability, or None.
        g_optim: the generator's optimizer state as saved (parameters in rosinality's order), or None.
        d_optim: the discriminator's optimizer state as saved, or None.
    """

    G: Optional[StyleGAN2Generator]
    D: Optional[StyleGAN2Discriminator]
    G_ema: Optional[StyleGAN2Generator]
    config: dict[str, Any]
    args: Optional[dict[str, Any]]
    ada_aug_p: Optional[float]
    g_optim: Optional[dict[str, Any]]
    d_optim: Optional[dict[str, Any]]


@contextlib.contextmanager
def _namespace_allowed() -> Iterator[None]:
    """``argparse.Namespace`` admitted by ``torch.load(weights_only=True)`` for the duration of the block.

    A Namespace is rebuilt as an empty object whose ``__dict__`` is then filled, with no code run; its values
    still pass the weights-only checks. torch >= 2.5 scopes this with ``safe_globals``; torch 2.4 only has the
    process-wide list, which is restored on exit (under a lock, so concurrent loads do not interleave).
    """
    scoped = getattr(torch.serialization, "safe_globals", None)
    if scoped is not None:
        with scoped([argparse.Namespace]):
            yield
        return
    with _LOCK:
        before = list(torch.serialization.get_safe_globals())
        torch.serialization.add_safe_globals([argparse.Namespace])
        try:
            yield
        finally:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(before)


def _channel_layout(channels: Mapping[int, int], what: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // r, channel_max) == channels[r]`` for every r."""
    top = max(channels)
    channel_max = channels[min(channels)]
    channel_base = channels[top] * top
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise ValueError(
            f"{what}: the channels per resolution {dict(sorted(channels.items()))} do not follow "
            "min(channel_base // resolution, channel_max)"
        )
    return channel_base, channel_max


def _channel_multiplier(channels: Mapping[int, int]) -> Optional[int]:
    """rosinality's ``channel_multiplier`` if the channels follow its table, else None."""
    for multiplier in range(1, 65):
        if all((512 if r <= 32 else 16384 * multiplier // r) == c for r, c in channels.items()):
            return multiplier
    return None


def _check_blur(state: Mapping[str, torch.Tensor], key: str, what: str) -> None:
    kernel = state.get(key)
    if kernel is None:
        return
    f = torch.tensor(_BLUR, dtype=torch.float64)
    expected = torch.outer(f, f) / f.sum() ** 2
    got = kernel.to(torch.float64)
    if got.shape != expected.shape or not torch.allclose(got / got.sum(), expected, rtol=1e-6, atol=0.0):
        raise ValueError(f"{what}: {key!r} is not the blur kernel [1, 3, 3, 1] (other kernels are not read)")


def _take(state: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"{what}: the state dict has no {key!r}")
    return state[key]


def _generator(
    state: Mapping[str, torch.Tensor], what: str, mapping_lr_multiplier: float
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """StyleGAN2-ADA init kwargs and state dict of a rosinality ``Generator`` state dict, and its config."""
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in state:
        n_mlp += 1
    if n_mlp == 0:
        raise ValueError(f"{what}: no mapping layers 'style.1.weight' (is this a rosinality Generator?)")
    num_blocks = 0
    while f"to_rgbs.{num_blocks}.conv.weight" in state:
        num_blocks += 1
    size = 4 * 2**num_blocks
    const = _take(state, "input.input", what)
    style_dim = _take(state, "style.1.weight", what).shape[1]
    img_channels = _take(state, "to_rgb1.conv.weight", what).shape[1]
    channels = {4: const.shape[1]}
    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = _take(state, f"style.{i + 1}.bias", what)
    out["synthesis.b4.const"] = const[0]

    def styled(src: str, dst: str, noise_index: int) -> None:
        out[f"{dst}.weight"] = _take(state, f"{src}.conv.weight", what)[0]
        out[f"{dst}.affine.weight"] = _take(state, f"{src}.conv.modulation.weight", what)
        out[f"{dst}.affine.bias"] = _take(state, f"{src}.conv.modulation.bias", what)
        out[f"{dst}.noise_strength"] = _take(state, f"{src}.noise.weight", what).reshape(())
        out[f"{dst}.bias"] = _take(state, f"{src}.activate.bias", what)
        noise = state.get(f"noises.noise_{noise_index}")
        if noise is not None:
            out[f"{dst}.noise_const"] = noise[0, 0]

    def to_rgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = _take(state, f"{src}.conv.weight", what)[0]
        out[f"{dst}.affine.weight"] = _take(state, f"{src}.conv.modulation.weight", what)
        out[f"{dst}.affine.bias"] = _take(state, f"{src}.conv.modulation.bias", what)
        out[f"{dst}.bias"] = _take(state, f"{src}.bias", what).reshape(-1)

    styled("conv1", "synthesis.b4.conv1", 0)
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    for k in range(num_blocks):
        res = 8 * 2**k
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2)
        to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        channels[res] = state[f"convs.{2 * k}.conv.weight"].shape[1]
        _check_blur(state, f"convs.{2 * k}.conv.blur.kernel", what)
        _check_blur(state, f"to_rgbs.{k}.upsample.kernel", what)
    channel_base, channel_max = _channel_layout(channels, what)
    kwargs: dict[str, Any] = {
        "z_dim": style_dim,
        "c_dim": 0,
        "w_dim": style_dim,
        "img_resolution": size,
        "img_channels": img_channels,
        "mapping_kwargs": {"num_layers": n_mlp, "lr_multiplier": mapping_lr_multiplier},
        "synthesis_kwargs": {
            "channel_base": channel_base,
            "channel_max": channel_max,
            "num_fp16_res": 0,
            "conv_clamp": None,
            "architecture": "skip",
        },
    }
    config = {
        "size": size,
        "style_dim": style_dim,
        "n_mlp": n_mlp,
        "channel_multiplier": _channel_multiplier(channels),
    }
    return kwargs, out, config


def _discriminator(
    state: Mapping[str, torch.Tensor], what: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], int]:
    """StyleGAN2-ADA init kwargs and state dict of a rosinality ``Discriminator`` state dict, and its size."""
    num_blocks = 0
    while f"convs.{num_blocks + 1}.conv1.0.weight" in state:
        num_blocks += 1
    size = 4 * 2**num_blocks
    from_rgb = _take(state, "convs.0.0.weight", what)
    out: dict[str, torch.Tensor] = {
        f"b{size}.fromrgb.weight": from_rgb,
        f"b{size}.fromrgb.bias": _take(state, "convs.0.1.bias", what),
    }
    channels = {size: from_rgb.shape[0]}
    for j in range(1, num_blocks + 1):
        res = size // 2 ** (j - 1)
        src, dst = f"convs.{j}", f"b{res}"
        out[f"{dst}.conv0.weight"] = state[f"{src}.conv1.0.weight"]
        out[f"{dst}.conv0.bias"] = _take(state, f"{src}.conv1.1.bias", what)
        out[f"{dst}.conv1.weight"] = _take(state, f"{src}.conv2.1.weight", what)
        out[f"{dst}.conv1.bias"] = _take(state, f"{src}.conv2.2.bias", what)
        out[f"{dst}.skip.weight"] = _take(state, f"{src}.skip.1.weight", what)
        channels[res // 2] = out[f"{dst}.conv1.weight"].shape[0]
        _check_blur(state, f"{src}.conv2.0.kernel", what)
        _check_blur(state, f"{src}.skip.0.kernel", what)
    out["b4.conv.weight"] = _take(state, "final_conv.0.weight", what)
    out["b4.conv.bias"] = _take(state, "final_conv.1.bias", what)
    for i, name in enumerate(("fc", "out")):
        out[f"b4.{name}.weight"] = _take(state, f"final_linear.{i}.weight", what)
        out[f"b4.{name}.bias"] = _take(state, f"final_linear.{i}.bias", what)
    channel_base, channel_max = _channel_layout(channels, what)
    kwargs: dict[str, Any] = {
        "c_dim": 0,
        "img_resolution": size,
        "img_channels": from_rgb.shape[1],
        "architecture": "resnet",
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "epilogue_kwargs": {"mbstd_group_size": 4, "mbstd_num_channels": 1},
    }
    return kwargs, out, size


def _complete(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the module's own values for what rosinality does not store: the resampling filters
    (checked to be [1, 3, 3, 1] above), ``w_avg`` (zeros unless given), noise buffers of files without them."""
    own = module.state_dict()
    for key, value in own.items():
        if key not in state and key.endswith(("resample_filter", "w_avg", "noise_const")):
            state[key] = value
    return state


def _number(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return float(value.reshape(-1)[0])
    return float(value)


def load_rosinality_checkpoint(
    path: PathOrFile,
    *,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
    mapping_lr_multiplier: float = 0.01,
) -> RosinalityCheckpoint:
    r"""Load a rosinality/stylegan2-pytorch checkpoint into :class:`~ganblocks.StyleGAN2Generator` and
    :class:`~ganblocks.StyleGAN2Discriminator` with StyleGAN2-ADA's layout.

    Reads the dict ``train.py`` saves (``g``, ``d``, ``g_ema``, ``g_optim``, ``d_optim``, ``args``,
    ``ada_aug_p``) or the one ``convert_weight.py`` writes (``g_ema``, ``latent_avg``, optionally ``d``), with
    ``torch.load(weights_only=True)``; ``args`` (an ``argparse.Namespace``) is admitted as a plain record for
    that load only. The architecture (``size``, ``style_dim``, ``n_mlp``, the channels) is read from the
    tensors' shapes, so a file without ``args`` loads too; the generator is StyleGAN2-ADA's ``skip``
    architecture with ``z_dim = w_dim = style_dim`` and the discriminator its ``resnet`` architecture, as
    rosinality builds them. The noise buffers ``noises.noise_{i}`` become the layers' ``noise_const`` (used
    with ``noise_mode="const"``, rosinality's ``randomize_noise=False``). rosinality keeps no ``w_avg``: it is
    ``latent_avg`` when the file has one, else zeros (estimate it, as rosinality's ``mean_latent``, before
    truncating).

    With the same weights the networks compute rosinality's images and logits; only the demodulation's
    epsilon differs in where it is added (rosinality adds :math:`10^{-8}` to the squared norm of the scaled
    weight, StyleGAN2-ADA to that of the unscaled one), a relative difference of about
    :math:`10^{-8} \cdot \text{fan\_in} / \lVert w \rVert^2`.

    Args:
        path: the ``.pt`` file (a path or a binary file object).
        device: where to put the networks (default: the CPU).
        dtype: the dtype of the networks' floating-point parameters and buffers (default: float32, the
            files' dtype), e.g. ``torch.float64`` to compare with a reference.
        mapping_lr_multiplier: the mapping network's learning-rate multiplier the file was trained with
            (rosinality's ``lr_mlp``, 0.01); it scales the stored mapping weights, and is not in the file.

    Returns:
        A :class:`RosinalityCheckpoint`; an entry the file lacks is None.

    Example:
        >>> from ganblocks.checkpoints import load_rosinality_checkpoint
        >>> ckpt = load_rosinality_checkpoint("550000.pt", dtype=torch.float64)  # doctest: +SKIP
        >>> ckpt.config  # doctest: +SKIP
        {'size': 256, 'style_dim': 512, 'n_mlp': 8, 'channel_multiplier': 2}

    Reference:
        rosinality/stylegan2-pytorch (``model.py``, ``train.py``, ``convert_weight.py``).
    """
    if not isinstance(mapping_lr_multiplier, (int, float)) or not mapping_lr_multiplier > 0:
        raise ValueError(f"mapping_lr_multiplier must be a number > 0, got {mapping_lr_multiplier!r}")
    f = open_binary(path, what="load_rosinality_checkpoint")
    try:
        with _namespace_allowed():
            data = torch.load(f, map_location="cpu", weights_only=True)
    finally:
        if f is not path:
            f.close()
    if not isinstance(data, dict) or not any(k in data for k in ("g", "d", "g_ema")):
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"a rosinality checkpoint is a dict with 'g', 'd' or 'g_ema', got {keys}")
    config: dict[str, Any] = {}
    nets: dict[str, Any] = {}
    latent_avg = data.get("latent_avg")
    for key in ("g", "g_ema"):
        if data.get(key) is None:
            nets[key] = None
            continue
        kwargs, state, config = _generator(
            data[key], f"the checkpoint's {key!r}", float(mapping_lr_multiplier)
        )
        if latent_avg is not None:
            state["mapping.w_avg"] = latent_avg.reshape(-1)
        module = StyleGAN2Generator.from_stylegan2_ada_kwargs(kwargs, device=device, dtype=dtype)
        load_into(module, _complete(module, state), what=f"the checkpoint's {key!r}")
        nets[key] = to_dtype(module, dtype)
    if data.get("d") is not None:
        kwargs, state, size = _discriminator(data["d"], "the checkpoint's 'd'")
        if config and config["size"] != size:
            raise ValueError(f"the checkpoint's 'd' is for size {size}, its generator for {config['size']}")
        config.setdefault("size", size)
        disc = StyleGAN2Discriminator.from_stylegan2_ada_kwargs(kwargs, device=device, dtype=dtype)
        load_into(disc, _complete(disc, state), what="the checkpoint's 'd'")
        nets["d"] = to_dtype(disc, dtype)
    else:
        nets["d"] = None
    args = data.get("args")
    args_dict = vars(args) if isinstance(args, argparse.Namespace) else (dict(args) if args else None)
    if args_dict is not None:
        for mine, theirs in (("size", "size"), ("style_dim", "latent"), ("n_mlp", "n_mlp")):
            if mine in config and theirs in args_dict and args_dict[theirs] != config[mine]:
                raise ValueError(
                    f"the checkpoint's args say {theirs}={args_dict[theirs]!r}, its tensors {mine}={config[mine]}"
                )
        if args_dict.get("arch", "stylegan2") != "stylegan2":
            raise ValueError(
                f"only rosinality's 'stylegan2' architecture is read, got arch={args_dict['arch']!r}"
            )
    return RosinalityCheckpoint(
        G=nets["g"],
        D=nets["d"],
        G_ema=nets["g_ema"],
        config=config,
        args=args_dict,
        ada_aug_p=_number(data.get("ada_aug_p")),
        g_optim=data.get("g_optim"),
        d_optim=data.get("d_optim"),
    )
