"""SelfAttention2d against SAGAN's attention written out with an explicit softmax."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close
from torch.nn.utils import parametrize

from ganblocks import SelfAttention2d


def weight(conv: torch.nn.Module) -> torch.Tensor:
    w: torch.Tensor = conv.weight  # type: ignore[assignment]
    return w.flatten(1)  # (out, in) of a 1x1 convolution


def explicit_attention(x: torch.Tensor, attn: SelfAttention2d, pool: int) -> torch.Tensor:
    """x_i + gamma W_o sum_j softmax_j(q_i . k_j) v_j, keys and values max-pooled over pool x pool windows."""
    n, _, h, w = x.shape
    q = torch.einsum("oc,nchw->nohw", weight(attn.query), x)
    k = torch.einsum("oc,nchw->nohw", weight(attn.key), x)
    v = torch.einsum("oc,nchw->nohw", weight(attn.value), x)

    def pooled(t: torch.Tensor) -> torch.Tensor:  # (N, D, H, W) -> (N, D, H*W/pool^2)
        t = t.reshape(n, t.shape[1], h // pool, pool, w // pool, pool).amax(dim=(3, 5))
        return t.flatten(2)

    q, k, v = q.flatten(2), pooled(k), pooled(v)
    logits = torch.einsum("ndi,ndj->nij", q, k)
    e = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    beta = e / e.sum(dim=-1, keepdim=True)
    o = torch.einsum("nij,ndj->ndi", beta, v).reshape(n, -1, h, w)
    return x + attn.gamma * torch.einsum("oc,nchw->nohw", weight(attn.out), o)


@pytest.mark.parametrize("pool", [2, 1])
@pytest.mark.parametrize("sn", [False, True])
def test_matches_the_explicit_formula(pool: int, sn: bool) -> None:
    torch.manual_seed(0)
    attn = SelfAttention2d(16, kv_pool=pool, spectral_norm=sn, dtype=torch.float64).eval()
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    x = torch.randn(3, 16, 4, 6, dtype=torch.float64)
    y = attn(x)
    assert y.shape == x.shape
    assert_close(y, explicit_attention(x, attn, pool))
    assert (y - x).abs().max() > 0.1  # the attention term is there


def test_identity_at_init_shapes_and_repr() -> None:
    attn = SelfAttention2d(64)
    assert attn.gamma.item() == 0.0
    x = torch.randn(2, 64, 8, 8)
    assert torch.equal(attn(x), x)
    assert (attn.qk_channels, attn.v_channels) == (8, 32)
    assert weight(attn.query).shape == (8, 64) and weight(attn.key).shape == (8, 64)
    assert weight(attn.value).shape == (32, 64) and weight(attn.out).shape == (64, 32)
    assert all(m.bias is None for m in (attn.query, attn.key, attn.value, attn.out))
    assert "64, kv_pool=2, spectral_norm=False" in repr(attn)


def test_gradient_reaches_gamma_at_init() -> None:
    """At gamma = 0 the block is the identity, but d(out)/d(gamma) = W_o o is not zero: gamma can grow."""
    torch.manual_seed(1)
    attn = SelfAttention2d(16, dtype=torch.float64)
    x = torch.randn(2, 16, 4, 4, dtype=torch.float64)
    g = torch.randn_like(x)
    (attn(x) * g).sum().backward()
    with torch.no_grad():
        attn.gamma.fill_(1.0)
        term = explicit_attention(x, attn, 2) - x  # W_o o
    assert attn.gamma.grad is not None
    assert_close(attn.gamma.grad, (term * g).sum())
    assert attn.gamma.grad.abs() > 1e-3
    # With gamma = 0 nothing reaches the convolutions yet.
    out_weight = attn.out.weight
    assert isinstance(out_weight, torch.Tensor)
    out_grad = out_weight.grad
    assert out_grad is not None and out_grad.abs().max() == 0


def test_gradcheck_and_gradgradcheck() -> None:
    torch.manual_seed(2)
    attn = SelfAttention2d(8, dtype=torch.float64)
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    x = torch.randn(1, 8, 2, 4, dtype=torch.float64, requires_grad=True)  # two keys after pooling
    assert torch.autograd.gradcheck(attn, (x,))
    assert torch.autograd.gradgradcheck(attn, (x,))


def test_spectral_norm_option_is_present_and_effective() -> None:
    torch.manual_seed(3)
    attn = SelfAttention2d(64, spectral_norm=True).eval()
    plain = SelfAttention2d(64)
    for name in ("query", "key", "value", "out"):
        conv = getattr(attn, name)
        assert parametrize.is_parametrized(conv, "weight")
        assert not parametrize.is_parametrized(getattr(plain, name), "weight")
        original = conv.parametrizations.weight.original.flatten(1)
        sigma_original = torch.linalg.matrix_norm(original, 2).item()
        sigma = torch.linalg.matrix_norm(weight(conv), 2).item()
        # Spectral norm divides by the largest singular value (15 power iterations at construction).
        assert abs(sigma - 1.0) < 1e-2, (name, sigma)
        assert abs(sigma_original - 1.0) > 5e-2, (name, sigma_original)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="in_channels must be an int >= 8, got 4"):
        SelfAttention2d(4)
    with pytest.raises(ValueError, match="kv_pool must be an int >= 1, got 0"):
        SelfAttention2d(16, kv_pool=0)
    attn = SelfAttention2d(16)
    with pytest.raises(ValueError, match=r"x must have 16 channels \(N, C, H, W\), got shape \(2, 8, 4, 4\)"):
        attn(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r"divisible by kv_pool=2 .* got shape \(2, 16, 5, 4\)"):
        attn(torch.randn(2, 16, 5, 4))
    with pytest.raises(ValueError, match="x"):
        attn(torch.randn(16, 4, 4))
    with pytest.raises(TypeError, match="x"):
        attn(torch.ones(1, 16, 4, 4, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"x must have the dtype of SelfAttention2d's parameters \(torch.float32\)"
    ):
        attn(torch.randn(1, 16, 4, 4, dtype=torch.float64))


def test_bfloat16_autocast_and_channels_last() -> None:
    torch.manual_seed(4)
    attn = SelfAttention2d(16)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    x = torch.randn(2, 16, 4, 4)
    expected = attn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = attn(x)
    assert_close(low.float(), expected, torch.bfloat16, scale=4)  # four chained bf16 matmuls
    cl = attn(x.to(memory_format=torch.channels_last))
    assert_close(cl, expected)
