"""ModelEMA: StyleGAN2-ADA's beta and recurrence written out, buffers, wrappers (DDP, compile), state, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, cast

import pytest
import torch
import torch.distributed as dist
from helpers import assert_close
from torch import nn

from ganblocks.training import ModelEMA, ema_beta, unwrap_model


def stylegan_beta(batch: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """``training_loop.py`` of stylegan2-ada-pytorch, verbatim in its arithmetic."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return float(0.5 ** (batch / max(ema_nimg, 1e-8)))


@pytest.mark.parametrize(
    ("batch", "seen", "kimg", "rampup"),
    [(32, 0, 10.0, 0.05), (32, 64_000, 10.0, 0.05), (64, 10**6, 10.0, 0.05), (8, 100, 2.5, None)],
)
def test_beta_matches_stylegan(batch: int, seen: int, kimg: float, rampup: float | None) -> None:
    assert ema_beta(batch, seen, half_life_kimg=kimg, rampup=rampup) == pytest.approx(
        stylegan_beta(batch, seen, kimg, rampup), rel=1e-12, abs=0
    )
    # Numbers by hand: ramp 0.05 * 64000 = 3200 images; at 1e6 images the half-life of 10000 images.
    assert ema_beta(32, 64_000) == pytest.approx(0.5 ** (32 / 3200))
    assert ema_beta(64, 10**6) == pytest.approx(0.5 ** (64 / 10_000))


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()


def _linear(model: nn.Module, index: Optional[int] = None) -> nn.Linear:
    """``model[index]`` (or ``model`` itself), checked to be an ``nn.Linear``."""
    layer = model if index is None else list(model.children())[index]
    assert isinstance(layer, nn.Linear)
    return layer


def test_update_follows_the_recurrence_and_copies_buffers() -> None:
    model = _model()
    ema = ModelEMA(model, half_life_kimg=0.05, rampup=0.5)
    ref = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = 0
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(6, 3, dtype=torch.float64))  # moves the batch-norm statistics
        beta = stylegan_beta(6, seen, 0.05, 0.5)
        for n, p in model.named_parameters():
            ref[n] = p.detach().lerp(ref[n], beta)  # p_ema.copy_(p.lerp(p_ema, beta))
        ema.update(model, batch_size=6)
        seen += 6
        for n, p in ema.module.named_parameters():
            assert_close(p, ref[n])
        for (n, b_ema), (_, b) in zip(ema.module.named_buffers(), model.named_buffers()):
            assert torch.equal(b_ema, b), n  # running statistics and num_batches_tracked
    assert ema.images_seen == 24
    # The first update (no images seen) is a copy with a ramp-up: beta = 0.
    assert stylegan_beta(6, 0, 0.05, 0.5) == 0.0


def test_explicit_images_seen_and_counter() -> None:
    model = _model()
    ema = ModelEMA(model, half_life_kimg=1.0, rampup=None)
    w0 = _linear(ema.module, 0).weight.detach().clone()
    with torch.no_grad():
        _linear(model, 0).weight.add_(1.0)
    ema.update(model, batch_size=1000, images_seen=5000)  # beta = 0.5 ** (1000 / 1000)
    assert_close(_linear(ema.module, 0).weight, 0.5 * w0 + 0.5 * _linear(model, 0).weight.detach())
    assert ema.images_seen == 6000
    assert ema.beta(32) == pytest.approx(0.5 ** (32 / 1000))


def test_average_is_a_frozen_eval_copy_used_by_forward() -> None:
    model = _model()
    ema = ModelEMA(model)
    assert ema.module is not model and not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(ema(x), ema.module(x))
    with torch.no_grad():
        _linear(model, 0).weight.zero_()
    assert not torch.equal(_linear(ema.module, 0).weight, _linear(model, 0).weight)  # a deep copy


def test_state_dict_round_trip() -> None:
    model = _model()
    ema = ModelEMA(model)
    with torch.no_grad():
        _linear(model, 2).bias.fill_(3.0)
    ema.update(model, batch_size=4)
    ema.update(model, batch_size=4)
    restored = ModelEMA(_model())
    restored.load_state_dict(ema.state_dict())
    assert restored.images_seen == 8
    for a, b in zip(restored.module.state_dict().values(), ema.module.state_dict().values()):
        assert torch.equal(a, b)
    assert all(k.startswith("module.") or k == "_extra_state" for k in ema.state_dict())


def test_unwraps_compile_and_updates_from_the_wrapper() -> None:
    model = _model()
    compiled = cast(nn.Module, torch.compile(model))  # not run: only the wrapper's _orig_mod is read
    assert unwrap_model(compiled) is model
    ema = ModelEMA(compiled)
    assert type(ema.module) is nn.Sequential
    with torch.no_grad():
        _linear(model, 0).bias.fill_(1.0)
    ema.update(compiled, batch_size=2)  # beta 0 at the start of the ramp: a copy
    assert torch.equal(_linear(ema.module, 0).bias, torch.ones(4, dtype=torch.float64))


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_unwraps_ddp(tmp_path: Path) -> None:
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        model = _model()
        ddp = nn.parallel.DistributedDataParallel(model)
        ema = ModelEMA(ddp)
        assert type(ema.module) is nn.Sequential
        assert set(ema.state_dict()) - {"_extra_state"} == {f"module.{k}" for k in model.state_dict()}
        with torch.no_grad():
            _linear(model, 2).weight.fill_(2.0)
        ema.update(ddp, batch_size=8)
        assert torch.equal(_linear(ema.module, 2).weight, torch.full((2, 4), 2.0, dtype=torch.float64))
    finally:
        dist.destroy_process_group()


def test_errors_and_repr() -> None:
    ema = ModelEMA(_model())
    with pytest.raises(ValueError, match=r"missing \['1.bias'"):
        ema.update(nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.Linear(4, 2)).double(), batch_size=1)
    with pytest.raises(ValueError, match=r"'0.weight' must have shape \(4, 3\)"):
        ema.update(nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double(), batch_size=1)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        ema.update(_model(), batch_size=0)
    with pytest.raises(ValueError, match="half_life_kimg must be > 0"):
        ModelEMA(_model(), half_life_kimg=0.0)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        ModelEMA(lambda x: x)  # type: ignore[arg-type]
    assert "half_life_kimg=10.0, rampup=0.05, copy_buffers=True, images_seen=0" in repr(ema)
    assert "copy_buffers=<predicate>" in repr(ModelEMA(_model(), copy_buffers=lambda name: True))
    with pytest.raises(TypeError, match="copy_buffers must be a bool or a callable name -> bool, got str"):
        ModelEMA(_model(), copy_buffers="noise")  # type: ignore[arg-type]


def test_average_in_another_dtype() -> None:
    model = torch.nn.Linear(2, 1).bfloat16()
    ema = ModelEMA(model, half_life_kimg=1.0, rampup=None, dtype=torch.float32)
    assert _linear(ema.module).weight.dtype == torch.float32
    start = _linear(ema.module).weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, batch_size=1)  # beta = 0.5 ** (1 / 1000): a step of 6.9e-4, below bfloat16's resolution
    beta = 0.5 ** (1 / 1000)
    expected = beta * start + (1 - beta) * model.weight.float()
    assert torch.allclose(_linear(ema.module).weight, expected, rtol=1e-6, atol=1e-7)
    assert not torch.equal(_linear(ema.module).weight, start)


class _Noisy(nn.Module):
    """A layer with a noise buffer (rosinality's ``noises.noise_i``) beside batch-norm statistics."""

    noise: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3, dtype=torch.float64)
        self.norm = nn.BatchNorm1d(3, dtype=torch.float64)
        self.register_buffer("noise", torch.randn(3, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x) + self.noise)


def test_rosinality_accumulate_leaves_buffers_alone() -> None:
    g = _Noisy()
    ema = ModelEMA(g, half_life_kimg=10.0, rampup=None, copy_buffers=False)
    ema_noise = torch.randn(3, dtype=torch.float64)
    with torch.no_grad():
        cast(torch.Tensor, ema.module.noise).copy_(ema_noise)  # g_ema's own noise, as in rosinality
    ref = {n: p.detach().clone() for n, p in ema.module.named_parameters()}
    frozen = {n: b.clone() for n, b in ema.module.named_buffers()}
    decay = 0.5 ** (32 / (10 * 1000))
    for _ in range(3):
        with torch.no_grad():
            for p in g.parameters():
                p.add_(torch.randn_like(p))
            g.noise.normal_()
        g.train()(torch.randn(5, 3, dtype=torch.float64))  # moves g's running statistics
        # rosinality's train.py: accumulate(g_ema, g, 0.5 ** (32 / (10 * 1000))), parameters only
        for n, p in g.named_parameters():
            ref[n] = ref[n] * decay + p.detach() * (1 - decay)
        ema.update(g, batch_size=32)
        for n, p in ema.module.named_parameters():
            assert_close(p, ref[n])
    for n, b in ema.module.named_buffers():
        assert torch.equal(b, frozen[n]), n
    assert torch.equal(cast(torch.Tensor, ema.module.noise), ema_noise)


def test_copy_buffers_predicate_chooses_by_name() -> None:
    g = _Noisy()
    ema = ModelEMA(g, copy_buffers=lambda name: "noise" not in name)
    before = cast(torch.Tensor, ema.module.noise).clone()
    with torch.no_grad():
        g.noise.add_(1.0)
    g.train()(torch.randn(5, 3, dtype=torch.float64))
    ema.update(g, batch_size=4)
    assert torch.equal(cast(torch.Tensor, ema.module.noise), before)  # left alone
    for name in ("norm.running_mean", "norm.running_var", "norm.num_batches_tracked"):
        assert torch.equal(ema.module.get_buffer(name), g.get_buffer(name)), name  # copied
