"""Generators against their published plain formulations.

- ``global_generator``: ``ganblocks.GlobalGenerator`` (pix2pixHD's G1: instance norm + ReLU in one
  ``instance_norm_act`` pass, head bias + tanh in one ``bias_act`` pass) vs pix2pixHD's ``GlobalGenerator``
  (one ``nn.Sequential`` of ``ReflectionPad2d``, ``Conv2d``, ``InstanceNorm2d``, ``ReLU(inplace)``,
  ``ResnetBlock``, ``ConvTranspose2d``, ``Tanh``), same configuration and parameters (pix2pixHD's conv
  biases before the norms kept on both sides).

The input is a label map: it does not require grad (the backward ends at the parameters), and there is no
double backward (no penalty differentiates through pix2pixHD's generator).
"""

from __future__ import annotations

from typing import Any

import torch

import ganblocks

from .case import Case
from .config import Config
from .plain import pix2pixhd
from .providers import image_inputs, module_case, network_reference_skip

AREA = "generators"
MODES = ("forward", "backward", "forward+backward")


def _call1(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def global_generator_case(
    cfg: Config,
    shape: tuple[int, ...],
    *,
    base_channels: int,
    n_downsampling: int,
    n_blocks: int,
    dtype: str = "float32",
    layout: str = "contiguous",
) -> Case:
    c = shape[1]
    config = {"ngf": base_channels, "n_downsampling": n_downsampling, "n_blocks": n_blocks}
    return module_case(
        cfg,
        AREA,
        "global_generator",
        {"shape": list(shape), "dtype": dtype, "layout": layout, **config},
        MODES,
        ours=lambda: ganblocks.GlobalGenerator(
            c, 3, base_channels=base_channels, n_downsampling=n_downsampling, n_blocks=n_blocks
        ),
        plain=lambda: pix2pixhd.GlobalGenerator(
            c, 3, ngf=base_channels, n_downsampling=n_downsampling, n_blocks=n_blocks
        ),
        inputs=image_inputs(cfg, shape, layout, requires_grad=False),
        call=_call1,
        reference_skip=network_reference_skip(cfg),
        note="plain = pix2pixHD GlobalGenerator (nn.Sequential: ReflectionPad2d/Conv2d/InstanceNorm2d/"
        "ReLU(inplace)/ResnetBlock/ConvTranspose2d/Tanh, weights_init)",
    )


def cases(cfg: Config) -> list[Case]:
    # 36 input channels: pix2pixHD's Cityscapes input (35 one-hot labels and the instance boundary map).
    if cfg.quick:
        return [global_generator_case(cfg, (1, 4, 32, 32), base_channels=8, n_downsampling=2, n_blocks=2)]
    if cfg.cuda:
        return [
            global_generator_case(
                cfg,
                (1, 36, 512, 1024),
                base_channels=64,
                n_downsampling=4,
                n_blocks=9,
                dtype=dtype,
                layout=layout,
            )
            for dtype, layout in (("float32", "contiguous"), ("bfloat16", "channels_last"))
        ]
    # CPU: pix2pixHD's G1 depth (4 downsamplings, 9 residual blocks) at half its width, 128×128.
    return [global_generator_case(cfg, (1, 36, 128, 128), base_channels=32, n_downsampling=4, n_blocks=9)]
