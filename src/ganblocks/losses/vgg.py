"""VGG19's convolutional trunk with torchvision's layer indices, and loading of torchvision's checkpoint.

No torchvision at run time: the ``features`` ``nn.Sequential`` below has the same modules at the same
indices as ``torchvision.models.vgg19().features``, so torchvision's state dict
(``features.{i}.weight`` / ``features.{i}.bias``; ``classifier.*`` is ignored) loads into it unchanged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal, Optional, Union

import torch
from torch import nn

IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_FILE_NAME = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# torchvision's configuration "E": channels of each 3x3 conv, "M" a 2x2 max pool.
_CONFIG: tuple[Union[int, str], ...] = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, 256, "M"),
    *(512, 512, 512, 512, "M"),
    *(512, 512, 512, 512, "M"),
)

WeightsSpec = Union[Literal["imagenet"], str, os.PathLike[str], Mapping[str, torch.Tensor], None]


def _layout() -> tuple[dict[str, int], dict[int, tuple[int, int]]]:
    """Layer names -> ``features`` index, and conv index -> (in_channels, out_channels)."""
    names: dict[str, int] = {}
    convs: dict[int, tuple[int, int]] = {}
    index, block, conv_in_block, channels = 0, 1, 1, 3
    for item in _CONFIG:
        if item == "M":
            names[f"pool{block}"] = index
            index += 1
            block, conv_in_block = block + 1, 1
            continue
        assert isinstance(item, int)
        convs[index] = (channels, item)
        names[f"conv{block}_{conv_in_block}"] = index
        names[f"relu{block}_{conv_in_block}"] = index + 1
        index += 2
        conv_in_block += 1
        channels = item
    return names, convs


#: Every named layer of VGG19's ``features`` with its index (``relu1_1`` is 1, ``relu5_1`` is 29).
VGG19_LAYERS, _CONVS = _layout()
#: The layers a :class:`~ganblocks.losses.VGGLoss` may tap: convolutions and ReLUs.
TAPPABLE_LAYERS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if not n.startswith("pool"))
VGG19_NUM_MODULES = len(_CONFIG) + len(_CONVS)  # 37


def vgg19_features(
    num_modules: int = VGG19_NUM_MODULES,
    *,
    device: Optional[torch.device] = None,
    dtype: Optional[torch.dtype] = None,
) -> nn.Sequential:
    """The first ``num_modules`` modules of torchvision's ``vgg19().features`` (randomly initialised).

    Initialisation follows torchvision: Kaiming-normal (fan-out, ReLU) weights, zero biases.

    Example:
        >>> from ganblocks.losses.vgg import vgg19_features, VGG19_LAYERS
        >>> net = vgg19_features(VGG19_LAYERS["relu2_1"] + 1)
        >>> [type(m).__name__ for m in net]
        ['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU']
    """
    if not 1 <= num_modules <= VGG19_NUM_MODULES:
        raise ValueError(f"num_modules must be in [1, {VGG19_NUM_MODULES}], got {num_modules}")
    modules: list[nn.Module] = []
    index = 0
    for item in _CONFIG:
        if item == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            index += 1
            continue
        cin, cout = _CONVS[index]
        conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1, device=device, dtype=dtype)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        assert conv.bias is not None
        nn.init.zeros_(conv.bias)
        # In place, as torchvision: a conv's backward does not need its output.
        modules.extend([conv, nn.ReLU(inplace=True)])
        index += 2
    return nn.Sequential(*modules[:num_modules])


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (cin, cout) in _CONVS.items():
        shapes[f"features.{i}.weight"] = (cout, cin, 3, 3)
        shapes[f"features.{i}.bias"] = (cout,)
    return shapes


def check_vgg19_state_dict(state_dict: object, *, source: str) -> dict[str, torch.Tensor]:
    """The ``features.*`` entries of a torchvision ``vgg19`` state dict, or a ValueError saying what is wrong."""
    hint = "expected torchvision's vgg19 state dict (keys features.{i}.weight/bias, e.g. from vgg19-dcbb9e9d.pth)"
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"VGG19 weights from {source}: {hint}, got a {type(state_dict).__name__}")
    expected = _expected_shapes()
    found = {str(k): v for k, v in state_dict.items() if str(k).startswith("features.")}
    missing = sorted(set(expected) - set(found), key=lambda k: (int(k.split(".")[1]), k))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: expected {expected[k]}, got {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
        for k, v in found.items()
        if k in expected and (not isinstance(v, torch.Tensor) or tuple(v.shape) != expected[k])
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}")
        if wrong:
            parts.append(f"wrong shapes [{'; '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''}]")
        raise ValueError(f"VGG19 weights from {source} do not match VGG19: {', '.join(parts)}; {hint}")
    return {k: v for k, v in found.items()}


def _imagenet_cache_path() -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", IMAGENET_FILE_NAME)


def _load_imagenet(progress: bool) -> Any:
    try:
        # Looked up at call time (not imported by name) so that tests can replace it.
        return torch.hub.load_state_dict_from_url(
            IMAGENET_URL, map_location="cpu", progress=progress, check_hash=True, weights_only=True
        )
    except Exception as err:
        raise RuntimeError(
            f"could not load VGG19 ImageNet weights: looked for {_imagenet_cache_path()} (the torch.hub cache) "
            f"and tried to download {IMAGENET_URL}, which failed with {type(err).__name__}: {err}. "
            f"Offline? Download {IMAGENET_URL} on a connected machine and either copy it to "
            f"{_imagenet_cache_path()} or pass weights='/path/to/{IMAGENET_FILE_NAME}'."
        ) from err


def _load_path(path: str) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VGG19 weights file not found: {path!r} (weights must be 'imagenet', a path to torchvision's vgg19 "
            f"state dict, a state dict, or None). Get the file from {IMAGENET_URL}, or pass weights='imagenet' "
            f"to download it into {_imagenet_cache_path()}."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"VGG19 weights file {path!r} could not be read with torch.load(weights_only=True) "
            f"({type(err).__name__}: {err}); save a state dict: torch.save(model.state_dict(), path)"
        ) from err


def load_vgg19_weights(features: nn.Sequential, weights: WeightsSpec, *, progress: bool = True) -> None:
    """Fill ``features`` (a prefix of :func:`vgg19_features`) from ``weights``, or warn and keep random weights.

    Args:
        features: the module to fill.
        weights: ``"imagenet"`` (torchvision's checkpoint through ``torch.hub``, hash checked: a download
            happens only here and only when the file is not cached), a path to a file in torchvision's
            ``vgg19`` state-dict format (read with ``torch.load(weights_only=True)``), such a state dict,
            or None (keep the random initialisation, with a warning).
        progress: show ``torch.hub``'s download progress bar.
    """
    if weights is None:
        warnings.warn(
            "VGG19 is randomly initialised (weights=None), so the VGG loss is not a perceptual loss; pass "
            f"weights='imagenet' or a path to torchvision's {IMAGENET_FILE_NAME}",
            UserWarning,
            stacklevel=3,
        )
        return
    if isinstance(weights, Mapping):
        source, raw = "the given state dict", weights
    elif isinstance(weights, str) and weights == "imagenet":
        source, raw = IMAGENET_URL, _load_imagenet(progress)
    elif isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        source, raw = repr(path), _load_path(path)
    else:
        raise TypeError(
            f"weights must be 'imagenet', a path, a state dict or None, got {type(weights).__name__}"
        )
    state = check_vgg19_state_dict(raw, source=source)
    n = len(features)
    prefix = "features."
    own = {k[len(prefix) :]: v for k, v in state.items() if int(k.split(".")[1]) < n}
    features.load_state_dict(own, strict=True)
