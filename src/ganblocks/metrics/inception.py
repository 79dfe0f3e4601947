r"""The Inception-v3 network of FID, loaded from the standard ``pt_inception-2015-12-05`` weights file.

FID is defined by one network: the Inception-v3 graph of TensorFlow's ``inception-2015-12-05`` release, whose
pool3 (2048-d, after the final average pool) features the FID reference implementations compare. It differs
from torchvision's ``inception_v3`` in its weights and in three places of the graph, which pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` blocks reproduce and :class:`FIDInceptionV3` reproduces too:

- the 3x3 average pool in the pooling branch of the A, C and first E blocks (``Mixed_5b``-``5d``,
  ``Mixed_6b``-``6e``, ``Mixed_7b``) excludes the zero padding from its average (TensorFlow's ``SAME``
  average pool), where torchvision's counts it;
- the pooling branch of the last E block (``Mixed_7c``) takes a 3x3 *max* pool, not an average pool;
- the classifier has 1008 classes (unused here: FID reads the pool3 features).

The layers are built from ``torch.nn`` with torchvision's module names, so that the weights file (a state dict
of torchvision's ``Inception3`` layout, saved with ``torch.save``) loads unchanged; torchvision is not needed.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal, Optional, TypeAlias, TypedDict, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_tensor

FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
#: sha256 of ``pt_inception-2015-12-05-6726825d.pth`` (95,628,359 bytes); the file name carries its first
#: eight hex digits, the prefix ``torch.hub`` checks.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_INPUT_SIZE = 299
#: Channels of each of the four blocks' outputs (pytorch-fid's ``BLOCK_INDEX_BY_DIM``).
FID_BLOCK_CHANNELS: tuple[int, int, int, int] = (64, 192, 768, 2048)

WeightsSource: TypeAlias = Union[str, os.PathLike[str], Mapping[str, torch.Tensor], None]
_Pool: TypeAlias = Literal["avg", "max"]


class _Factory(TypedDict):
    device: Optional[Union[torch.device, str]]
    dtype: Optional[torch.dtype]


class _ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3, TensorFlow's) + ReLU: torchvision's ``BasicConv2d``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple[int, int]],
        *,
        stride: int = 1,
        padding: Union[int, tuple[int, int]] = 0,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=False, device=device, dtype=dtype
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_branch(x: torch.Tensor, pool: _Pool) -> torch.Tensor:
    """The pooling branch's 3x3, stride 1 pool of the FID graph (see the module docstring)."""
    if pool == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int, factory: _Factory) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1, **factory)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1, **factory)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2, **factory)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1, **factory)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1, **factory)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1, **factory)
        self.branch_pool = _ConvBN(in_channels, pool_features, 1, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_pool_branch(x, "avg"))
        return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class _InceptionB(nn.Module):
    """The grid reduction 35 -> 17 (``Mixed_6a``)."""

    def __init__(self, in_channels: int, factory: _Factory) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2, **factory)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1, **factory)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1, **factory)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _InceptionC(nn.Module):
    """Factorised 7x7 convolutions on the 17x17 grid (``Mixed_6b``-``6e``)."""

    def __init__(self, in_channels: int, channels_7x7: int, factory: _Factory) -> None:
        super().__init__()
        c7 = channels_7x7
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel_size, padding)
        self.branch1x1 = _ConvBN(in_channels, 192, 1, **factory)
        self.branch7x7_1 = _ConvBN(in_channels, c7, 1, **factory)
        self.branch7x7_2 = _ConvBN(c7, c7, row[0], padding=row[1], **factory)
        self.branch7x7_3 = _ConvBN(c7, 192, col[0], padding=col[1], **factory)
        self.branch7x7dbl_1 = _ConvBN(in_channels, c7, 1, **factory)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, col[0], padding=col[1], **factory)
        self.branch7x7dbl_3 = _ConvBN(c7, c7, row[0], padding=row[1], **factory)
        self.branch7x7dbl_4 = _ConvBN(c7, c7, col[0], padding=col[1], **factory)
        self.branch7x7dbl_5 = _ConvBN(c7, 192, row[0], padding=row[1], **factory)
        self.branch_pool = _ConvBN(in_channels, 192, 1, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = conv(d)
        bp = self.branch_pool(_pool_branch(x, "avg"))
        return torch.cat([self.branch1x1(x), b7, d, bp], 1)


class _InceptionD(nn.Module):
    """The grid reduction 17 -> 8 (``Mixed_7a``)."""

    def __init__(self, in_channels: int, factory: _Factory) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1, **factory)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2, **factory)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1, **factory)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3), **factory)
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0), **factory)
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _InceptionE(nn.Module):
    """The 8x8 blocks with split 1x3 / 3x1 outputs (``Mixed_7b``: average pool, ``Mixed_7c``: max pool)."""

    def __init__(self, in_channels: int, pool: _Pool, factory: _Factory) -> None:
        super().__init__()
        self.pool: _Pool = pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1, **factory)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1, **factory)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1), **factory)
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0), **factory)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1, **factory)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1, **factory)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1), **factory)
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0), **factory)
        self.branch_pool = _ConvBN(in_channels, 192, 1, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        bp = self.branch_pool(_pool_branch(x, self.pool))
        return torch.cat([self.branch1x1(x), b3, bd, bp], 1)

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_fid_inception_weights(
    path: Union[str, os.PathLike[str]], *, check_hash: bool = True
) -> dict[str, torch.Tensor]:
    """Read the FID Inception weights file: existence, sha256, then ``torch.load(weights_only=True)``.

    Nothing is downloaded. The file is ``pt_inception-2015-12-05-6726825d.pth`` from
    :data:`FID_WEIGHTS_URL` (fetch it on a machine with internet access and copy it over).

    Args:
        path: the file.
        check_hash: compare the file's sha256 with :data:`FID_WEIGHTS_SHA256` before unpickling anything;
            False for custom weights in the same format.

    Raises:
        FileNotFoundError: no such file (the message names it and where to get it).
        ValueError: the hash differs, or the file is not a state dict ``torch.load(weights_only=True)``
            accepts (a pickle carrying arbitrary objects is refused, never executed).
    """
    file = os.fspath(path)
    if not os.path.isfile(file):
        raise FileNotFoundError(
            f"FID Inception weights file not found: {file!r}. ganblocks never downloads it: get "
            f"{FID_WEIGHTS_FILE_NAME} from {FID_WEIGHTS_URL} on a machine with internet access "
            f"(e.g. `curl -LO {FID_WEIGHTS_URL}`), copy it here and pass its path."
        )
    if check_hash:
        found = _file_sha256(file)
        if found != FID_WEIGHTS_SHA256:
            raise ValueError(
                f"FID Inception weights file {file!r} has sha256 {found}, expected {FID_WEIGHTS_SHA256} "
                f"(the published {FID_WEIGHTS_FILE_NAME}): the file is damaged or a different one. Download "
                f"it again from {FID_WEIGHTS_URL}, or pass check_hash=False for custom weights in its format."
            )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"FID Inception weights file {file!r} could not be read with torch.load(weights_only=True) "
            f"({type(err).__name__}: {err}); expected a state dict saved with torch.save(state_dict, path)"
        ) from err
    if not isinstance(state, Mapping):
        raise ValueError(
            f"FID Inception weights file {file!r} holds a {type(state).__name__}, expected a state dict "
            "(a mapping of parameter names to tensors)"
        )
    return dict(state)


class FIDInceptionV3(nn.Module):
    r"""The FID feature network: Inception-v3 as TensorFlow's FID graph, giving 2048-d pool3 features.

    .. math::
        \hat x = 2\,\frac{\operatorname{resize}_{299}(x) - lo}{hi - lo} - 1, \qquad
        f(x) = \operatorname{avgpool}\big(\operatorname{Mixed\_7c}(\cdots\operatorname{Conv2d\_1a}(\hat x))\big)
        \in \mathbb{R}^{2048}

    The image is resized to 299x299 with bilinear interpolation (``align_corners=False``, no antialiasing),
    then mapped from ``input_range = (lo, hi)`` to [-1, 1], the range the network was trained on; both as
    pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``, which is the case
    ``input_range=(0, 1)``. Its outputs equal pytorch-fid's ``InceptionV3(output_blocks=[3])`` on the same
    weights (the test compares them). Resizing here differs from the TensorFlow reference's and clean-fid's
    PIL-bicubic resize: FID values are comparable only between runs that resize the same way.

    Eval mode, always: the BatchNorm layers use the file's running statistics (``train()`` keeps them in
    eval mode, since batch statistics would make the features depend on the batch), and the parameters are
    frozen (``requires_grad=False``); gradients still flow to the input.

    Args:
        weights: a path to ``pt_inception-2015-12-05-6726825d.pth`` (:data:`FID_WEIGHTS_URL`; read with
            :func:`load_fid_inception_weights`: sha256-checked, ``weights_only=True``, never downloaded), a
            state dict in its format, or None (random weights, with a warning: shapes and tests only). Keys
            ``fc.*`` (the 1008-way classifier) are accepted and ignored; ``num_batches_tracked`` is optional.
        input_range: ``(lo, hi)``, the range of the images passed: ``(0, 1)``, ``(-1, 1)`` for a tanh
            generator, ``(0, 255)`` for 8-bit images. Required: a wrong range silently shifts FID.
        resize_input: resize to 299x299 first (pytorch-fid's default). Without it the network takes any
            size of at least 75x75.
        check_hash: verify the file's sha256 against :data:`FID_WEIGHTS_SHA256`; False for custom weights.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - input: :math:`(N, 3, H, W)`, floating point or ``uint8`` (converted to the parameters' dtype).
        - output: :math:`(N, 2048)`. :meth:`blocks` gives the feature maps of the four blocks.

    Example:
        >>> import torch, warnings
        >>> from ganblocks.metrics import FIDInceptionV3
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # random weights; pass the path of the weights file
        ...     net = FIDInceptionV3(None, input_range=(-1, 1))
        >>> net(torch.rand(2, 3, 64, 64) * 2 - 1).shape
        torch.Size([2, 2048])

    Reference:
        Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
        NeurIPS 2017; Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016;
        Seitzer, pytorch-fid (the weights file and its ``FIDInception*`` blocks).
    """

    def __init__(
        self,
        weights: WeightsSource,
        *,
        input_range: tuple[float, float],
        resize_input: bool = True,
        check_hash: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if (
            not isinstance(input_range, (tuple, list))
            or len(input_range) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in input_range)
            or not float(input_range[0]) < float(input_range[1])
        ):
            raise ValueError(
                f"input_range must be a pair (lo, hi) of numbers with lo < hi, got {input_range!r}"
            )
        self.input_range: tuple[float, float] = (float(input_range[0]), float(input_range[1]))
        self.resize_input = bool(resize_input)
        factory: _Factory = {"device": device, "dtype": dtype}
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2, **factory)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3, **factory)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1, **factory)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1, **factory)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3, **factory)
        self.Mixed_5b = _InceptionA(192, 32, factory)
        self.Mixed_5c = _InceptionA(256, 64, factory)
        self.Mixed_5d = _InceptionA(288, 64, factory)
        self.Mixed_6a = _InceptionB(288, factory)
        self.Mixed_6b = _InceptionC(768, 128, factory)
        self.Mixed_6c = _InceptionC(768, 160, factory)
        self.Mixed_6d = _InceptionC(768, 160, factory)
        self.Mixed_6e = _InceptionC(768, 192, factory)
        self.Mixed_7a = _InceptionD(768, factory)
        self.Mixed_7b = _InceptionE(1280, "avg", factory)
        self.Mixed_7c = _InceptionE(2048, "max", factory)
        self._stages: tuple[tuple[nn.Module, ...], ...] = (
            (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3),
            (self.Conv2d_3b_1x1, self.Conv2d_4a_3x3),
            (
                *(self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a),
                *(self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e),
            ),
            (self.Mixed_7a, self.Mixed_7b, self.Mixed_7c),
        )
        self._load(weights, check_hash)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights: WeightsSource, check_hash: bool) -> None:
        if weights is None:
            warnings.warn(
                "FIDInceptionV3 is randomly initialised (weights=None): its features are not FID's; pass the "
                f"path of {FID_WEIGHTS_FILE_NAME} ({FID_WEIGHTS_URL})",
                UserWarning,
                stacklevel=3,
            )
            return
        if isinstance(weights, Mapping):
            source, raw = "the given state dict", dict(weights)
        elif isinstance(weights, (str, os.PathLike)):
            source, raw = repr(os.fspath(weights)), load_fid_inception_weights(weights, check_hash=check_hash)
        else:
            raise TypeError(f"weights must be a path, a state dict or None, got {type(weights).__name__}")
        expected = self.state_dict()
        # The classifier (1008 classes) is not part of the feature network.
        state = {str(k): v for k, v in raw.items() if not str(k).startswith("fc.")}
        missing = sorted(k for k in expected if k not in state and not k.endswith(".num_batches_tracked"))
        unexpected = sorted(k for k in state if k not in expected)
        wrong = [
            f"{k}: expected {tuple(expected[k].shape)}, got "
            f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
            for k, v in state.items()
            if k in expected and (not isinstance(v, torch.Tensor) or v.shape != expected[k].shape)
        ]
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys {missing[:4]}{' ...' if len(missing) > 4 else ''}")
            if unexpected:
                more = " ..." if len(unexpected) > 4 else ""
                parts.append(f"{len(unexpected)} unexpected keys {unexpected[:4]}{more}")
            if wrong:
                parts.append(f"wrong shapes [{'; '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''}]")
            raise ValueError(
                f"FID Inception weights from {source} do not match the network: {', '.join(parts)}; expected "
                f"the state dict of {FID_WEIGHTS_FILE_NAME} (torchvision Inception3 key names)"
            )
        self.load_state_dict(state, strict=False)

    def train(self, mode: bool = True) -> FIDInceptionV3:
        super().train(mode)
        # The BatchNorm running statistics are part of FID's definition.
        for m in self.modules():
            m.training = False
        return self

    def _prepare(self, x: object) -> torch.Tensor:
        t = check_tensor("x", x)
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(t.shape)}")
        dtype = self.Conv2d_1a_3x3.conv.weight.dtype
        if not t.is_floating_point():
            if t.dtype != torch.uint8:
                raise TypeError(f"x must be a floating-point or uint8 tensor, got dtype {t.dtype}")
            t = t.to(dtype)
        if self.resize_input:
            t = F.interpolate(t, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        elif min(t.shape[-2:]) < 75:
            raise ValueError(f"x must be at least 75x75 without resize_input, got {tuple(t.shape)}")
        lo, hi = self.input_range
        # scale 2 and shift -1 for (0, 1): the same rounding as pytorch-fid's 2 * x - 1.
        scale = 2.0 / (hi - lo)
        return t * scale + (-1.0 - lo * scale)

    def blocks(self, x: torch.Tensor, output_blocks: Sequence[int] = (0, 1, 2, 3)) -> list[torch.Tensor]:
        """The feature maps of the requested blocks, in ascending order, as pytorch-fid's ``output_blocks``.

        Block 0: after the first max pool, :math:`(N, 64, 73, 73)`; 1: after the second max pool,
        :math:`(N, 192, 35, 35)`; 2: the input of the auxiliary classifier, :math:`(N, 768, 17, 17)`;
        3: the final average pool, :math:`(N, 2048, 1, 1)` (sizes for a 299x299 input). The network runs
        only up to the last requested block.
        """
        if isinstance(output_blocks, int) or not output_blocks:
            raise ValueError(
                f"output_blocks must be a non-empty sequence of ints in 0..3, got {output_blocks!r}"
            )
        wanted = sorted(set(output_blocks))
        if any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 3 for b in wanted):
            raise ValueError(f"output_blocks must hold ints in 0..3, got {list(output_blocks)}")
        h = self._prepare(x)
        out: list[torch.Tensor] = []
        for index, stage in enumerate(self._stages):
            for layer in stage:
                h = layer(h)
            if index in (0, 1):
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            elif index == 3:
                h = F.adaptive_avg_pool2d(h, 1)
            if index in wanted:
                out.append(h)
            if index == wanted[-1]:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 2048-d pool3 features, ``(N, 2048)``."""
        return self.blocks(x, (3,))[0].flatten(1)

    def extra_repr(self) -> str:
        return f"input_range={self.input_range}, resize_input={self.resize_input}"
