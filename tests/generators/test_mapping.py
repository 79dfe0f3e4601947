"""MappingNetwork and style_mixing against StyleGAN2-ADA's formulas, written out independently."""

from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
from helpers import assert_close

from ganblocks.generators.mapping import MappingNetwork, style_mixing
from ganblocks.layers import EqualLinear

F64 = torch.float64


def lrelu_sqrt2(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v > 0, v, 0.2 * v) * math.sqrt(2.0)


def second_moment_norm(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt((v * v).mean(dim=1, keepdim=True) + 1e-8)


def reference_mapping(net: MappingNetwork, z: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2-ADA's MappingNetwork.forward without truncation, from the stored parameters."""
    parts = [second_moment_norm(z)]
    if c is not None:
        assert net.embed is not None and net.embed.bias is not None
        we, be = net.embed.weight.detach(), net.embed.bias.detach()
        parts.append(second_moment_norm(c @ (we / math.sqrt(we.shape[1])).T + be))
    h = torch.cat(parts, dim=1)
    for layer in net.layers:
        assert isinstance(layer, EqualLinear) and layer.bias is not None
        w, b = layer.weight.detach(), layer.bias.detach()
        lr = 0.01
        h = lrelu_sqrt2(h @ (w * lr / math.sqrt(w.shape[1])).T + b * lr)
    return h if net.num_ws is None else h.unsqueeze(1).expand(-1, net.num_ws, -1)


def make(c_dim: int = 3, num_ws: Optional[int] = 5, **kw: object) -> MappingNetwork:
    net = MappingNetwork(6, c_dim, 4, num_ws, num_layers=3, dtype=F64, **kw)  # type: ignore[arg-type]
    with torch.no_grad():  # nonzero biases, so that the test sees them
        for p in net.parameters():
            if p.ndim == 1:
                p.normal_(0.0, 10.0)
    return net


@pytest.mark.parametrize("c_dim", [0, 3])
def test_forward_matches_formula(c_dim: int) -> None:
    net = make(c_dim).eval()
    z = torch.randn(7, 6, dtype=F64)
    c = torch.randn(7, c_dim, dtype=F64) if c_dim else None
    ws = net(z, c)
    assert ws.shape == (7, 5, 4)
    assert_close(ws, reference_mapping(net, z, c))
    assert net.w_avg is not None and torch.equal(
        net.w_avg, torch.zeros(4, dtype=torch.float32)
    )  # eval: no update


def test_structure_and_parameter_count() -> None:
    # StyleGAN2-ADA at 512: 8 layers of 512 x 512 + 512 = 2,101,248 parameters, weights stored as N(0, 1/0.01^2)
    net = MappingNetwork(512, 0, 512, 18, device="meta")
    assert sum(p.numel() for p in net.parameters()) == 8 * (512 * 512 + 512) == 2_101_248
    assert all(p.device.type == "meta" for p in net.parameters()) and net.w_avg is not None
    small = MappingNetwork(64, 0, 64, None, num_layers=2)
    first = small.layers[0]
    assert isinstance(first, EqualLinear)
    std = first.weight.std().item()
    assert 90 < std < 110  # 4096 draws of N(0, 100^2)
    assert small.embed is None and len(small.layers) == 2
    conditional = MappingNetwork(8, 10, 16, 4, num_layers=2, embed_features=5, layer_features=7)
    assert conditional.embed is not None and conditional.embed.in_features == 10
    assert [(layer.in_features, layer.out_features) for layer in conditional.layers] == [(13, 7), (7, 16)]
    assert "num_ws=4" in repr(conditional) and "lr_multiplier=0.01" in repr(conditional)


def test_w_avg_tracking() -> None:
    net = make(0, w_avg_beta=0.9)
    z1, z2 = torch.randn(5, 6, dtype=F64), torch.randn(5, 6, dtype=F64)
    m1 = reference_mapping(net, z1, None)[:, 0].mean(0)
    m2 = reference_mapping(net, z2, None)[:, 0].mean(0)
    net.train()
    net(z1)  # training mode: updates (StyleGAN2-ADA)
    assert net.w_avg is not None
    assert_close(net.w_avg.double(), m1 * 0.1, torch.float32)
    net(z2, update_emas=False)  # explicitly off
    assert_close(net.w_avg.double(), m1 * 0.1, torch.float32)
    net.eval()
    net(z2, update_emas=True)  # explicitly on
    assert_close(net.w_avg.double(), m2 + 0.9 * (m1 * 0.1 - m2), torch.float32)
    assert net.w_avg.dtype == torch.float32


def test_w_avg_skips_a_non_finite_batch() -> None:
    net = make(0, w_avg_beta=0.9).train()
    z1, z2 = torch.randn(5, 6, dtype=F64), torch.randn(5, 6, dtype=F64)
    net(z1)
    assert net.w_avg is not None
    before = net.w_avg.clone()
    for bad in (float("nan"), float("inf")):
        z = z2.clone()
        z[2, 1] = bad
        out = net(z)
        assert not torch.isfinite(out[2]).all() and torch.isfinite(out[[0, 1, 3, 4]]).all()
        assert torch.equal(net.w_avg, before)
    net(z2)  # later finite batches update as usual
    m1 = reference_mapping(net, z1, None)[:, 0].mean(0)
    m2 = reference_mapping(net, z2, None)[:, 0].mean(0)
    assert_close(net.w_avg.double(), m2 + 0.9 * (m1 * 0.1 - m2), torch.float32)
    assert torch.isfinite(net(z2, truncation_psi=0.5)).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_w_avg_update_in_the_dtype_of_the_network(dtype: torch.dtype) -> None:
    net = MappingNetwork(6, 0, 4, 3, num_layers=2, w_avg_beta=0.5).to(dtype).train()
    assert net.w_avg is not None and net.w_avg.dtype == dtype
    z = torch.randn(4, 6, dtype=dtype)
    w = net(z)[:, 0]
    expected = 0.5 * w.double().mean(0)  # lerp(mean, 0, 0.5)
    assert net.w_avg.dtype == dtype
    assert_close(net.w_avg.double(), expected, dtype)


@pytest.mark.parametrize(("psi", "cutoff"), [(0.7, None), (0.5, 2), (0.0, None), (-0.5, 5), (1.3, 0)])
def test_truncation(psi: float, cutoff: Optional[int]) -> None:
    net = make().eval()
    avg = torch.randn(4)
    assert net.w_avg is not None
    net.w_avg.copy_(avg)
    z, c = torch.randn(3, 6, dtype=F64), torch.randn(3, 3, dtype=F64)
    w = reference_mapping(net, z, c)
    out = net(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    k = 5 if cutoff is None else cutoff
    expected = w.clone()
    expected[:, :k] = avg.double() + psi * (w[:, :k] - avg.double())
    assert_close(out, expected)


def test_no_broadcast() -> None:
    net = make(num_ws=None).eval()
    z, c = torch.randn(3, 6, dtype=F64), torch.randn(3, 3, dtype=F64)
    out = net(z, c, truncation_psi=0.5)
    assert out.shape == (3, 4)
    assert_close(out, 0.5 * reference_mapping(net, z, c))  # w_avg is 0
    with pytest.raises(ValueError, match=r"truncation_cutoff must be None or an int in \[0, num_ws\]"):
        net(z, c, truncation_cutoff=1)


def test_gradients_reach_every_parameter_and_z() -> None:
    net = make()
    z = torch.randn(3, 6, dtype=F64, requires_grad=True)
    net(z, torch.randn(3, 3, dtype=F64)).square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_errors() -> None:
    net = make()
    z, c = torch.randn(2, 6, dtype=F64), torch.randn(2, 3, dtype=F64)
    with pytest.raises(ValueError, match=r"z must have shape \(N, z_dim\) with z_dim = 6, got \(2, 5\)"):
        net(torch.randn(2, 5, dtype=F64), c)
    with pytest.raises(TypeError, match=r"c must be a torch\.Tensor, got NoneType"):
        net(z)
    with pytest.raises(ValueError, match=r"c must have shape \(N, c_dim\) = \(2, 3\).*got \(3, 3\)"):
        net(z, torch.randn(3, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"c must be None or of shape \(N, 0\) since c_dim = 0"):
        make(0)(z, c)
    with pytest.raises(
        ValueError, match="truncation_cutoff must be None or an int in \\[0, num_ws\\] with num_ws = 5, got 6"
    ):
        net(z, c, truncation_psi=0.5, truncation_cutoff=6)
    with pytest.raises(ValueError, match="truncation_psi must be 1 when the network tracks no w_avg"):
        make(w_avg_beta=None)(z, c, truncation_psi=0.5)
    with pytest.raises(ValueError, match="truncation_psi must be a finite number, got nan"):
        net(z, c, truncation_psi=float("nan"))
    with pytest.raises(ValueError, match="z_dim and c_dim must not both be 0"):
        MappingNetwork(0, 0, 4, 2)
    with pytest.raises(ValueError, match=r"w_avg_beta must be in \[0, 1\], got 1\.5"):
        MappingNetwork(4, 0, 4, 2, w_avg_beta=1.5)
    with pytest.raises(ValueError, match="num_layers must be an int >= 1, got 0"):
        MappingNetwork(4, 0, 4, 2, num_layers=0)


def test_conditional_only() -> None:
    net = MappingNetwork(0, 3, 4, 2, num_layers=1, dtype=F64).eval()
    c = torch.randn(5, 3, dtype=F64)
    out = net(None, c)
    assert out.shape == (5, 2, 4)
    assert net.embed is not None and net.embed.bias is not None
    e = second_moment_norm(c @ (net.embed.weight / math.sqrt(3)).T.detach() + net.embed.bias.detach())
    layer = net.layers[0]
    assert isinstance(layer, EqualLinear) and layer.bias is not None
    expected = lrelu_sqrt2(e @ (layer.weight * 0.01 / 2).T.detach() + 0.01 * layer.bias.detach())
    assert_close(out[:, 1], expected)


# ---------------------------------------------------------------------------------------------------------
# style mixing


def _crossover(mixed: torch.Tensor, ws: torch.Tensor) -> int:
    """The first layer whose styles differ from ``ws`` (num_ws when none)."""
    same = (mixed == ws).all(dim=2).all(dim=0).tolist()
    return same.index(False) if False in same else len(same)


def test_style_mixing_structure() -> None:
    net = make(num_ws=6).train()
    z, c = torch.randn(4, 6, dtype=F64), torch.randn(4, 3, dtype=F64)
    ws = net(z, c, update_emas=False)
    assert net.w_avg is not None
    avg = net.w_avg.clone()
    for seed in range(5):
        mixed = style_mixing(net, z, c, ws, prob=1.0, generator=torch.Generator().manual_seed(seed))
        k = _crossover(mixed, ws)
        assert 1 <= k <= 5  # U{1, ..., num_ws - 1}
        assert torch.equal(mixed[:, :k], ws[:, :k])
        # after the crossover: one new w per sample (a mapping output, broadcast), different from the old one
        assert torch.equal(mixed[:, k:], mixed[:, k : k + 1].expand(-1, 6 - k, -1))
        assert not torch.isclose(mixed[:, k], ws[:, k]).any()
        again = style_mixing(net, z, c, ws, prob=1.0, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(mixed, again)  # seedable
    assert torch.equal(net.w_avg, avg)  # the second mapping does not update w_avg
    assert torch.equal(style_mixing(net, z, c, ws, prob=0.0), ws)


def test_style_mixing_maps_a_fresh_latent_with_the_same_labels() -> None:
    net = make(num_ws=3).eval()
    z, c = torch.randn(3, 6, dtype=F64), torch.randn(3, 3, dtype=F64)
    ws = net(z, c)
    gen = torch.Generator().manual_seed(3)
    mixed = style_mixing(net, z, c, ws, prob=1.0, generator=gen)
    k = _crossover(mixed, ws)
    # Recover z2 by replaying the documented draws: crossover, coin, then z2 ~ N(0, I) of z's shape.
    replay = torch.Generator().manual_seed(3)
    torch.randint(1, 3, (), generator=replay)
    torch.rand((), generator=replay)
    z2 = torch.randn(z.shape, generator=replay, dtype=F64)
    assert_close(mixed[:, k:], reference_mapping(net, z2, c)[:, k:])


def test_style_mixing_probability_and_crossover_distribution() -> None:
    net = MappingNetwork(4, 0, 2, 4, num_layers=1).eval()
    z = torch.randn(2, 4)
    ws = net(z)
    gen = torch.Generator().manual_seed(0)
    cut = [_crossover(style_mixing(net, z, None, ws, prob=0.5, generator=gen), ws) for _ in range(400)]
    mixed = [k for k in cut if k < 4]
    # 400 fair coins: 200 ± 50 is > 5 sigma; each of the 3 crossovers gets about a third of the mixed batches
    assert 150 < len(mixed) < 250
    assert all(abs(mixed.count(k) - len(mixed) / 3) < len(mixed) / 6 for k in (1, 2, 3))


def test_style_mixing_errors() -> None:
    net = make(num_ws=4)
    z, c = torch.randn(2, 6, dtype=F64), torch.randn(2, 3, dtype=F64)
    ws = net(z, c)
    with pytest.raises(
        ValueError, match=r"ws must have shape \(N, num_ws, w_dim\) = \(N, 4, 4\), got \(2, 3, 4\)"
    ):
        style_mixing(net, z, c, ws[:, :3])
    with pytest.raises(ValueError, match=r"ws must have the batch size of z and c \(2\)"):
        style_mixing(net, z, c, torch.cat([ws, ws]))
    with pytest.raises(ValueError, match="prob must be in \\[0, 1\\], got 2"):
        style_mixing(net, z, c, ws, prob=2)
    with pytest.raises(ValueError, match=r"num_ws >= 2 styles for style mixing, got shape \(2, 1, 4\)"):
        style_mixing(make(num_ws=None), z, c, ws[:, :1])
    with pytest.raises(TypeError, match="mapping must be a MappingNetwork or a callable z -> w, got int"):
        style_mixing(3, z, c, ws)  # type: ignore[arg-type]
    wrong = torch.nn.Linear(6, 3, dtype=F64)  # w_dim 3, not 4
    with pytest.raises(ValueError, match=r"mapping must return styles of shape \(N, w_dim\) = \(2, 4\) or"):
        style_mixing(wrong, z, None, ws, prob=1.0)


def test_style_mixing_accepts_any_mapping_callable() -> None:
    # rosinality's G.style: z (N, style_dim) -> w (N, style_dim), no broadcast, no labels, no w_avg.
    style = torch.nn.Sequential(torch.nn.Linear(6, 4, dtype=F64), torch.nn.LeakyReLU(0.2))
    z = torch.randn(3, 6, dtype=F64)
    ws = style(z).unsqueeze(1).repeat(1, 5, 1)
    for seed in range(4):
        mixed = style_mixing(style, z, None, ws, prob=1.0, generator=torch.Generator().manual_seed(seed))
        k = _crossover(mixed, ws)
        assert 1 <= k <= 4
        replay = torch.Generator().manual_seed(seed)
        torch.randint(1, 5, (), generator=replay)
        torch.rand((), generator=replay)
        z2 = torch.randn(z.shape, generator=replay, dtype=F64)
        assert torch.equal(mixed[:, :k], ws[:, :k])
        assert_close(mixed[:, k:], style(z2).unsqueeze(1).expand(-1, 5 - k, -1))
    # A MappingNetwork without a broadcast mixes the styles the caller broadcast.
    net = make(num_ws=None)
    c = torch.randn(3, 3, dtype=F64)
    ws = net(z, c).unsqueeze(1).repeat(1, 4, 1)
    mixed = style_mixing(net, z, c, ws, prob=1.0, generator=torch.Generator().manual_seed(0))
    assert 1 <= _crossover(mixed, ws) <= 3
    # A callable given labels is called with them.
    seen: list[Optional[torch.Tensor]] = []

    def conditional(z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(labels)
        return z2[:, :4] + labels[:, :1]

    style_mixing(conditional, z, c, ws, prob=1.0)
    assert len(seen) == 1 and seen[0] is c
