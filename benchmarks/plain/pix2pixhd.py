"""pix2pixHD's networks and losses as published (NVIDIA/pix2pixHD ``models/networks.py``).

Written out here, line for line in behaviour: ``NLayerDiscriminator`` with instance norm (no affine) and
in-place LeakyReLU(0.2), ``MultiscaleDiscriminator`` (coarsest-scale network stored as ``layer0``, inputs
downsampled by ``AvgPool2d(3, 2, 1, count_include_pad=False)``), ``GANLoss`` (LSGAN: MSE against filled
target tensors), the feature-matching loop of ``Pix2PixHDModel``, ``VGGLoss`` on a VGG19 cut into five
slices (torchvision's ``vgg19().features`` layout; random weights here, no download), ``GlobalGenerator``
with its ``ResnetBlock`` (one ``nn.Sequential`` named ``model``, ``weights_init`` applied) and the
instance-wise average pooling loop of ``Encoder.forward``.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import torch
from torch import nn


class NLayerDiscriminator(nn.Module):
    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm_layer: Callable[[int], nn.Module] = functools.partial(nn.InstanceNorm2d, affine=False),
        get_interm_feat: bool = True,
    ) -> None:
        super().__init__()
        self.get_interm_feat = get_interm_feat
        self.n_layers = n_layers
        kw, padw = 4, 2
        sequence: list[list[nn.Module]] = [
            [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        ]
        nf = ndf
        for _ in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            sequence += [
                [
                    nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
                    norm_layer(nf),
                    nn.LeakyReLU(0.2, True),
                ]
            ]
        nf_prev, nf = nf, min(nf * 2, 512)
        sequence += [
            [
                nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
                norm_layer(nf),
                nn.LeakyReLU(0.2, True),
            ]
        ]
        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]
        if get_interm_feat:
            for n, layers in enumerate(sequence):
                setattr(self, "model" + str(n), nn.Sequential(*layers))
        else:
            self.model = nn.Sequential(*[m for layers in sequence for m in layers])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.get_interm_feat:
            res = [x]
            for n in range(self.n_layers + 2):
                res.append(getattr(self, "model" + str(n))(res[-1]))
            return res[1:]
        return [self.model(x)]


class MultiscaleDiscriminator(nn.Module):
    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, num_d: int = 3, get_interm_feat: bool = True
    ) -> None:
        super().__init__()
        self.num_d = num_d
        self.n_layers = n_layers
        self.get_interm_feat = get_interm_feat
        for i in range(num_d):
            net_d = NLayerDiscriminator(input_nc, ndf, n_layers, get_interm_feat=get_interm_feat)
            if get_interm_feat:
                for j in range(n_layers + 2):
                    setattr(self, f"scale{i}_layer{j}", getattr(net_d, "model" + str(j)))
            else:
                setattr(self, f"layer{i}", net_d.model)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)

    def single_d_forward(self, model: list[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
        if self.get_interm_feat:
            result = [x]
            for m in model:
                result.append(m(result[-1]))
            return result[1:]
        return [model[0](x)]

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale ``[*features, logits]``, finest scale first."""
        result = []
        x_down = x
        for i in range(self.num_d):
            k = self.num_d - 1 - i
            if self.get_interm_feat:
                model = [getattr(self, f"scale{k}_layer{j}") for j in range(self.n_layers + 2)]
            else:
                model = [getattr(self, f"layer{k}")]
            result.append(self.single_d_forward(model, x_down))
            if i != self.num_d - 1:
                x_down = self.downsample(x_down)
        return result


class GANLoss(nn.Module):
    """pix2pixHD's ``GANLoss`` with ``use_lsgan=True``: MSE of the last tensor of each scale to 1 or 0."""

    def __init__(self, target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        self.real_label = target_real_label
        self.fake_label = target_fake_label
        self.loss = nn.MSELoss()

    def get_target_tensor(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        return torch.full_like(pred, self.real_label if target_is_real else self.fake_label)

    def forward(self, pred: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
        loss = torch.zeros((), device=pred[0][-1].device)
        for pred_i in pred:
            last = pred_i[-1]
            loss = loss + self.loss(last, self.get_target_tensor(last, target_is_real))
        return loss


def feature_matching_loss(
    pred_fake: list[list[torch.Tensor]],
    pred_real: list[list[torch.Tensor]],
    *,
    num_d: int = 3,
    n_layers_d: int = 3,
    lambda_feat: float = 10.0,
) -> torch.Tensor:
    """The ``loss_G_GAN_Feat`` loop of pix2pixHD's ``Pix2PixHDModel.forward``."""
    criterion = nn.L1Loss()
    feat_weights = 4.0 / (n_layers_d + 1)
    d_weights = 1.0 / num_d
    loss = torch.zeros((), device=pred_fake[0][0].device)
    for i in range(num_d):
        for j in range(len(pred_fake[i]) - 1):
            loss = (
                loss
                + d_weights
                * feat_weights
                * criterion(pred_fake[i][j], pred_real[i][j].detach())
                * lambda_feat
            )
    return loss


VGG19_CFG: list[object] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` (same module indices), randomly initialized."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
    return nn.Sequential(*layers)


class Vgg19(nn.Module):
    """pix2pixHD's ``Vgg19``: five slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1; frozen."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.slice1 = nn.Sequential(*[features[x] for x in range(2)])
        self.slice2 = nn.Sequential(*[features[x] for x in range(2, 7)])
        self.slice3 = nn.Sequential(*[features[x] for x in range(7, 12)])
        self.slice4 = nn.Sequential(*[features[x] for x in range(12, 21)])
        self.slice5 = nn.Sequential(*[features[x] for x in range(21, 30)])
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h_relu1 = self.slice1(x)
        h_relu2 = self.slice2(h_relu1)
        h_relu3 = self.slice3(h_relu2)
        h_relu4 = self.slice4(h_relu3)
        h_relu5 = self.slice5(h_relu4)
        return [h_relu1, h_relu2, h_relu3, h_relu4, h_relu5]


class VGGLoss(nn.Module):
    """pix2pixHD's ``VGGLoss``: raw [-1, 1] input, L1, weights 1/32 … 1, target features detached."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.vgg = Vgg19(features)
        self.criterion = nn.L1Loss()
        self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_vgg, y_vgg = self.vgg(x), self.vgg(y)
        loss = torch.zeros((), device=x.device)
        for i in range(len(x_vgg)):
            loss = loss + self.weights[i] * self.criterion(x_vgg[i], y_vgg[i].detach())
        return loss


def weights_init(m: nn.Module) -> None:
    """pix2pixHD's ``weights_init``: convolution weights ``N(0, 0.02²)``, batch-norm weights ``N(1, 0.02²)``."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)  # type: ignore[arg-type]
    elif classname.find("BatchNorm2d") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)  # type: ignore[arg-type]
        nn.init.zeros_(m.bias)  # type: ignore[arg-type]


def instance_norm_layer(channels: int) -> nn.Module:
    """pix2pixHD's ``get_norm_layer('instance')``: ``InstanceNorm2d(affine=False)``."""
    return nn.InstanceNorm2d(channels, affine=False)


class ResnetBlock(nn.Module):
    """pix2pixHD's ``ResnetBlock`` with reflection padding: ``x + conv_block(x)``."""

    def __init__(
        self,
        dim: int,
        norm_layer: Callable[[int], nn.Module] = instance_norm_layer,
        activation: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        act = nn.ReLU(True) if activation is None else activation
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            norm_layer(dim),
            act,
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            norm_layer(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = x + self.conv_block(x)
        return y


class GlobalGenerator(nn.Module):
    """pix2pixHD's ``GlobalGenerator``: one ``nn.Sequential`` of reflection pads, convs, instance norms,
    ReLUs, residual blocks and transposed convs, ending in a 7×7 conv and tanh; ``weights_init`` applied."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 9,
        norm_layer: Callable[[int], nn.Module] = instance_norm_layer,
    ) -> None:
        super().__init__()
        activation = nn.ReLU(True)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
            norm_layer(ngf),
            activation,
        ]
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1),
                norm_layer(ngf * mult * 2),
                activation,
            ]
        mult = 2**n_downsampling
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * mult, norm_layer=norm_layer, activation=activation)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1
                ),
                norm_layer(int(ngf * mult / 2)),
                activation,
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)
        self.apply(weights_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.model(x)
        return y


def instance_avg_pool_loop(outputs: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """The instance-wise average pooling of pix2pixHD's ``Encoder.forward``, loop for loop.

    For every instance id in the batch (``np.unique`` there; ``torch.unique(...).tolist()`` here, the same
    host synchronization), every sample and every channel: gather the pixels of the id, take their mean and
    scatter it back into a clone of the features.
    """
    outputs_mean = outputs.clone()
    inst_list = torch.unique(inst).tolist()
    for i in inst_list:
        for b in range(outputs.size()[0]):
            indices = (inst[b : b + 1] == int(i)).nonzero()  # n x 4
            for j in range(outputs.size()[1]):
                output_ins = outputs[indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3]]
                mean_feat = torch.mean(output_ins).expand_as(output_ins)
                outputs_mean[indices[:, 0] + b, indices[:, 1] + j, indices[:, 2], indices[:, 3]] = mean_feat
    return outputs_mean
