"""Crafted files that ask the checkpoint loaders for unbounded memory or time, or to alter objects they build:
each is refused with ``pickle.UnpicklingError`` or ``ValueError`` before anything large is allocated. The
sizes here are small (the refusal is what is asserted); the same files with larger numbers are the attacks."""

from __future__ import annotations

import importlib.util
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ganblocks import StyleGAN2Discriminator, StyleGAN2Generator
from ganblocks.checkpoints import load_rosinality_checkpoint, load_stylegan2_ada_pkl

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "write_stylegan2_fixtures.py"


def fixtures() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("write_stylegan2_fixtures_h", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = fixtures()


@pytest.fixture(scope="module")
def nets() -> dict[str, Any]:
    return FX.tiny_networks()  # type: ignore[no-any-return]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The device type of every network the loaders build from kwargs, in order."""
    seen: list[str] = []
    for cls in (StyleGAN2Generator, StyleGAN2Discriminator):
        original: Any = cls.from_stylegan2_ada_kwargs  # bound to cls

        def spy(klass: Any, kwargs: Any, *, device: Any = None, dtype: Any = None, _f: Any = original) -> Any:
            seen.append(torch.device(device or "cpu").type)
            return _f(kwargs, device=device, dtype=dtype)

        monkeypatch.setattr(cls, "from_stylegan2_ada_kwargs", classmethod(spy))
    yield seen


def test_stylegan2_ada_kwargs_are_matched_against_the_tensors_before_building(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # w_dim=100000 in a few hundred bytes asks for ~7e10 parameters; 512 shows the same on a small scale:
    # the only network built from the lying kwargs is on the meta device.
    G, g_kwargs = nets["G"]
    path = tmp_path / "wide.pkl"
    FX.write_stylegan2_ada_pkl(path, {"G": (G, {**g_kwargs, "w_dim": 512})})
    with pytest.raises(
        ValueError,
        match=r"the pickle's 'G': tensor '.*' has shape \(8, 8\) in the file, .* expects \(8, 512\)",
    ):
        load_stylegan2_ada_pkl(path)
    assert builds == ["meta"]
    builds.clear()
    FX.write_stylegan2_ada_pkl(path, {"G": nets["G"], "D": nets["D"]})
    assert load_stylegan2_ada_pkl(path).D is not None
    assert builds == ["meta", "cpu", "meta", "cpu"]


def test_rosinality_config_is_matched_against_the_tensors_before_building(
    tmp_path: Path, nets: dict[str, Any], builds: list[str]
) -> None:
    # style_dim is read from style.1.weight: a stride-0 view of one element claims any width in a few bytes.
    path = tmp_path / "wide.pt"
    g = FX.rosinality_generator_state(nets["G_ema"][0].state_dict())
    g["style.1.weight"] = torch.zeros(1, dtype=g["style.1.weight"].dtype).expand(8, 512)
    torch.save({"g_ema": g}, path)
    with pytest.raises(ValueError, match=r"the checkpoint's 'g_ema': .*mapping\.fc0\.weight"):
        load_rosinality_checkpoint(path)
    assert builds == ["meta"]
