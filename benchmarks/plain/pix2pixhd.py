"""pix2pixHD's networks and losses as published (NVIDIA/pix2pixHD ``models/networks.py``): the
discriminators with intermediate features (``getIntermFeat``), ``GANLoss`` (LSGAN), the feature-matching
loop of ``Pix2PixHDModel``, ``VGGLoss`` on VGG19's five slices (random weights, no download),
``GlobalGenerator`` and the instance-wise average pooling loop of ``Encoder.forward``."""

from __future__ import annotations

import torch
from torch import nn


class NLayerDiscriminator(nn.Module):
    """``NLayerDiscriminator(getIntermFeat=True)``: ``[*features, logits]``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        self.n_layers = n_layers
        sequence = [[nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=2), nn.LeakyReLU(0.2, True)]]
        nf = ndf
        for n in range(1, n_layers + 1):
            nf_prev, nf = nf, min(nf * 2, 512)
            conv = nn.Conv2d(nf_prev, nf, kernel_size=4, stride=2 if n < n_layers else 1, padding=2)
            sequence += [[conv, nn.InstanceNorm2d(nf, affine=False), nn.LeakyReLU(0.2, True)]]
        sequence += [[nn.Conv2d(nf, 1, kernel_size=4, stride=1, padding=2)]]
        for n, layers in enumerate(sequence):
            setattr(self, "model" + str(n), nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        res = [x]
        for n in range(self.n_layers + 2):
            res.append(getattr(self, "model" + str(n))(res[-1]))
        return res[1:]


class MultiscaleDiscriminator(nn.Module):
    """Per scale ``[*features, logits]``, finest first; ``AvgPool2d(3, 2, 1, count_include_pad=False)``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_d: int = 3) -> None:
        super().__init__()
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for i, d in enumerate(reversed(self.scales)):
            result.append(d(x))
            if i != len(self.scales) - 1:
                x = self.downsample(x)
        return result


class GANLoss(nn.Module):
    """``GANLoss(use_lsgan=True)``: MSE of the last tensor of each scale to a filled target."""

    def forward(self, pred: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
        loss = torch.zeros((), device=pred[0][-1].device)
        for pred_i in pred:
            target = torch.full_like(pred_i[-1], 1.0 if target_is_real else 0.0)
            loss = loss + nn.functional.mse_loss(pred_i[-1], target)
        return loss


def feature_matching_loss(
    pred_fake: list[list[torch.Tensor]], pred_real: list[list[torch.Tensor]]
) -> torch.Tensor:
    """The ``loss_G_GAN_Feat`` loop of ``Pix2PixHDModel.forward`` (3 scales, 3 layers, lambda_feat 10)."""
    feat_weights, d_weights, lambda_feat = 4.0 / (3 + 1), 1.0 / 3, 10.0
    loss = torch.zeros((), device=pred_fake[0][0].device)
    for i in range(3):
        for j in range(len(pred_fake[i]) - 1):
            l1 = nn.functional.l1_loss(pred_fake[i][j], pred_real[i][j].detach())
            loss = loss + d_weights * feat_weights * l1 * lambda_feat
    return loss


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` (same module indices), randomly initialized."""
    layers: list[nn.Module] = []
    cin = 3
    for v in [64, 64, 0, 128, 128, 0, *[256] * 4, 0, *[512] * 4, 0, *[512] * 4, 0]:
        layers += [nn.MaxPool2d(2, 2)] if v == 0 else [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
        cin = v or cin
    return nn.Sequential(*layers)


class VGGLoss(nn.Module):
    """``VGGLoss``: ``Vgg19`` slices ending at relu1_1 … relu5_1 (frozen), L1, weights 1/32 … 1."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        cuts = [0, 2, 7, 12, 21, 30]
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(cuts, cuts[1:]))
        self.requires_grad_(False)
        self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = torch.zeros((), device=x.device)
        for w, s in zip(self.weights, self.slices):
            x, y = s(x), s(y)
            loss = loss + w * nn.functional.l1_loss(x, y.detach())
        return loss


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)  # type: ignore[no-any-return]


class GlobalGenerator(nn.Module):
    """``GlobalGenerator``: one ``nn.Sequential``, ``weights_init`` (convolutions ``N(0, 0.02²)``)."""

    def __init__(
        self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 9
    ):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(n_downsampling):
            c = ngf * 2**i
            model += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(c * 2), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 2**n_downsampling) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            c = ngf * 2 ** (n_downsampling - i)
            up = nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1)
            model += [up, nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]


def instance_avg_pool_loop(outputs: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """``Encoder.forward``'s pooling, loop for loop: per instance id (``np.unique`` there, the same host
    sync here), sample and channel, gather the id's pixels, take their mean, scatter it into a clone."""
    outputs_mean = outputs.clone()
    for i in torch.unique(inst).tolist():
        for b in range(outputs.size()[0]):
            indices = (inst[b : b + 1] == int(i)).nonzero()  # n x 4
            for j in range(outputs.size()[1]):
                idx = (indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3])
                outputs_mean[idx] = torch.mean(outputs[idx]).expand_as(outputs[idx])
    return outputs_mean
