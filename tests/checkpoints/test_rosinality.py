"""load_rosinality_checkpoint on files written by scripts/write_stylegan2_fixtures.py: the key mapping, the
config read from shapes, the args Namespace admitted only for that load, and the networks training further."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import io
import pickle
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import assert_close

from ganblocks import StyleGAN2Discriminator, StyleGAN2Generator
from ganblocks.checkpoints import RosinalityCheckpoint, load_rosinality_checkpoint
from ganblocks.penalties import PathLengthPenalty, R1Penalty

F64 = torch.float64
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "write_stylegan2_fixtures.py"


def fixtures() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("write_stylegan2_fixtures_r", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FX = fixtures()
ARGS = argparse.Namespace(
    size=16, latent=8, n_mlp=2, channel_multiplier=2, r1=10.0, arch="stylegan2", batch=4
)


@pytest.fixture(scope="module")
def nets() -> dict[str, Any]:
    return FX.tiny_networks(seed=1)  # type: ignore[no-any-return]


def _write(path: Path, nets: dict[str, Any], **kwargs: Any) -> Path:
    FX.write_rosinality_checkpoint(path, G=nets["G"][0], D=nets["D"][0], G_ema=nets["G_ema"][0], **kwargs)
    return path


def test_rosinality_keys_and_shapes(nets: dict[str, Any]) -> None:
    # The fixture writer's names and shapes are rosinality's model.py ones (read from its source).
    g = FX.rosinality_generator_state(nets["G"][0].state_dict())
    assert (
        g["style.1.weight"].shape == (8, 8) and "style.3.weight" not in g
    )  # n_mlp = 2, style.0 is PixelNorm
    assert g["input.input"].shape == (1, 8, 4, 4)
    assert g["conv1.conv.weight"].shape == (1, 8, 8, 3, 3) and g["conv1.noise.weight"].shape == (1,)
    assert g["to_rgb1.bias"].shape == (1, 3, 1, 1) and g["to_rgbs.1.conv.weight"].shape == (1, 3, 4, 1, 1)
    assert [g[f"noises.noise_{i}"].shape[-1] for i in range(5)] == [4, 8, 8, 16, 16]
    d = FX.rosinality_discriminator_state(nets["D"][0].state_dict())
    assert d["convs.0.0.weight"].shape == (4, 3, 1, 1) and d["convs.1.skip.1.weight"].shape == (8, 4, 1, 1)
    assert d["final_conv.0.weight"].shape == (8, 9, 3, 3) and d["final_linear.1.weight"].shape == (1, 8)


def test_networks_come_back_with_the_same_outputs(tmp_path: Path, nets: dict[str, Any]) -> None:
    path = _write(tmp_path / "ckpt.pt", nets, args=ARGS, ada_aug_p=0.125)
    ckpt = load_rosinality_checkpoint(path, dtype=F64)
    assert isinstance(ckpt, RosinalityCheckpoint)
    assert isinstance(ckpt.G, StyleGAN2Generator) and isinstance(ckpt.G_ema, StyleGAN2Generator)
    assert isinstance(ckpt.D, StyleGAN2Discriminator)
    assert ckpt.config == {"size": 16, "style_dim": 8, "n_mlp": 2, "channel_multiplier": None}
    assert ckpt.args == vars(ARGS) and ckpt.ada_aug_p == 0.125
    z = torch.randn(3, 8, dtype=F64)
    for key in ("G", "G_ema"):
        source, loaded = nets[key][0].eval(), getattr(ckpt, key).eval()
        for name, t in source.state_dict().items():
            if not name.endswith("w_avg"):  # rosinality keeps no w_avg
                assert torch.equal(loaded.state_dict()[name], t), name
        # rosinality's noises.noise_{i} became noise_const: noise_mode="const" is randomize_noise=False
        assert_close(loaded(z, None, noise_mode="const"), source(z, None, noise_mode="const"))
        torch.manual_seed(0)
        expected = source(z, None)
        torch.manual_seed(0)
        assert_close(loaded(z, None), expected)
    x = torch.randn(4, 3, 16, 16, dtype=F64)
    assert_close(ckpt.D(x, None), nets["D"][0](x, None))
    assert ckpt.G_ema.mapping.w_avg is not None and torch.equal(
        ckpt.G_ema.mapping.w_avg, torch.zeros(8, dtype=F64)
    )


def test_optimizer_states_resume_in_ganblocks_order(tmp_path: Path, nets: dict[str, Any]) -> None:
    # The fixture's Adam took one step on sum(p**2) / 2 with betas (0, 0.99), in rosinality's parameter order
    # and shapes: each parameter's exp_avg is its own value and exp_avg_sq 0.01 of its square. Renumbered
    # and reshaped, that must hold for every parameter of the converted networks.
    ckpt = load_rosinality_checkpoint(_write(tmp_path / "ckpt.pt", nets, args=ARGS), dtype=F64)
    for net, saved in ((ckpt.G, ckpt.g_optim), (ckpt.D, ckpt.d_optim)):
        assert net is not None and saved is not None
        opt = torch.optim.Adam(net.parameters(), lr=0.002, betas=(0.0, 0.99))
        opt.load_state_dict(saved)
        for name, p in net.named_parameters():
            state = opt.state[p]
            assert float(state["step"]) == 1.0, name
            assert state["exp_avg"].shape == p.shape and torch.equal(state["exp_avg"], p.detach()), name
            assert_close(state["exp_avg_sq"], 0.01 * p.detach().square())
        opt.step()  # and it steps


def test_a_converted_file_without_args(tmp_path: Path, nets: dict[str, Any]) -> None:
    # convert_weight.py's output: g_ema and latent_avg (and d with --disc), no args.
    latent_avg = torch.randn(8, dtype=F64)
    path = tmp_path / "converted.pt"
    FX.write_rosinality_checkpoint(path, G=None, D=None, G_ema=nets["G_ema"][0], latent_avg=latent_avg)
    ckpt = load_rosinality_checkpoint(path)
    assert ckpt.G is None and ckpt.D is None and ckpt.args is None and ckpt.ada_aug_p is None
    assert ckpt.config["size"] == 16 and ckpt.config["n_mlp"] == 2 and ckpt.config["style_dim"] == 8
    G = ckpt.G_ema
    assert G is not None and next(G.parameters()).dtype == torch.float32
    assert G.mapping.w_avg is not None and torch.equal(G.mapping.w_avg, latent_avg.float())
    z = torch.randn(2, 8)
    expected = copy.deepcopy(nets["G_ema"][0]).float().eval()(z, None, noise_mode="const")
    assert_close(G.eval()(z, None, noise_mode="const"), expected)


def test_channel_multiplier_is_read_from_rosinality_s_table() -> None:
    from ganblocks.checkpoints.rosinality import _channel_layout, _channel_multiplier

    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}  # channel_multiplier=2, size 256
    assert _channel_multiplier(table) == 2 and _channel_layout(table, "d") == (32768, 512)
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128}  # channel_multiplier=1
    assert _channel_multiplier(table) == 1 and _channel_layout(table, "d") == (16384, 512)
    with pytest.raises(ValueError, match=r"do not follow min\(channel_base // resolution, channel_max\)"):
        _channel_layout({4: 8, 8: 16}, "the checkpoint's 'g'")


def test_loaded_networks_train_further(tmp_path: Path, nets: dict[str, Any]) -> None:
    ckpt = load_rosinality_checkpoint(_write(tmp_path / "ckpt.pt", nets, args=ARGS), dtype=F64)
    G, D = ckpt.G, ckpt.D
    assert G is not None and D is not None
    real = torch.randn(4, 3, 16, 16, dtype=F64).requires_grad_(True)
    R1Penalty(gamma=10.0)(D, real).backward()
    PathLengthPenalty()(G.synthesis, G.mapping(torch.randn(4, 8, dtype=F64), None)).backward()
    for net in (G, D):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        assert sum(bool(p.grad.abs().sum() > 0) for p in net.parameters() if p.grad is not None) > 10


def test_the_namespace_is_admitted_only_during_the_load(tmp_path: Path, nets: dict[str, Any]) -> None:
    path = _write(tmp_path / "ckpt.pt", nets, args=ARGS)
    with pytest.raises(pickle.UnpicklingError, match="Namespace"):
        torch.load(path, weights_only=True)  # torch's own weights-only load refuses it
    load_rosinality_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match="Namespace"):
        torch.load(path, weights_only=True)  # and still does after ours
    buffer = io.BytesIO()
    torch.save({"g_ema": {}, "args": argparse.Namespace(hook=print)}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="print"):  # a Namespace's values are still checked
        load_rosinality_checkpoint(buffer)


def test_errors(tmp_path: Path, nets: dict[str, Any]) -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_rosinality_checkpoint(tmp_path / "missing.pt")
    buffer = io.BytesIO()
    torch.save({"state_dict": {}}, buffer)
    buffer.seek(0)
    with pytest.raises(ValueError, match=r"a dict with 'g', 'd' or 'g_ema', got \['state_dict'\]"):
        load_rosinality_checkpoint(buffer)
    state = FX.rosinality_generator_state(nets["G"][0].state_dict())
    del state["conv1.activate.bias"]
    buffer = io.BytesIO()
    torch.save({"g_ema": state}, buffer)
    buffer.seek(0)
    with pytest.raises(
        ValueError, match=r"the checkpoint's 'g_ema': the state dict has no 'conv1\.activate\.bias'"
    ):
        load_rosinality_checkpoint(buffer)
    state = FX.rosinality_generator_state(nets["G"][0].state_dict())
    state["convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    buffer = io.BytesIO()
    torch.save({"g": state}, buffer)
    buffer.seek(0)
    with pytest.raises(
        ValueError, match=r"'convs\.0\.conv\.blur\.kernel' is not the blur kernel \[1, 3, 3, 1\]"
    ):
        load_rosinality_checkpoint(buffer)
    path = _write(tmp_path / "ckpt.pt", nets, args=argparse.Namespace(size=32, latent=8, n_mlp=2))
    with pytest.raises(ValueError, match="args say size=32, its tensors size=16"):
        load_rosinality_checkpoint(path)
    with pytest.raises(ValueError, match="mapping_lr_multiplier must be a number > 0, got 0"):
        load_rosinality_checkpoint(path, mapping_lr_multiplier=0)
