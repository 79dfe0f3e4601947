"""VGG19's convolutional trunk with torchvision's layer indices, and loading of torchvision's checkpoint.

No torchvision at run time: the ``features`` ``nn.Sequential`` below has the same modules at the same
indices as ``torchvision.models.vgg19().features``, so torchvision's state dict
(``features.{i}.weight`` / ``features.{i}.bias``; ``classifier.*`` is ignored) loads into it unchanged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal, Optional, TypeAlias, Union

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

WeightsSpec: TypeAlias = Union[Literal["imagenet"], str, os.PathLike[str], Mapping[str, torch.Tensor], None]


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


_LAYERS, _CONVS = _layout()
VGG19_LAYERS: dict[str, int] = _LAYERS
"""Every named layer of VGG19's ``features`` with its index in torchvision's ``vgg19().features``.

``conv{b}_{i}`` and ``relu{b}_{i}`` for block ``b`` (1–5) and conv ``i`` in the block, and ``pool{b}``:
``conv1_1`` is 0, ``relu1_1`` 1, ``relu2_1`` 6, ``relu3_1`` 11, ``relu4_1`` 20, ``relu5_1`` 29 and
``pool5`` 36. :class:`~ganblocks.losses.VGGLoss` taps layers by these names.
"""
#: The layers a :class:`~ganblocks.losses.VGGLoss` may tap: convolutions and ReLUs.
TAPPABLE_LAYERS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if not n.startswith("pool"))
VGG19_NUM_MODULES = len(_CONFIG) + len(_CONVS)  # 37


def vgg19_features(
    num_modules: int = VGG19_NUM_MODULES,
    *,
    device: Optional[Union[torch.device, str]] = None,
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
    return check_features_state_dict(state_dict, _expected_shapes(), net="VGG19", source=source, hint=hint)


def check_features_state_dict(
    state_dict: object, expected: Mapping[str, tuple[int, ...]], *, net: str, source: str, hint: str
) -> dict[str, torch.Tensor]:
    """The ``features.*`` entries of a torchvision state dict with exactly the ``expected`` keys and shapes.

    Other top-level entries (``classifier.*``) are ignored; anything wrong under ``features.`` raises a
    ValueError listing the missing, unexpected and mis-shaped keys, followed by ``hint``.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{net} weights from {source}: {hint}, got a {type(state_dict).__name__}")
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
        raise ValueError(f"{net} weights from {source} do not match {net}: {', '.join(parts)}; {hint}")
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
    return read_weights_file(
        path,
        missing=(
            f"VGG19 weights file not found: {path!r} (weights must be 'imagenet', a path to torchvision's vgg19 "
            f"state dict, a state dict, or None). Get the file from {IMAGENET_URL}, or pass weights='imagenet' "
            f"to download it into {_imagenet_cache_path()}."
        ),
        what="VGG19 weights file",
    )


def read_weights_file(path: str, *, missing: str, what: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, which never runs code from the file.

    A missing file raises FileNotFoundError with the message ``missing`` (which says where to get it); a
    file that ``weights_only`` loading rejects raises a ValueError naming ``what`` and the path.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(missing)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{what} {path!r} could not be read with torch.load(weights_only=True) "
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


# ------------------------------------------------------------------------------------------------------
# Input and target as one batch, differentiated in the input half only.

# One step of the trunk: ("conv", param index of weight, of bias or -1, stride, padding),
# ("relu",) or ("pool", kernel, stride).
_Step = tuple[Any, ...]


def trunk_plan(features: nn.Sequential) -> Optional[tuple[tuple[_Step, ...], list[torch.Tensor]]]:
    """The steps of ``features`` and their parameters, or None when :class:`_InputHalfTrunk` cannot run it.

    It runs VGG's own modules only (``Conv2d`` without groups or dilation, ``ReLU``, ``MaxPool2d`` without
    padding) with frozen parameters; anything else (a replaced module, an unfrozen layer) takes the
    ordinary autograd path.
    """
    steps: list[_Step] = []
    params: list[torch.Tensor] = []
    for m in features:
        if type(m) is nn.Conv2d:
            if (
                m.groups != 1
                or m.dilation != (1, 1)
                or m.padding_mode != "zeros"
                or isinstance(m.padding, str)
            ):
                return None
            if m.weight.requires_grad or (m.bias is not None and m.bias.requires_grad):
                return None
            weight = len(params)
            params.append(m.weight)
            bias = -1
            if m.bias is not None:
                bias = len(params)
                params.append(m.bias)
            steps.append(("conv", weight, bias, m.stride, m.padding))
        elif type(m) is nn.ReLU:
            steps.append(("relu",))
        elif type(m) is nn.MaxPool2d:
            k, s = m.kernel_size, m.stride
            if not (isinstance(k, int) and isinstance(s, int)):
                return None
            if m.padding != 0 or m.dilation != 1 or m.ceil_mode or m.return_indices:
                return None
            steps.append(("pool", k, s))
        else:
            return None
    return tuple(steps), params


class _InputHalfTrunk(torch.autograd.Function):
    """VGG's trunk on ``[input; target]`` as one batch, with a backward over the input half only.

    The forward runs every convolution once on both halves (one larger kernel per layer); autograd would
    then also run the input-gradient convolutions over the target half, whose features are compared
    detached and so get no gradient. Here the backward is written out: through each convolution the
    gradient of its input (the weights are frozen, so nothing else is needed), each ReLU its mask, each
    max pool its indices, all for the input half, and saved for that half only (boolean masks instead of
    the ReLU outputs). Every step of the backward is linear in the incoming gradient and built from
    differentiable PyTorch ops, so a double backward works (the network is piecewise linear in the input:
    its second derivative is zero almost everywhere, as autograd's).

    Outputs: the tapped activations of both halves, ``(2N, ...)`` each, in the order of ``taps``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x_in: torch.Tensor,
        x_target: torch.Tensor,
        steps: tuple[_Step, ...],
        taps: tuple[int, ...],
        *params: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        n = x_in.shape[0]
        tap_set = set(taps)
        h = torch.cat([x_in, x_target])
        found: dict[int, torch.Tensor] = {}
        records: list[tuple[Any, ...]] = []
        saved: list[torch.Tensor] = []
        last = max(taps)
        for i, step in enumerate(steps[: last + 1]):
            kind = step[0]
            if kind == "conv":
                _, wi, bi, stride, padding = step
                in_size = h.shape[-2:]
                h = torch.nn.functional.conv2d(
                    h, params[wi], params[bi] if bi >= 0 else None, stride, padding
                )
                # conv_transpose2d maps the output size back to the input size up to this remainder.
                kh, kw = params[wi].shape[-2:]
                extra = tuple(
                    size - ((out - 1) * st + k - 2 * p)
                    for size, out, st, k, p in zip(in_size, h.shape[-2:], stride, (kh, kw), padding)
                )
                records.append(("conv", wi, h.dtype, stride, padding, extra))
            elif kind == "relu":
                # A tapped conv output must survive the ReLU that follows it.
                h = torch.relu(h) if (i - 1) in tap_set else h.relu_()
                # One byte per element (bool as uint8, which multiplies a gradient faster than bool).
                saved.append((h[:n] > 0).view(torch.uint8))
                records.append(("relu", len(saved) - 1))
            else:
                _, k, s = step
                in_shape = (n, *h.shape[1:])
                h, idx = torch.nn.functional.max_pool2d(h, k, s, return_indices=True)
                saved.append(idx[:n].clone())
                records.append(("pool", len(saved) - 1, k, s, in_shape))
            if i in tap_set:
                found[i] = h
        ctx.save_for_backward(*saved, *params)
        ctx.records = records
        ctx.num_saved = len(saved)
        ctx.n = n
        ctx.taps = taps
        ctx.in_dtype = x_in.dtype
        ctx.set_materialize_grads(False)
        return tuple(found[i] for i in taps)

    @staticmethod
    def backward(ctx: Any, *grads: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
        saved = ctx.saved_tensors
        masks, params = saved[: ctx.num_saved], saved[ctx.num_saved :]  # ReLU masks and pool indices
        n = ctx.n
        incoming: dict[int, list[torch.Tensor]] = {}
        for i, g_tap in zip(ctx.taps, grads):
            if g_tap is not None:
                incoming.setdefault(i, []).append(g_tap[:n])
        g: Optional[torch.Tensor] = None
        for i in range(len(ctx.records) - 1, -1, -1):
            for g_tap in incoming.get(i, ()):
                g = g_tap if g is None else g + g_tap
            if g is None:
                continue
            rec = ctx.records[i]
            if rec[0] == "conv":
                _, wi, dtype, stride, padding, extra = rec
                g = torch.nn.functional.conv_transpose2d(
                    g.to(dtype), params[wi].to(dtype), None, stride, padding, extra
                )
            elif rec[0] == "relu":
                g = g * masks[rec[1]]
            else:
                # Max pooling's own backward; its input only gives the shape, so a broadcast stand-in does.
                _, j, k, s, in_shape = rec
                g = torch.ops.aten.max_pool2d_with_indices_backward(
                    g, g.new_empty(()).expand(in_shape), [k, k], [s, s], [0, 0], [1, 1], False, masks[j]
                )
        g_in = None if g is None else g.to(ctx.in_dtype)
        return (g_in, None, None, None, *([None] * len(params)))


def features_input_half(
    plan: tuple[tuple[_Step, ...], list[torch.Tensor]],
    x_in: torch.Tensor,
    x_target: torch.Tensor,
    taps: tuple[int, ...],
) -> tuple[torch.Tensor, ...]:
    """The activations at ``taps`` of ``[x_in; x_target]``; gradients reach ``x_in`` only."""
    steps, params = plan
    out: tuple[torch.Tensor, ...] = _InputHalfTrunk.apply(  # type: ignore[no-untyped-call]
        x_in, x_target.detach(), steps, taps, *params
    )
    return out
