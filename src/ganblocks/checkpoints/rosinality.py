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
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from ..discriminators import StyleGAN2Discriminator
from ..generators import StyleGAN2Generator
from ._common import PathOrFile, check_state, check_stored, load_into, open_binary, to_dtype

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
        g_optim: the generator's optimizer state (``g_optim``), renumbered for ``G.parameters()`` and with
            its per-parameter tensors in ganblocks' shapes: ``torch.optim.Adam(G.parameters(), ...)
            .load_state_dict(g_optim)`` resumes rosinality's optimizer. None when the file has none.
        d_optim: the same for the discriminator (``d_optim``), for ``D.parameters()``.
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
    got = _stored(kernel, f"{what}: tensor {key!r}").to(torch.float64)
    if got.shape != expected.shape or not torch.allclose(got / got.sum(), expected, rtol=1e-6, atol=0.0):
        raise ValueError(f"{what}: {key!r} is not the blur kernel [1, 3, 3, 1] (other kernels are not read)")


def _stored(value: Any, what: str) -> torch.Tensor:
    """``value`` if it is a tensor with no more elements than its storage holds: a zero stride would let a few
    stored bytes stand for a tensor of any size, and the network built to receive it be that large."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{what} must be a tensor, got {type(value).__name__}")
    stored = value.untyped_storage().nbytes() // max(value.element_size(), 1)
    if value.numel() > stored:
        raise ValueError(
            f"{what} has shape {tuple(value.shape)} ({value.numel()} elements) over a storage of {stored}"
        )
    return value


def _take(state: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"{what}: the state dict has no {key!r}")
    return _stored(state[key], f"{what}: tensor {key!r}")


def _generator(
    state: Mapping[str, torch.Tensor], what: str, mapping_lr_multiplier: float
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, str], dict[str, Any]]:
    """StyleGAN2-ADA init kwargs and state dict of a rosinality ``Generator`` state dict, the rosinality name
    of each key, and the config."""
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
    names: dict[str, str] = {}

    def put(dst: str, src: str, shape: Optional[tuple[int, ...]] = None) -> None:
        t = _take(state, src, what)
        out[dst] = t if shape is None else t.reshape(shape)
        names[dst] = src

    for i in range(n_mlp):
        put(f"mapping.fc{i}.weight", f"style.{i + 1}.weight")
        put(f"mapping.fc{i}.bias", f"style.{i + 1}.bias")
    put("synthesis.b4.const", "input.input", tuple(const.shape[1:]))

    def styled(src: str, dst: str, noise_index: int) -> None:
        weight = _take(state, f"{src}.conv.weight", what)
        put(f"{dst}.weight", f"{src}.conv.weight", tuple(weight.shape[1:]))
        put(f"{dst}.affine.weight", f"{src}.conv.modulation.weight")
        put(f"{dst}.affine.bias", f"{src}.conv.modulation.bias")
        put(f"{dst}.noise_strength", f"{src}.noise.weight", ())
        put(f"{dst}.bias", f"{src}.activate.bias")
        noise = state.get(f"noises.noise_{noise_index}")
        if noise is not None:
            put(f"{dst}.noise_const", f"noises.noise_{noise_index}", tuple(noise.shape[2:]))

    def to_rgb(src: str, dst: str) -> None:
        weight = _take(state, f"{src}.conv.weight", what)
        put(f"{dst}.weight", f"{src}.conv.weight", tuple(weight.shape[1:]))
        put(f"{dst}.affine.weight", f"{src}.conv.modulation.weight")
        put(f"{dst}.affine.bias", f"{src}.conv.modulation.bias")
        put(f"{dst}.bias", f"{src}.bias", (-1,))

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
    return kwargs, out, names, config


def _discriminator(
    state: Mapping[str, torch.Tensor], what: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, str], int]:
    """StyleGAN2-ADA init kwargs and state dict of a rosinality ``Discriminator`` state dict, the rosinality
    name of each key, and the size."""
    num_blocks = 0
    while f"convs.{num_blocks + 1}.conv1.0.weight" in state:
        num_blocks += 1
    size = 4 * 2**num_blocks
    from_rgb = _take(state, "convs.0.0.weight", what)
    out: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}

    def put(dst: str, src: str) -> None:
        out[dst] = _take(state, src, what)
        names[dst] = src

    put(f"b{size}.fromrgb.weight", "convs.0.0.weight")
    put(f"b{size}.fromrgb.bias", "convs.0.1.bias")
    channels = {size: from_rgb.shape[0]}
    for j in range(1, num_blocks + 1):
        res = size // 2 ** (j - 1)
        src, dst = f"convs.{j}", f"b{res}"
        put(f"{dst}.conv0.weight", f"{src}.conv1.0.weight")
        put(f"{dst}.conv0.bias", f"{src}.conv1.1.bias")
        put(f"{dst}.conv1.weight", f"{src}.conv2.1.weight")
        put(f"{dst}.conv1.bias", f"{src}.conv2.2.bias")
        put(f"{dst}.skip.weight", f"{src}.skip.1.weight")
        channels[res // 2] = out[f"{dst}.conv1.weight"].shape[0]
        _check_blur(state, f"{src}.conv2.0.kernel", what)
        _check_blur(state, f"{src}.skip.0.kernel", what)
    put("b4.conv.weight", "final_conv.0.weight")
    put("b4.conv.bias", "final_conv.1.bias")
    for i, name in enumerate(("fc", "out")):
        put(f"b4.{name}.weight", f"final_linear.{i}.weight")
        put(f"b4.{name}.bias", f"final_linear.{i}.bias")
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
    return kwargs, out, names, size


def _complete(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the module's own values for what rosinality does not store: the resampling filters
    (checked to be [1, 3, 3, 1] above), ``w_avg`` (zeros unless given), noise buffers of files without them."""
    own = module.state_dict()
    for key, value in own.items():
        if key not in state and key.endswith(("resample_filter", "w_avg", "noise_const")):
            state[key] = value
    return state


def _is_buffer(key: str) -> bool:
    """Whether a key of a rosinality state dict is a buffer: the noise inputs and the blur kernels."""
    return key.startswith("noises.") or key.endswith(".kernel")


def _optimizer_state(
    saved: Any,
    state: Mapping[str, torch.Tensor],
    names: Mapping[str, str],
    module: torch.nn.Module,
    what: str,
) -> dict[str, Any]:
    """:func:`_renumber` with a malformed state dict (a group or entry of the wrong type) a ValueError."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        raise ValueError(
            f"the checkpoint's {what!r} must be an optimizer state dict, got {type(saved).__name__}"
        )
    # reshape copies a view with zero strides: the per-parameter tensors must be stored.
    entries = [e for e in saved["state"].values() if isinstance(e, dict)]
    check_stored(
        (v for e in entries for v in e.values() if isinstance(v, torch.Tensor)),
        what=f"the checkpoint's {what!r}",
    )
    try:
        return _renumber(saved, state, names, module, what)
    except (TypeError, KeyError, IndexError, AttributeError) as error:
        raise ValueError(
            f"the checkpoint's {what!r} is not a valid optimizer state dict: {error!r}"
        ) from error


def _renumber(
    saved: Any,
    state: Mapping[str, torch.Tensor],
    names: Mapping[str, str],
    module: torch.nn.Module,
    what: str,
) -> dict[str, Any]:
    """rosinality's optimizer state dict (parameters in its ``named_parameters()`` order and shapes) renumbered
    in ``module.parameters()`` order, with each per-parameter tensor reshaped to the parameter's shape.

    rosinality's parameter order is its state dict's order without the buffers (``nn.Module`` saves a
    module's parameters, then its buffers, then its children, as ``named_parameters`` walks them).
    """
    if not isinstance(saved, dict) or "state" not in saved or "param_groups" not in saved:
        raise ValueError(
            f"the checkpoint's {what!r} must be an optimizer state dict, got {type(saved).__name__}"
        )
    theirs = [k for k in state if not _is_buffer(k)]
    index = {name: i for i, name in enumerate(theirs)}
    mine = [name for name, _ in module.named_parameters()]
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    counted = sum(len(g["params"]) for g in saved["param_groups"])
    if counted != len(theirs) or set(mine) - set(names) or len(mine) != len(theirs):
        raise ValueError(
            f"the checkpoint's {what!r} holds {counted} parameters; its network has {len(theirs)} and the "
            f"converted one {len(mine)}"
        )
    old_ids = [pid for g in saved["param_groups"] for pid in g["params"]]  # position -> saved id
    new_state: dict[int, Any] = {}
    new_position: dict[int, int] = {}
    for j, name in enumerate(mine):
        position = index[names[name]]
        new_position[position] = j
        entry = saved["state"].get(old_ids[position])
        if entry is None:
            continue
        numel = math.prod(shapes[name])
        new_state[j] = {
            k: v.reshape(shapes[name])
            if isinstance(v, torch.Tensor) and v.ndim > 0 and v.numel() == numel
            else v
            for k, v in entry.items()
        }
    groups = []
    position = 0
    for group in saved["param_groups"]:
        ids = sorted(new_position[position + i] for i in range(len(group["params"])))
        position += len(group["params"])
        groups.append({**group, "params": ids})
    return {"state": new_state, "param_groups": groups}


def _number(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.reshape(()))
    if isinstance(value, (int, float)):
        return float(value)
    got = (
        f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    )
    raise ValueError(f"the checkpoint's {what!r} must be one number, got {got}")


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

    Raises:
        ValueError: the file's entries are not rosinality's (a network that is not a state dict, a tensor with
            more elements than its storage, shapes that do not match the network they describe, which is
            checked on the meta device before it is built).
        pickle.UnpicklingError: the file holds something ``torch.load(weights_only=True)`` refuses.

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
    optims: dict[str, Optional[dict[str, Any]]] = {"g_optim": None, "d_optim": None}
    latent_avg = data.get("latent_avg")
    for key in ("g", "g_ema"):
        if data.get(key) is None:
            nets[key] = None
            continue
        what = f"the checkpoint's {key!r}"
        if not isinstance(data[key], dict):
            raise ValueError(f"{what} must be a state dict, got {type(data[key]).__name__}")
        check_stored((t for t in data[key].values() if isinstance(t, torch.Tensor)), what=what)
        kwargs, state, names, config = _generator(data[key], what, float(mapping_lr_multiplier))
        if latent_avg is not None:
            state["mapping.w_avg"] = _stored(latent_avg, "the checkpoint's 'latent_avg'").reshape(-1)
        # The config comes from the tensors' shapes; check all that it implies on the meta device (no memory)
        # before building for real.
        shapes = StyleGAN2Generator.from_stylegan2_ada_kwargs(kwargs, device="meta", dtype=dtype)
        check_state(shapes, _complete(shapes, dict(state)), what=what)
        module = StyleGAN2Generator.from_stylegan2_ada_kwargs(kwargs, device=device, dtype=dtype)
        load_into(module, _complete(module, state), what=what)
        nets[key] = to_dtype(module, dtype)
        if key == "g" and data.get("g_optim") is not None:
            optims["g_optim"] = _optimizer_state(data["g_optim"], data[key], names, module, "g_optim")
    if data.get("d") is not None:
        if not isinstance(data["d"], dict):
            raise ValueError(f"the checkpoint's 'd' must be a state dict, got {type(data['d']).__name__}")
        tensors = (t for t in data["d"].values() if isinstance(t, torch.Tensor))
        check_stored(tensors, what="the checkpoint's 'd'")
        kwargs, state, names, size = _discriminator(data["d"], "the checkpoint's 'd'")
        if config and config["size"] != size:
            raise ValueError(f"the checkpoint's 'd' is for size {size}, its generator for {config['size']}")
        config.setdefault("size", size)
        d_shapes = StyleGAN2Discriminator.from_stylegan2_ada_kwargs(kwargs, device="meta", dtype=dtype)
        check_state(d_shapes, _complete(d_shapes, dict(state)), what="the checkpoint's 'd'")
        disc = StyleGAN2Discriminator.from_stylegan2_ada_kwargs(kwargs, device=device, dtype=dtype)
        load_into(disc, _complete(disc, state), what="the checkpoint's 'd'")
        nets["d"] = to_dtype(disc, dtype)
        if data.get("d_optim") is not None:
            optims["d_optim"] = _optimizer_state(data["d_optim"], data["d"], names, disc, "d_optim")
    else:
        nets["d"] = None
    args = data.get("args")
    if args is not None and not isinstance(args, (argparse.Namespace, dict)):
        raise ValueError(f"the checkpoint's 'args' must be a Namespace or a dict, got {type(args).__name__}")
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
        ada_aug_p=_number(data.get("ada_aug_p"), "ada_aug_p"),
        g_optim=optims["g_optim"],
        d_optim=optims["d_optim"],
    )
