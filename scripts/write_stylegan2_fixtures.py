"""Write StyleGAN2-ADA ``.pkl`` and rosinality ``.pt`` files from ganblocks networks, for the loaders' tests.

Neither project's code is needed. The ``.pkl`` has the structure and the globals of a StyleGAN2-ADA network
snapshot (``training_loop.py``: ``pickle.dump(dict(training_set_kwargs=..., G=..., D=..., G_ema=...,
augment_pipe=...))``): every network and layer is a ``torch_utils.persistence`` object, pickled as the call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with ``meta = dict(type='class', version=6,
module_src=..., class_name=..., state=<the module's __dict__>)``, the nested init kwargs are
``dnnlib.util.EasyDict`` objects and the layers' gains numpy scalars. Small stand-ins registered under those
module names while pickling produce exactly those references. The ``.pt`` is the dict rosinality's
``train.py`` saves, with rosinality's key names and shapes.

Usage::

    python scripts/write_stylegan2_fixtures.py OUT_DIR     # writes OUT_DIR/stylegan2-ada.pkl and rosinality.pt
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import pickle
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

# A source string standing for the module StyleGAN2-ADA records; loading must never execute it.
DEFAULT_MODULE_SRC = "raise RuntimeError('the recorded module source was executed')\n"


def _reconstruct_persistent_obj(meta: Any) -> Any:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: only its name is pickled."""
    raise RuntimeError("fixture stand-in: never called")


class EasyDict(dict):  # type: ignore[type-arg]
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict subclass)."""


_STAND_INS = {
    "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
    "dnnlib.util": {"EasyDict": EasyDict},
}


@contextlib.contextmanager
def _stand_in_modules() -> Iterator[None]:
    """Register the stand-ins under StyleGAN2-ADA's module names while pickling, then remove them."""
    added: list[str] = []
    try:
        for dotted, members in _STAND_INS.items():
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in sys.modules:
                    raise RuntimeError(
                        f"module {name!r} is already imported: write fixtures in a clean process"
                    )
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
            for attr, obj in members.items():
                obj.__module__ = dotted
                obj.__qualname__ = attr
                setattr(sys.modules[dotted], attr, obj)
            for i in range(1, len(parts)):
                setattr(sys.modules[".".join(parts[:i])], parts[i], sys.modules[".".join(parts[: i + 1])])
        yield
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


def _gain(value: float) -> Any:
    """A layer's weight gain as StyleGAN2-ADA stores it (``lr_multiplier / np.sqrt(in_features)``: numpy)."""
    try:
        import numpy as np
    except ImportError:
        return float(value)
    return np.float64(value)


class PersistentStandIn:
    """One StyleGAN2-ADA persistent object: its class name and its ``nn.Module``-like ``__dict__``."""

    def __init__(self, class_name: str, init_kwargs: Mapping[str, Any], module_src: str) -> None:
        self.class_name = class_name
        self.module_src = module_src
        hooks = (
            "_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
            "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
            "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
            "_load_state_dict_post_hooks",
        )  # fmt: skip
        self.state: dict[str, Any] = {
            "training": False,
            "_parameters": collections.OrderedDict(),
            "_buffers": collections.OrderedDict(),
            "_non_persistent_buffers_set": set(),
            **{h: collections.OrderedDict() for h in hooks},
            "_is_full_backward_hook": None,
            "_modules": collections.OrderedDict(),
            "_init_args": (),
            "_init_kwargs": dict(init_kwargs),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        meta = dict(
            type="class", version=6, module_src=self.module_src, class_name=self.class_name, state=self.state
        )
        return (_reconstruct_persistent_obj, (meta,))


def _easy(value: Any) -> Any:
    """Nested dicts as EasyDicts (StyleGAN2-ADA's ``mapping_kwargs``, ``synthesis_kwargs``, ...)."""
    if isinstance(value, Mapping):
        return EasyDict({k: _easy(v) for k, v in value.items()})
    return value


def _class_name(path: list[str], kind: str) -> str:
    """StyleGAN2-ADA's class for the submodule at ``path`` of a ``Generator`` / ``Discriminator``."""
    name = path[-1]
    if name == "mapping":
        return "MappingNetwork"
    if name == "synthesis":
        return "SynthesisNetwork"
    if name.startswith("fc") or name in ("affine", "embed", "out"):
        return "FullyConnectedLayer"
    if name.startswith("b") and name[1:].isdigit():
        if kind == "Generator":
            return "SynthesisBlock"
        return "DiscriminatorEpilogue" if name == "b4" else "DiscriminatorBlock"
    if name == "torgb":
        return "ToRGBLayer"
    if kind == "Generator" and name in ("conv0", "conv1"):
        return "SynthesisLayer"
    return "Conv2dLayer"


def persistent_tree(
    module: nn.Module,
    class_name: str,
    init_kwargs: Mapping[str, Any],
    *,
    module_src: str = DEFAULT_MODULE_SRC,
) -> PersistentStandIn:
    """The persistent-object tree of ``module``, whose state dict has StyleGAN2-ADA's keys."""
    root = PersistentStandIn(class_name, _easy(init_kwargs), module_src)
    params = dict(module.named_parameters())
    for key, value in module.state_dict().items():
        *parents, leaf = key.split(".")
        node = root
        for depth, part in enumerate(parents):
            children = node.state["_modules"]
            if part not in children:
                children[part] = PersistentStandIn(
                    _class_name(parents[: depth + 1], class_name), {}, module_src
                )
            node = children[part]
        tensor = value.detach().clone().cpu()
        if key in params:
            node.state["_parameters"][leaf] = nn.Parameter(tensor, requires_grad=False)
            if leaf == "weight":
                node.state["weight_gain"] = _gain(1.0 / max(tensor[0].numel(), 1) ** 0.5)
        else:
            node.state["_buffers"][leaf] = tensor
    return root


def write_stylegan2_ada_pkl(
    path: Path,
    networks: Mapping[str, tuple[nn.Module, Mapping[str, Any]]],
    *,
    augment_kwargs: Optional[Mapping[str, Any]] = None,
    augment_p: float = 0.0,
    module_src: str = DEFAULT_MODULE_SRC,
    extra: Optional[Mapping[str, Any]] = None,
    protocol: int = 4,
) -> None:
    """Write a StyleGAN2-ADA network snapshot: ``networks`` maps ``"G"``, ``"D"``, ``"G_ema"`` to (module,
    StyleGAN2-ADA init kwargs); ``extra`` adds entries to the pickled dict as they are. ``protocol``: the pickle
    protocol (4 is Python 3.8+'s default; snapshots written by Python 3.7 have 3)."""
    classes = {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}
    data: dict[str, Any] = {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset"}}
    for key, (module, kwargs) in networks.items():
        data[key] = persistent_tree(module, classes[key], kwargs, module_src=module_src)
    if augment_kwargs is not None:
        pipe = PersistentStandIn("AugmentPipe", dict(augment_kwargs), module_src)
        pipe.state["_buffers"]["p"] = torch.tensor(augment_p)
        pipe.state["_buffers"]["Hz_geom"] = torch.ones(12, 12) / 144
        pipe.state["_buffers"]["Hz_fbank"] = torch.eye(4, 11)
        data["augment_pipe"] = pipe
    data.update(extra or {})
    with _stand_in_modules(), open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


def _blur(up: bool) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(k, k) / k.sum() ** 2
    return kernel * 4 if up else kernel


def rosinality_generator_state(ada: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """rosinality's ``Generator`` state dict for StyleGAN2-ADA generator tensors (``skip``, ``c_dim=0``), in
    rosinality's order (``nn.Module`` order: a module's parameters, its buffers, then its children, with the
    children ``style``, ``input``, ``conv1``, ``to_rgb1``, ``convs``, ``upsamples``, ``to_rgbs``, ``noises``)."""
    out: dict[str, torch.Tensor] = {}
    i = 0
    while f"mapping.fc{i}.weight" in ada:
        out[f"style.{i + 1}.weight"] = ada[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = ada[f"mapping.fc{i}.bias"]
        i += 1
    out["input.input"] = ada["synthesis.b4.const"].unsqueeze(0)
    resolutions = sorted(int(k.split(".")[1][1:]) for k in ada if k.endswith(".torgb.weight"))
    noises: list[torch.Tensor] = []

    def styled(
        src: str, dst: str, up: bool
    ) -> None:  # StyledConv: conv (weight, blur, modulation), noise, activate
        out[f"{dst}.conv.weight"] = ada[f"{src}.weight"].unsqueeze(0)
        if up:
            out[f"{dst}.conv.blur.kernel"] = _blur(up=True)
        out[f"{dst}.conv.modulation.weight"] = ada[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = ada[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = ada[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = ada[f"{src}.bias"]
        noises.append(ada[f"{src}.noise_const"].reshape(1, 1, *ada[f"{src}.noise_const"].shape))

    def to_rgb(src: str, dst: str, up: bool) -> None:  # ToRGB: its bias, then upsample, conv
        out[f"{dst}.bias"] = ada[f"{src}.bias"].reshape(1, -1, 1, 1)
        if up:
            out[f"{dst}.upsample.kernel"] = _blur(up=True)
        out[f"{dst}.conv.weight"] = ada[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = ada[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = ada[f"{src}.affine.bias"]

    styled("synthesis.b4.conv1", "conv1", up=False)
    to_rgb("synthesis.b4.torgb", "to_rgb1", up=False)
    upper = [r for r in resolutions if r > 4]
    for k, res in enumerate(upper):
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}", up=True)
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", up=False)
    for k, res in enumerate(upper):
        to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}", up=True)
    for n, noise in enumerate(noises):
        out[f"noises.noise_{n}"] = noise
    return out


def rosinality_optimizer_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """An Adam state dict over the parameters of a rosinality state dict (its order and shapes) after one step
    on ``sum(p**2) / 2`` with ``betas=(0, 0.99)``: each parameter's ``exp_avg`` is its own value."""
    params = [
        nn.Parameter(v.detach().clone())
        for k, v in state.items()
        if not (k.startswith("noises.") or k.endswith(".kernel"))
    ]
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))
    sum(0.5 * p.square().sum() for p in params).backward()  # type: ignore[union-attr]
    opt.step()
    return opt.state_dict()


def rosinality_discriminator_state(ada: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """rosinality's ``Discriminator`` state dict for StyleGAN2-ADA discriminator tensors (``resnet``)."""
    resolutions = sorted((int(k.split(".")[0][1:]) for k in ada if k.endswith(".conv0.weight")), reverse=True)
    top = resolutions[0]
    out = {"convs.0.0.weight": ada[f"b{top}.fromrgb.weight"], "convs.0.1.bias": ada[f"b{top}.fromrgb.bias"]}
    for j, res in enumerate(resolutions, start=1):
        out[f"convs.{j}.conv1.0.weight"] = ada[f"b{res}.conv0.weight"]
        out[f"convs.{j}.conv1.1.bias"] = ada[f"b{res}.conv0.bias"]
        out[f"convs.{j}.conv2.0.kernel"] = _blur(up=False)
        out[f"convs.{j}.conv2.1.weight"] = ada[f"b{res}.conv1.weight"]
        out[f"convs.{j}.conv2.2.bias"] = ada[f"b{res}.conv1.bias"]
        out[f"convs.{j}.skip.0.kernel"] = _blur(up=False)
        out[f"convs.{j}.skip.1.weight"] = ada[f"b{res}.skip.weight"]
    out["final_conv.0.weight"] = ada["b4.conv.weight"]
    out["final_conv.1.bias"] = ada["b4.conv.bias"]
    for i, name in enumerate(("fc", "out")):
        out[f"final_linear.{i}.weight"] = ada[f"b4.{name}.weight"]
        out[f"final_linear.{i}.bias"] = ada[f"b4.{name}.bias"]
    return out


def write_rosinality_checkpoint(
    path: Path,
    *,
    G: Optional[nn.Module],
    D: Optional[nn.Module],
    G_ema: Optional[nn.Module],
    args: Optional[argparse.Namespace] = None,
    ada_aug_p: float = 0.0,
    latent_avg: Optional[torch.Tensor] = None,
) -> None:
    """Write the dict rosinality's ``train.py`` saves (``g``, ``d``, ``g_ema``, ``g_optim``, ``d_optim``,
    ``args``, ``ada_aug_p``); entries left None are left out, as ``convert_weight.py``'s files do."""

    def state(module: nn.Module, convert: Any) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone().cpu() for k, v in convert(module.state_dict()).items()}

    data: dict[str, Any] = {}
    if G is not None:
        data["g"] = state(G, rosinality_generator_state)
        data["g_optim"] = rosinality_optimizer_state(data["g"])
    if D is not None:
        data["d"] = state(D, rosinality_discriminator_state)
        data["d_optim"] = rosinality_optimizer_state(data["d"])
    if G_ema is not None:
        data["g_ema"] = state(G_ema, rosinality_generator_state)
    if args is not None:
        data["args"] = args
        data["ada_aug_p"] = ada_aug_p
    if latent_avg is not None:
        data["latent_avg"] = latent_avg
    torch.save(data, path)


def tiny_networks(*, dtype: torch.dtype = torch.float64, seed: int = 0) -> dict[str, Any]:
    """A small rosinality-compatible G, D and G_ema (16×16, 8-dim latents) with non-trivial weights, and
    their StyleGAN2-ADA init kwargs."""
    from ganblocks import StyleGAN2Discriminator, StyleGAN2Generator

    g_kwargs = {
        "z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 64, "channel_max": 8, "architecture": "skip"},
    }  # fmt: skip
    d_kwargs = {
        "c_dim": 0, "img_resolution": 16, "img_channels": 3, "architecture": "resnet",
        "channel_base": 64, "channel_max": 8,
    }  # fmt: skip
    torch.manual_seed(seed)
    nets: dict[str, Any] = {}
    for key, cls, kwargs in (
        ("G", StyleGAN2Generator, g_kwargs),
        ("D", StyleGAN2Discriminator, d_kwargs),
        ("G_ema", StyleGAN2Generator, g_kwargs),
    ):
        module = cls.from_stylegan2_ada_kwargs(kwargs, dtype=dtype)
        with torch.no_grad():  # biases, noise strengths and w_avg off their zero init, so the test sees them
            for name, t in module.state_dict().items():
                if name.endswith(("bias", "noise_strength", "w_avg")):
                    t.copy_(torch.randn_like(t) * 0.3 + (1.0 if name.endswith("affine.bias") else 0.0))
        nets[key] = (module, kwargs)
    return nets


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    out = parser.parse_args(argv).out_dir
    out.mkdir(parents=True, exist_ok=True)
    nets = tiny_networks()
    write_stylegan2_ada_pkl(out / "stylegan2-ada.pkl", nets, augment_kwargs={"xflip": 1, "rotate90": 1})
    args = argparse.Namespace(size=16, latent=8, n_mlp=2, channel_multiplier=2, r1=10.0, arch="stylegan2")
    write_rosinality_checkpoint(
        out / "rosinality.pt", G=nets["G"][0], D=nets["D"][0], G_ema=nets["G_ema"][0], args=args
    )
    print(f"wrote {out / 'stylegan2-ada.pkl'} and {out / 'rosinality.pt'}")


if __name__ == "__main__":
    main()
