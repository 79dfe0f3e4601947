r"""Self-attention over positions of a feature map (SAGAN, Zhang et al. 2019), as SAGAN's and BigGAN's code."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .._checks import check_input, check_input_dtype, check_int


class SelfAttention2d(nn.Module):
    r"""SAGAN's self-attention block: every position attends to every (pooled) position, added back with a gain γ.

    .. math::
        q = W_q x,\quad k = \operatorname{maxpool}(W_k x),\quad v = \operatorname{maxpool}(W_v x),\qquad
        \beta_{ij} = \operatorname{softmax}_j\big(q_i^\top k_j\big),\qquad
        y_i = x_i + \gamma\, W_o \sum_j \beta_{ij} v_j

    :math:`W_q, W_k` are 1×1 convolutions to :math:`C/8` channels, :math:`W_v` to :math:`C/2`, :math:`W_o`
    back to :math:`C` (all without bias); :math:`i` runs over the :math:`HW` positions, :math:`j` over the
    :math:`HW/p^2` positions of the keys and values after a :math:`p \times p` max pool (``kv_pool``);
    no :math:`1/\sqrt{d}` scaling. γ is a learned scalar that starts at 0, so the block starts as the
    identity and the network learns how much non-local evidence to use.

    Variant: this is the block of SAGAN's official TensorFlow code (``sn_non_local_block_sim``) and BigGAN's
    (``BigGAN-PyTorch``'s ``layers.Attention``), which agree: keys and values max-pooled 2×2 (four times
    fewer keys, four times less attention memory, the same expressiveness in their experiments), values
    at :math:`C/2` channels with an output projection back to :math:`C`. The paper's equations have no
    pooling and :math:`C` value channels without the projection; ``kv_pool=1`` drops the pooling.

    The attention is written out with ``bmm`` and ``softmax`` rather than
    ``scaled_dot_product_attention``, whose fused CUDA kernels have no double backward: a discriminator
    under R1 or WGAN-GP backpropagates through a gradient of this block.

    Args:
        in_channels: :math:`C`, at least 8.
        kv_pool: max-pool size (and stride) of keys and values: 2 as the official code, 1 for none.
        spectral_norm: wrap the four 1×1 convolutions with
            ``torch.nn.utils.parametrizations.spectral_norm`` (as SAGAN and BigGAN do in G and D).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - input: :math:`(N, C, H, W)`, :math:`H` and :math:`W` divisible by ``kv_pool``.
        - output: the same shape.

    Example:
        >>> import torch
        >>> from ganblocks import SelfAttention2d
        >>> attn = SelfAttention2d(64, spectral_norm=True)
        >>> x = torch.randn(2, 64, 16, 16)
        >>> torch.equal(attn(x), x)  # gamma starts at 0
        True

    Reference:
        Zhang, Goodfellow, Metaxas & Odena, "Self-Attention Generative Adversarial Networks", ICML 2019;
        Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis"
        (BigGAN), ICLR 2019.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        kv_pool: int = 2,
        spectral_norm: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=8)
        self.kv_pool = check_int("kv_pool", kv_pool, minimum=1)
        self.spectral_norm = bool(spectral_norm)
        c = self.in_channels
        self.qk_channels, self.v_channels = c // 8, c // 2

        def conv(cin: int, cout: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 1, bias=False, device=device, dtype=dtype)
            nn.init.xavier_uniform_(layer.weight)  # SAGAN's TensorFlow default, xavier_initializer
            return _spectral_norm(layer) if self.spectral_norm else layer

        self.query = conv(c, self.qk_channels)
        self.key = conv(c, self.qk_channels)
        self.value = conv(c, self.v_channels)
        self.out = conv(self.v_channels, c)
        self.gamma = nn.Parameter(torch.zeros((), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus γ times the attention output."""
        check_input("x", x, exact=4)
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(
                f"x must have {self.in_channels} channels (N, C, H, W), got shape {tuple(x.shape)}"
            )
        check_input_dtype("x", x, self)
        p = self.kv_pool
        if h % p or w % p:
            raise ValueError(
                f"x's height and width must be divisible by kv_pool={p} (keys and values are max-pooled "
                f"{p}×{p}), got shape {tuple(x.shape)}"
            )
        q = self.query(x).reshape(n, self.qk_channels, h * w)
        k, v = self.key(x), self.value(x)
        if p > 1:
            k, v = F.max_pool2d(k, p), F.max_pool2d(v, p)
        k = k.reshape(n, self.qk_channels, -1)
        v = v.reshape(n, self.v_channels, -1)
        beta = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (N, HW, HW/p²): rows sum to 1
        o = torch.bmm(v, beta.transpose(1, 2)).reshape(n, self.v_channels, h, w)
        out: torch.Tensor = self.out(o)
        return x + self.gamma * out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, kv_pool={self.kv_pool}, spectral_norm={self.spectral_norm}"
