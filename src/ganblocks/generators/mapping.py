"""StyleGAN's mapping network ``z -> w`` with a tracked ``w_avg`` and truncation, and style mixing.

``MappingNetwork`` follows StyleGAN2-ADA's ``MappingNetwork`` (``training/networks.py``): the latent (and
the class embedding) normalized to unit second moment, ``num_layers`` equalized fully connected layers with
leaky ReLU and a learning-rate multiplier of 0.01, an exponential moving average of ``w``, the truncation
trick with a layer cutoff, and the broadcast of ``w`` to ``num_ws`` style vectors. ``style_mixing`` is the
mixing regularization of StyleGAN's training loop.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import nn

from .._checks import check_finite, check_float_tensor, check_int, check_probability
from ..layers.equalized import EqualLinear
from ..ops._activations import Activation
from ..ops.pixel_norm import pixel_norm

# StyleGAN2-ADA's normalize_2nd_moment: x * rsqrt(mean(x^2) + 1e-8).
_EPS = 1e-8


class MappingNetwork(nn.Module):
    r"""StyleGAN's mapping network: a latent (and an optional class label) to intermediate latents ``w``.

    .. math::
        h_0 = \big[\, \mathrm{n}(z),\ \mathrm{n}(E c) \,\big], \qquad
        h_{l} = \sqrt{2}\,\mathrm{lrelu}_{0.2}\big(\mathrm{EqualLinear}_{l}(h_{l-1})\big), \qquad
        w = h_L

    with :math:`\mathrm{n}(x) = x / \sqrt{\operatorname{mean}(x^2) + 10^{-8}}` (pixel norm) and
    :math:`E` an :class:`~ganblocks.layers.EqualLinear` class embedding (only when ``c_dim > 0``). Every
    layer has ``lr_multiplier`` (0.01): its weights are stored 100× larger and its effective learning rate
    is 100× smaller. While ``update_emas`` is on, the batch mean of ``w`` updates the buffer ``w_avg``:

    .. math::
        \bar w \leftarrow \operatorname{mean}_n(w) + \beta\,\big(\bar w - \operatorname{mean}_n(w)\big)

    (``torch.lerp`` with :math:`\beta` = ``w_avg_beta``), computed in float32 (float64 for a float64
    network). A batch in which any ``w`` is NaN or infinite leaves ``w_avg`` unchanged: one bad latent would
    otherwise make it non-finite for good, and every later truncated output with it. ``w`` is then
    repeated to ``(N, num_ws, w_dim)``, and the truncation trick pulls the first ``truncation_cutoff`` of them (all when None) towards
    :math:`\bar w`: :math:`w' = \bar w + \psi (w - \bar w)`.

    The state-dict keys are StyleGAN2-ADA's (``embed.weight``, ``fc0.weight``, ..., ``w_avg``).

    Args:
        z_dim: size of the latent ``z``; 0 for a purely conditional network.
        c_dim: size of the conditioning label ``c``; 0 for none.
        w_dim: size of ``w``.
        num_ws: number of ``w`` to broadcast to (one per style input of the synthesis network); None
            returns ``(N, w_dim)`` without broadcast.
        num_layers: number of fully connected layers.
        embed_features: size of the class embedding; None is ``w_dim``.
        layer_features: width of the hidden layers; None is ``w_dim``.
        act: activation of every layer (with its default gain; see
            :func:`ganblocks.functional.bias_act`).
        lr_multiplier: learning-rate multiplier of the fully connected layers.
        w_avg_beta: decay of the moving average of ``w``; None tracks no average (and forbids truncation).
        device: device of the parameters.
        dtype: dtype of the parameters (``w_avg`` starts in float32; ``.to()`` converts it like any buffer).

    Shape:
        - z: ``(N, z_dim)``.
        - c: ``(N, c_dim)``; None (or ``(N, 0)``) when ``c_dim == 0``.
        - Output: ``(N, num_ws, w_dim)``, or ``(N, w_dim)`` when ``num_ws`` is None.

    Example:
        >>> import torch
        >>> from ganblocks.generators import MappingNetwork
        >>> mapping = MappingNetwork(16, 0, 8, 6, num_layers=2)
        >>> ws = mapping(torch.randn(4, 16), update_emas=True)
        >>> ws.shape
        torch.Size([4, 6, 8])
        >>> torch.equal(mapping(torch.randn(4, 16), truncation_psi=0.0)[0, 0], mapping.w_avg)
        True

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, sections 2 and 3.1 (mapping network, style mixing), appendix B (truncation trick); Karras et
        al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020 (conditioning).
    """

    w_avg: Optional[torch.Tensor]

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: Optional[int],
        *,
        num_layers: int = 8,
        embed_features: Optional[int] = None,
        layer_features: Optional[int] = None,
        act: Activation = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: Optional[float] = 0.995,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, minimum=0)
        self.c_dim = check_int("c_dim", c_dim, minimum=0)
        if z_dim == 0 and c_dim == 0:
            raise ValueError(
                "z_dim and c_dim must not both be 0 (the network would have no input), got 0 and 0"
            )
        self.w_dim = check_int("w_dim", w_dim)
        self.num_ws = None if num_ws is None else check_int("num_ws", num_ws)
        self.num_layers = check_int("num_layers", num_layers)
        self.embed_features = w_dim if embed_features is None else check_int("embed_features", embed_features)
        self.layer_features = w_dim if layer_features is None else check_int("layer_features", layer_features)
        self.w_avg_beta = None if w_avg_beta is None else check_probability("w_avg_beta", w_avg_beta)
        self.lr_multiplier = lr_multiplier
        self.act: Activation = act
        self.embed = (
            EqualLinear(c_dim, self.embed_features, device=device, dtype=dtype) if c_dim > 0 else None
        )
        in_features = z_dim + (self.embed_features if c_dim > 0 else 0)
        features = [in_features] + [self.layer_features] * (num_layers - 1) + [w_dim]
        # Attributes fc0, fc1, ...: StyleGAN2-ADA's state-dict keys, so its weights load as they are.
        for idx, (a, b) in enumerate(zip(features[:-1], features[1:])):
            layer = EqualLinear(a, b, act=act, lr_multiplier=lr_multiplier, device=device, dtype=dtype)
            self.add_module(f"fc{idx}", layer)
        if self.w_avg_beta is None:
            self.register_buffer("w_avg", None)
        else:
            self.register_buffer("w_avg", torch.zeros(w_dim, device=device, dtype=torch.float32))

    @property
    def layers(self) -> tuple[EqualLinear, ...]:
        """The fully connected layers ``fc0, fc1, ...`` in order."""
        return tuple(getattr(self, f"fc{idx}") for idx in range(self.num_layers))

    def _check_inputs(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor]) -> int:
        n: Optional[int] = None
        if self.z_dim > 0:
            z = check_float_tensor("z", z, exact_ndim=2)
            if z.shape[1] != self.z_dim:
                raise ValueError(
                    f"z must have shape (N, z_dim) with z_dim = {self.z_dim}, got {tuple(z.shape)}"
                )
            n = z.shape[0]
        elif z is not None and (z.ndim != 2 or z.shape[1] != 0):
            raise ValueError(f"z must be None or of shape (N, 0) since z_dim = 0, got {tuple(z.shape)}")
        if self.c_dim > 0:
            c = check_float_tensor("c", c, exact_ndim=2)
            if c.shape[1] != self.c_dim or (n is not None and c.shape[0] != n):
                expected = f"({'N' if n is None else n}, {self.c_dim})"
                raise ValueError(
                    f"c must have shape (N, c_dim) = {expected} (c_dim = {self.c_dim}, N from z), "
                    f"got {tuple(c.shape)}"
                )
            n = c.shape[0]
        elif c is not None and (c.ndim != 2 or c.shape[1] != 0):
            raise ValueError(f"c must be None or of shape (N, 0) since c_dim = 0, got {tuple(c.shape)}")
        assert n is not None
        return n

    def forward(
        self,
        z: Optional[torch.Tensor],
        c: Optional[torch.Tensor] = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: Optional[int] = None,
        update_emas: Optional[bool] = None,
    ) -> torch.Tensor:
        """Map ``z`` (and ``c``) to ``w``.

        Args:
            z: latents ``(N, z_dim)``; None when ``z_dim == 0``.
            c: labels ``(N, c_dim)``; None when ``c_dim == 0``.
            truncation_psi: :math:`\\psi`; 1 disables truncation, 0 returns ``w_avg``.
            truncation_cutoff: truncate only the first this many of the ``num_ws`` vectors; None truncates all.
            update_emas: update ``w_avg`` with this batch; None follows ``self.training`` (StyleGAN2-ADA's
                behaviour). Pass False for extra evaluations in a training step (style mixing, path length).

        Returns:
            ``(N, num_ws, w_dim)``, or ``(N, w_dim)`` when ``num_ws`` is None.
        """
        psi = check_finite("truncation_psi", truncation_psi)
        if truncation_cutoff is not None:
            check_int("truncation_cutoff", truncation_cutoff, minimum=0)
            if self.num_ws is None or truncation_cutoff > self.num_ws:
                raise ValueError(
                    f"truncation_cutoff must be None or an int in [0, num_ws] with num_ws = {self.num_ws}, "
                    f"got {truncation_cutoff}"
                )
        if psi != 1.0 and self.w_avg is None:
            raise ValueError(
                f"truncation_psi must be 1 when the network tracks no w_avg (w_avg_beta=None), got {psi}"
            )
        self._check_inputs(z, c)
        parts = []
        if self.z_dim > 0:
            assert z is not None
            parts.append(pixel_norm(z, eps=_EPS, dim=1))
        if self.embed is not None:
            assert c is not None
            parts.append(pixel_norm(self.embed(c), eps=_EPS, dim=1))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)

        if update_emas is None:
            update_emas = self.training
        if update_emas and self.w_avg is not None and self.w_avg_beta is not None:
            self._update_w_avg(x.detach())

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1.0:
            assert self.w_avg is not None
            avg = self.w_avg.to(x.dtype)
            if truncation_cutoff is None:
                x = avg.lerp(x, psi)
            else:
                x = torch.cat([avg.lerp(x[:, :truncation_cutoff], psi), x[:, truncation_cutoff:]], dim=1)
        return x

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor) -> None:
        """``w_avg <- lerp(mean_n(w), w_avg, beta)``, at least in float32; a batch with a non-finite ``w`` is
        skipped. The choice is made on the device (``torch.where``), so there is no host synchronization.
        """
        assert self.w_avg is not None and self.w_avg_beta is not None
        dtype = torch.promote_types(self.w_avg.dtype, torch.float32)
        avg = self.w_avg.to(dtype)
        mean = w.to(dtype).mean(dim=0)
        updated = mean.lerp(avg, self.w_avg_beta)
        self.w_avg.copy_(torch.where(torch.isfinite(mean).all(), updated, avg))

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"num_layers={self.num_layers}, lr_multiplier={self.lr_multiplier}, w_avg_beta={self.w_avg_beta}"
        )


def style_mixing(
    mapping: Callable[..., torch.Tensor],
    z: Optional[torch.Tensor],
    c: Optional[torch.Tensor],
    ws: torch.Tensor,
    *,
    prob: float = 0.9,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    r"""Style mixing regularization: with probability ``prob``, take the styles after a random crossover
    layer from a second latent.

    One draw per batch (as StyleGAN2-ADA's ``loss.py`` and rosinality's ``Generator.forward``): a crossover
    :math:`k \sim \mathcal{U}\{1, \dots, \text{num\_ws} - 1\}`, mixing with probability ``prob`` (else
    :math:`k = \text{num\_ws}`), a fresh :math:`z_2 \sim \mathcal{N}(0, I)` of the shape of ``z``, and

    .. math::
        w'_{n,l} = \begin{cases} w_{n,l} & l < k \\ \mathrm{mapping}(z_2, c)_{n,l} & l \ge k \end{cases}

    ``mapping`` is a :class:`MappingNetwork` (run without updating ``w_avg`` and without truncation) or any
    callable from latents to styles, such as rosinality's ``G.style``: it is called as ``mapping(z2)``, or
    ``mapping(z2, c)`` when ``c`` is given, and may return ``(N, w_dim)`` (broadcast to every layer) or
    ``(N, num_ws, w_dim)``. The number of styles ``num_ws`` is ``ws.shape[1]``. The choice is made with
    ``torch.where`` on the device, so there is no host synchronization.

    Args:
        mapping: the mapping that produced ``ws``: a :class:`MappingNetwork` or a callable ``z -> w``.
        z: the latents ``(N, z_dim)`` behind ``ws`` (None only for a :class:`MappingNetwork` with
            ``z_dim == 0``; then nothing is mixed).
        c: their labels ``(N, c_dim)``, reused for the second latent; None when there are none.
        ws: styles ``(N, num_ws, w_dim)`` with ``num_ws >= 2``, e.g. ``mapping(z, c)``.
        prob: probability of mixing this batch.
        generator: random generator for the crossover, the coin and :math:`z_2` (on its own device).

    Returns:
        The mixed styles, ``(N, num_ws, w_dim)`` (a new tensor; ``ws`` is not modified).

    Example:
        >>> import torch
        >>> from ganblocks.generators import MappingNetwork, style_mixing
        >>> mapping = MappingNetwork(8, 0, 4, 5, num_layers=2)
        >>> z = torch.randn(2, 8)
        >>> ws = mapping(z)
        >>> mixed = style_mixing(mapping, z, None, ws, prob=1.0, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(mixed[:, 0], ws[:, 0]), torch.equal(mixed[:, -1], ws[:, -1])
        (True, False)
        >>> style = torch.nn.Linear(8, 4)  # any z -> w callable, e.g. rosinality's G.style
        >>> ws = style(z).unsqueeze(1).repeat(1, 5, 1)
        >>> style_mixing(style, z, None, ws, prob=1.0).shape
        torch.Size([2, 5, 4])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, section 3.1.
    """
    p = check_probability("prob", prob)
    if not callable(mapping):
        raise TypeError(
            f"mapping must be a MappingNetwork or a callable z -> w, got {type(mapping).__name__}"
        )
    ws = check_float_tensor("ws", ws, exact_ndim=3)
    network = mapping if isinstance(mapping, MappingNetwork) else None
    num_ws = ws.shape[1]
    if network is not None and network.num_ws is not None:
        if tuple(ws.shape[1:]) != (network.num_ws, network.w_dim):
            raise ValueError(
                f"ws must have shape (N, num_ws, w_dim) = (N, {network.num_ws}, {network.w_dim}), "
                f"got {tuple(ws.shape)}"
            )
    if num_ws < 2:
        raise ValueError(f"ws must hold num_ws >= 2 styles for style mixing, got shape {tuple(ws.shape)}")
    if network is not None:
        n = network._check_inputs(z, c)
    else:
        z = check_float_tensor("z", z, exact_ndim=2)
        n = z.shape[0]
    if n != ws.shape[0]:
        raise ValueError(f"ws must have the batch size of z and c ({n}), got shape {tuple(ws.shape)}")
    if (network is not None and network.z_dim == 0) or p == 0.0:
        return ws.clone()
    assert z is not None
    draw_device = generator.device if generator is not None else z.device
    cutoff = torch.randint(1, num_ws, (), generator=generator, device=draw_device)
    coin = torch.rand((), generator=generator, device=draw_device)
    cutoff = torch.where(coin < p, cutoff, torch.full_like(cutoff, num_ws)).to(ws.device)
    z2 = torch.randn(z.shape, generator=generator, device=draw_device, dtype=z.dtype).to(z.device)
    if network is not None:
        ws2 = network(z2, c, update_emas=False)
    else:
        ws2 = mapping(z2) if c is None else mapping(z2, c)
    if not isinstance(ws2, torch.Tensor) or (
        tuple(ws2.shape) != tuple(ws.shape) and tuple(ws2.shape) != (n, ws.shape[2])
    ):
        got = tuple(ws2.shape) if isinstance(ws2, torch.Tensor) else type(ws2).__name__
        raise ValueError(
            f"mapping must return styles of shape (N, w_dim) = {(n, ws.shape[2])} or (N, num_ws, w_dim) = "
            f"{tuple(ws.shape)}, got {got}"
        )
    if ws2.ndim == 2:
        ws2 = ws2.unsqueeze(1)
    layer = torch.arange(num_ws, device=ws.device).view(1, num_ws, 1)
    return torch.where(layer < cutoff, ws, ws2.to(ws.dtype))
