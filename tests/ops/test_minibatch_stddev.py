"""minibatch_stddev beyond the shared contract (``test_contract.py``): strided groups against explicit loops
and StyleGAN2-ADA, group size choices, the third order on Triton, many tiles per group, the launches,
and each bad input's message."""

from __future__ import annotations

import functools
from typing import Any, Callable

import formulas
import pytest
import torch
from helpers import TRITON_DEVICE, all_orders, assert_close, requires_triton
from torch.utils._python_dispatch import TorchDispatchMode

from ganblocks.functional import minibatch_stddev
from ganblocks.ops import Backend

CASES = [((4, 2, 2, 3), 2, 1), ((6, 4, 1, 2), 3, 2), ((3, 5, 7, 9), 3, 5), ((1, 1, 1, 1), 4, 1)]


@pytest.mark.parametrize(("shape", "group_size", "num_channels"), CASES)
def test_matches_loops_and_stylegan2_ada(
    backend: Backend,
    device: torch.device,
    shape: tuple[int, int, int, int],
    group_size: int,
    num_channels: int,
) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    kw: dict[str, Any] = {"group_size": group_size, "num_channels": num_channels}
    y = minibatch_stddev(x.to(device), **kw, backend=backend).cpu()
    assert y.shape == (shape[0], shape[1] + num_channels, *shape[2:])
    assert_close(y, formulas.minibatch_stddev(x, min(group_size, shape[0]), num_channels))
    assert_close(y, formulas.minibatch_stddev_stylegan2_ada(x, group_size, num_channels))


def test_groups_are_strided() -> None:
    # Slot 0 holds samples 0 and 2, slot 1 samples 1 and 3; making 0 and 2 equal zeroes only slot 0's std.
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    x[2] = x[0]
    y = minibatch_stddev(x, group_size=2, backend="torch")[:, 3, 0, 0]
    assert_close(y[[0, 2]], torch.full((2,), 1e-4, dtype=torch.float64))
    assert (y[[1, 3]] > 0.1).all()


def test_group_size_choices() -> None:
    x = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    assert_close(minibatch_stddev(x, group_size=None, backend="torch"), formulas.minibatch_stddev(x, 6, 1))
    # min(group, N)
    assert_close(minibatch_stddev(x, group_size=8, backend="torch"), formulas.minibatch_stddev(x, 6, 1))
    assert_close(
        minibatch_stddev(x, group_size=4, adjust_group_size=True, backend="torch"),
        formulas.minibatch_stddev(x, 3, 1),
    )


@pytest.mark.triton
@requires_triton
def test_triton_float64_every_order() -> None:
    """Output, gradient, second and third order: the backward's backward is differentiable too."""
    x0 = torch.randn(6, 4, 3, 2, dtype=torch.float64, device=TRITON_DEVICE)

    def run(backend: Backend) -> list[torch.Tensor]:
        fn = functools.partial(minibatch_stddev, group_size=3, num_channels=2, backend=backend)
        out = all_orders(fn, [x0])
        x = x0.clone().requires_grad_()
        y = fn(x)
        weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape)
        (gx,) = torch.autograd.grad((y**2 * weight).sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad((gx**2).sum(), x, create_graph=True)
        return [*out, *torch.autograd.grad((ggx * weight[:, : x.shape[1]]).sum(), x)]

    for o, r in zip(run("triton"), run("torch")):
        assert_close(o, r, scale=10.0)  # float64 throughout, sums in another order


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_many_tiles_per_group(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Tiles of 2 x 2 and loop blocks of 2, as a GPU has for large groups: the partial sums of a group,
    the stat channel's pixels and the backward's sum over the group all take several steps."""
    from ganblocks.ops.minibatch_stddev import kernels

    monkeypatch.setattr(kernels, "tiles", lambda num_c, num_p, channel_stride: (2, 2))
    monkeypatch.setattr(kernels, "_block", lambda size: 2)
    x = torch.randn(6, 8, 3, 3, dtype=torch.float64, device=TRITON_DEVICE) + 5
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    fn = functools.partial(minibatch_stddev, group_size=3, num_channels=2)
    for o, r in zip(
        all_orders(functools.partial(fn, backend="triton"), [x]),
        all_orders(functools.partial(fn, backend="torch"), [x]),
    ):
        assert_close(o, r, scale=10.0)  # float64 throughout, sums in another order


@pytest.mark.triton
@requires_triton
def test_triton_launches_two_kernels_each_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The forward is the fused statistics + copy kernel and the kernel that writes the stat channels;
    the backward the kernel that sums the stat channels' gradient and the dx kernel: no PyTorch glue
    (the ops the interpreter itself runs inside a kernel are not counted)."""
    from ganblocks.ops.minibatch_stddev import kernels

    launches: list[str] = []
    in_kernel: list[str] = []

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if not in_kernel and name not in ("empty", "empty_like", "empty_strided", "new_empty"):
                launches.append(name)
            return func(*args, **(kwargs or {}))

    class Counted:
        def __init__(self, name: str) -> None:
            self.name, self.kernel = name, getattr(kernels, name)

        def __getitem__(self, grid: object) -> Callable[..., None]:
            def launch(*args: object, **kwargs: object) -> None:
                launches.append(self.name)
                in_kernel.append(self.name)
                try:
                    self.kernel[grid](*args, **kwargs)
                finally:
                    in_kernel.pop()

            return launch

    for name in ("_mbstd_fwd_kernel", "_mbstd_stat_kernel", "_mbstd_coef_kernel", "_mbstd_bwd_kernel"):
        monkeypatch.setattr(kernels, name, Counted(name))
    x = torch.randn(8, 4, 3, 3, device=TRITON_DEVICE)
    with Log():
        out = kernels.minibatch_stddev_forward(x, 4, 1)
    assert launches == ["_mbstd_fwd_kernel", "_mbstd_stat_kernel"]
    dout = torch.ones_like(out)
    launches.clear()
    with Log():
        kernels.minibatch_stddev_backward(dout, x, 4, 1)
    assert launches == ["_mbstd_coef_kernel", "_mbstd_bwd_kernel"]


@pytest.mark.triton
@requires_triton
def test_triton_strided_input_and_expanded_gradient_match_stylegan2_ada() -> None:
    base = torch.randn(4, 3, 8, 5, device=TRITON_DEVICE, dtype=torch.float64)
    x = base[:, :, ::2].requires_grad_()  # H and W do not merge: the launcher copies
    y = minibatch_stddev(x, group_size=2, backend="triton")
    assert_close(y.detach(), formulas.minibatch_stddev(x.detach(), 2, 1))
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    ref = x.detach().clone().requires_grad_()
    formulas.minibatch_stddev_stylegan2_ada(ref, 2).sum().backward()
    assert x.grad is not None and ref.grad is not None
    assert_close(x.grad, ref.grad)


@pytest.mark.parametrize(
    ("shape", "kwargs", "error", "match"),
    [
        ((6, 2, 2, 2), {"group_size": 4}, ValueError,
         r"the batch size \(6\) must be divisible by the group size \(4\).*adjust_group_size=True.*\(3\)"),
        ((4, 3, 2, 2), {"num_channels": 2}, ValueError,
         r"the channel count of x \(3\) must be divisible by num_channels \(2\)"),
        ((4, 3, 2, 2), {"num_channels": 0}, ValueError, "num_channels must be a positive int, got 0"),
        ((4, 3, 2, 2), {"group_size": 0}, ValueError, "group_size must be None or a positive int, got 0"),
        ((4, 3, 2), {}, ValueError, r"x must have 4 dimensions, got shape \(4, 3, 2\)"),
        ((0, 3, 2, 2), {}, ValueError, r"x must have a non-empty batch, got shape \(0, 3, 2, 2\)"),
    ],
)  # fmt: skip
def test_bad_inputs(
    shape: tuple[int, ...], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        minibatch_stddev(torch.zeros(shape), **kwargs)  # type: ignore[arg-type]


def test_int_subclasses_are_ints() -> None:
    # The fast type test must not turn away int subclasses (IntEnum members, numpy-like wrappers).
    class Two(int):
        pass

    x = torch.randn(4, 3, 4, 4)
    torch.testing.assert_close(
        minibatch_stddev(x, group_size=Two(2), num_channels=Two(1), backend="torch"),
        minibatch_stddev(x, group_size=2, num_channels=1, backend="torch"),
    )


@pytest.mark.parametrize("group_size", [2, 3, 4])
def test_float32_second_order_is_as_accurate_as_autograd_of_the_formula(
    backend: Backend, group_size: int
) -> None:
    """Against float64: the float32 second derivative errs no more than autograd of the plain formula does.

    With two samples per group ``r = ±1`` for every element, and ``γ - mean γ - r mean(γ r)`` written out
    cancels to its last bits where the true value is ``O(1e-8)``.
    """
    dev = TRITON_DEVICE if backend == "triton" else "cpu"

    def second(
        fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, w: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        x = x.detach().requires_grad_()
        (gx,) = torch.autograd.grad((fn(x) * w).sum(), x, create_graph=True)
        return torch.autograd.grad((gx * v).sum(), x)[0]

    def plain(x: torch.Tensor) -> torch.Tensor:
        return formulas.minibatch_stddev_stylegan2_ada(x, group_size)

    ours = functools.partial(minibatch_stddev, group_size=group_size, backend=backend)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(2 * group_size, 3, 4, 4, dtype=torch.float64, generator=g)
        w = torch.randn(2 * group_size, 4, 4, 4, dtype=torch.float64, generator=g)
        v = torch.randn(x.shape, dtype=torch.float64, generator=g)
        exact = second(plain, x, w, v)
        f32 = [t.float().to(dev) for t in (x, w, v)]
        err = (second(ours, *f32).double().cpu() - exact).abs().max()
        plain_err = (second(plain, *f32).double().cpu() - exact).abs().max()
        assert err <= 1.5 * plain_err + 1e-6 * exact.abs().max()
