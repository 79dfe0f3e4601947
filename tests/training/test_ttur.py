"""ttur_adam: two Adams at their own rates, the lazy correction on the lazily regularised one."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from ganblocks.training import ttur_adam


def test_settings_per_network_and_lazy_correction() -> None:
    g, d = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    opt_g, opt_d = ttur_adam(
        g, d, g_lr=1e-4, d_lr=4e-4, g_betas=(0.0, 0.9), d_betas=(0.5, 0.99), d_reg_interval=16, eps=1e-8
    )
    assert opt_g.defaults["lr"] == 1e-4 and opt_g.defaults["betas"] == (0.0, 0.9)
    c = 16 / 17  # StyleGAN2's mb_ratio for D_reg_interval = 16
    assert opt_d.defaults["lr"] == pytest.approx(4e-4 * c, rel=1e-12)
    assert opt_d.defaults["betas"] == pytest.approx((0.5**c, 0.99**c), rel=1e-12)
    assert opt_d.defaults["eps"] == 1e-8
    assert {id(p) for p in opt_g.param_groups[0]["params"]} == {id(p) for p in g.parameters()}
    assert {id(p) for p in opt_d.param_groups[0]["params"]} == {id(p) for p in d.parameters()}
    # Parameter groups pass through; a g_reg_interval corrects G's settings the same way.
    opt_g, _ = ttur_adam(
        [{"params": list(g.parameters())}], d.parameters(), g_lr=2e-3, d_lr=2e-3, g_reg_interval=4
    )
    assert opt_g.defaults["lr"] == pytest.approx(2e-3 * 0.8) and opt_g.defaults["betas"][1] == pytest.approx(
        0.99**0.8
    )


def test_one_step_equals_hand_built_adam() -> None:
    torch.manual_seed(0)
    d = torch.nn.Linear(2, 1)
    twin = torch.nn.Linear(2, 1)
    twin.load_state_dict(d.state_dict())
    _, opt_d = ttur_adam(torch.nn.Linear(1, 1), d, g_lr=1e-3, d_lr=3e-3, d_reg_interval=4)
    hand = torch.optim.Adam(twin.parameters(), lr=3e-3 * 4 / 5, betas=(0.0, 0.99 ** (4 / 5)))
    x = torch.randn(5, 2)
    for model, opt in ((d, opt_d), (twin, hand)):
        for _ in range(3):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    assert_close(d.weight, twin.weight)


def test_errors() -> None:
    g, d = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="d_lr must be"):
        ttur_adam(g, d, g_lr=1e-3, d_lr=-1.0)
    with pytest.raises(ValueError, match=r"g_betas\[1\]"):
        ttur_adam(g, d, g_lr=1e-3, d_lr=1e-3, g_betas=(0.0, 1.5))
    with pytest.raises(ValueError, match="d_betas must be a pair"):
        ttur_adam(g, d, g_lr=1e-3, d_lr=1e-3, d_betas=(0.9,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="d_reg_interval must be a positive integer"):
        ttur_adam(g, d, g_lr=1e-3, d_lr=1e-3, d_reg_interval=0)
    with pytest.raises(TypeError, match="use g_lr and d_lr"):
        ttur_adam(g, d, g_lr=1e-3, d_lr=1e-3, lr=1e-3)
    with pytest.raises(TypeError, match=r"generator must be an nn\.Module"):
        ttur_adam(torch.zeros(2), d, g_lr=1e-3, d_lr=1e-3)
