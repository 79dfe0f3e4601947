"""The public API follows one naming scheme, torch's: every public signature is enumerated and checked."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from torch import nn

import ganblocks
import ganblocks.functional as F
import ganblocks.metrics as metrics


def _public_classes() -> Iterator[tuple[str, Any]]:
    """Every public class of ``ganblocks`` and of ``ganblocks.metrics`` (as ``metrics.<name>``)."""
    for namespace, prefix in ((ganblocks, ""), (metrics, "metrics.")):
        for name in namespace.__all__:
            obj = getattr(namespace, name)
            if inspect.isclass(obj):
                yield f"{prefix}{name}", obj


def _public_callables() -> Iterator[tuple[str, Callable[..., object]]]:
    """Every public function, every public class's ``__init__`` and ``forward``, and public classmethods."""
    for name in F.__all__:
        obj = getattr(F, name)
        if inspect.isfunction(obj):
            yield f"functional.{name}", obj
    for name in metrics.__all__:
        obj = getattr(metrics, name)
        if inspect.isfunction(obj):
            yield f"metrics.{name}", obj
    for name, obj in _public_classes():
        yield f"{name}.__init__", obj.__init__
        for attr, member in vars(obj).items():
            if attr.startswith("_") and attr != "__call__":
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                yield f"{name}.{attr}", member


PUBLIC = sorted(_public_callables(), key=lambda item: item[0])
# Spellings that the scheme replaces, and the spelling to use instead.
RETIRED = {
    "activation": "act",
    "style_dim": "w_dim",
    "act_alpha": "alpha",
    "factor": "up / down",
    "upsample": "up",
    "downsample": "down",
    "every": "interval",
    "n": "num_*",
}


def _parameters(fn: Callable[..., object]) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]


def test_the_enumeration_sees_the_api() -> None:
    names = {name for name, _ in PUBLIC}
    assert {"functional.bias_act", "MultiScaleDiscriminator.__init__", "R1Penalty.forward"} <= names
    assert len(PUBLIC) > 100


@pytest.mark.parametrize(("name", "fn"), PUBLIC, ids=[name for name, _ in PUBLIC])
def test_no_retired_spelling(name: str, fn: Callable[..., object]) -> None:
    for p in _parameters(fn):
        assert not p.name.startswith("n_"), f"{name}({p.name}=): counts are spelled num_*"
        assert p.name not in RETIRED, f"{name}({p.name}=): spelled {RETIRED[p.name]} in ganblocks"


def _literal_values(hint: object) -> set[object]:
    """The values of a ``Literal`` hint, or of the Literals inside a Union / Optional."""
    if typing.get_origin(hint) is typing.Literal:
        return set(typing.get_args(hint))
    return {v for arg in typing.get_args(hint) for v in _literal_values(arg)}


@pytest.mark.parametrize(("name", "fn"), PUBLIC, ids=[name for name, _ in PUBLIC])
def test_string_choices_are_literals(name: str, fn: Callable[..., object]) -> None:
    hints = typing.get_type_hints(fn)
    for p in _parameters(fn):
        if isinstance(p.default, str):
            assert p.default in _literal_values(hints.get(p.name)), (
                f"{name}({p.name}={p.default!r}): a string choice is typed with a Literal that holds its default"
            )


# Historical averaging penalises parameters, not a batch: it has nothing to reduce over samples.
NO_BATCH = ("functional.historical_averaging_penalty", "HistoricalAveraging.__init__")
LOSSES = [
    (name, fn)
    for name, fn in PUBLIC
    if name not in NO_BATCH
    and name.startswith("functional.")
    and (name.endswith(("_loss", "_penalty")) or name in ("functional.d_loss", "functional.g_loss"))
] + [
    (name, fn)
    for name, fn in PUBLIC
    if name not in NO_BATCH
    and name.endswith(".__init__")
    and name.split(".")[0].endswith(("Loss", "Penalty"))
]


def test_losses_found() -> None:
    assert len(LOSSES) >= 12


@pytest.mark.parametrize(("name", "fn"), LOSSES, ids=[name for name, _ in LOSSES])
def test_every_loss_and_penalty_has_torch_reduction(name: str, fn: Callable[..., object]) -> None:
    params = {p.name: p for p in _parameters(fn)}
    assert "reduction" in params, f"{name} has no reduction="
    p = params["reduction"]
    assert p.kind is p.KEYWORD_ONLY and p.default == "mean"
    hint = typing.get_type_hints(fn)["reduction"]
    assert set(typing.get_args(hint)) == {"mean", "sum", "none"}


MODULES = [cls for _, cls in _public_classes() if issubclass(cls, nn.Module)]


# Options that torch.nn (or the original code) passes by position: Conv2d's stride and padding, an
# augmentation policy, VGG's layer list, a constant's spatial size, pix2pixHD's ImagePool(pool_size).
TORCH_POSITIONAL_OPTIONS = ("stride", "padding", "policy", "layers", "size", "pool_size")


CLASSES = [cls for _, cls in _public_classes()]


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.__name__ for cls in CLASSES])
def test_options_are_keyword_only(cls: type) -> None:
    """Positional arguments are the few torch.nn would take positionally; options after them keyword-only."""
    params = _parameters(cls)
    positional = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 5, f"{cls.__name__}: {[p.name for p in positional]}"
    for p in params:
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty:
            assert p.name in TORCH_POSITIONAL_OPTIONS, (
                f"{cls.__name__}({p.name}=): an option with a default is keyword-only"
            )


# The public modules without ``device=``/``dtype=``: each owns no parameter (buffers at most), as built here.
PARAMETER_FREE: dict[str, Callable[[], nn.Module]] = {
    "AdaptiveAugmentProbability": lambda: ganblocks.AdaptiveAugmentProbability(),
    "AdversarialLoss": lambda: ganblocks.AdversarialLoss("hinge"),
    "AugmentPipe": lambda: ganblocks.AugmentPipe.preset("bgc"),
    "AuxiliaryClassifierLoss": lambda: ganblocks.AuxiliaryClassifierLoss(),
    "ConsistencyRegularization": lambda: ganblocks.ConsistencyRegularization(lambda x: x.flip(3)),
    "DiffAugment": lambda: ganblocks.DiffAugment(),
    "DraganPenalty": lambda: ganblocks.DraganPenalty(),
    "FeatureMatchingLoss": lambda: ganblocks.FeatureMatchingLoss(),
    "FrechetDistance": lambda: metrics.FrechetDistance(nn.Flatten()),
    "GradientPenalty": lambda: ganblocks.GradientPenalty(),
    "HistoricalAveraging": lambda: ganblocks.HistoricalAveraging(nn.Linear(2, 2)),
    "ImagePyramid": lambda: ganblocks.ImagePyramid(2),
    "LatentConsistencyRegularization": lambda: ganblocks.LatentConsistencyRegularization(),
    "LazyRegularizer": lambda: ganblocks.LazyRegularizer(ganblocks.PathLengthPenalty(), interval=4),
    "LeCamRegularization": lambda: ganblocks.LeCamRegularization(),
    "MinibatchStdDev": lambda: ganblocks.MinibatchStdDev(),
    "PathLengthPenalty": lambda: ganblocks.PathLengthPenalty(),
    "PixelNorm": lambda: ganblocks.PixelNorm(),
    "R1Penalty": lambda: ganblocks.R1Penalty(),
    "R2Penalty": lambda: ganblocks.R2Penalty(),
}


@pytest.mark.parametrize("cls", MODULES, ids=[cls.__name__ for cls in MODULES])
def test_modules_with_parameters_take_device_and_dtype(cls: type[nn.Module]) -> None:
    if cls.__name__ in PARAMETER_FREE:
        module = PARAMETER_FREE[cls.__name__]()
        assert isinstance(module, cls)
        assert [n for n, _ in module.named_parameters() if not n.startswith("model.")] == []
        return
    params = {p.name: p for p in _parameters(cls.__init__)}
    for key in ("device", "dtype"):
        assert key in params, f"{cls.__name__} owns parameters and takes no {key}="
        assert params[key].kind is params[key].KEYWORD_ONLY and params[key].default is None


def test_one_public_name_per_thing() -> None:
    modules = set(ganblocks.__all__)
    functions = set(F.__all__)
    assert not modules & functions
    assert not set(metrics.__all__) & (modules | functions)
    for name in F.__all__:
        obj = getattr(F, name)
        assert callable(obj) and not inspect.isclass(obj), f"functional.{name} is not a function"
    assert "kmeans" not in functions and "Activation" not in functions
