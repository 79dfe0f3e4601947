"""ganblocks: GAN building blocks for PyTorch on fused Triton ops with exact PyTorch references.

Modules live here; every function is in :mod:`ganblocks.functional`; backend control in :mod:`ganblocks.ops`;
the readers of other projects' checkpoints in :mod:`ganblocks.checkpoints` (also exported here).
"""

from . import checkpoints, functional, ops
from .checkpoints import (
    RosinalityCheckpoint,
    StyleGAN2ADACheckpoint,
    load_rosinality_checkpoint,
    load_stylegan2_ada_pkl,
)
from .discriminators import (
    DiscriminatorOutput,
    ImagePyramid,
    MSGDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    StyleGAN2Discriminator,
)
from .generators import (
    AdaINSynthesisBlock,
    AdaINSynthesisInput,
    AdaINSynthesisLayer,
    ConstantInput,
    FeatureEncoder,
    GlobalGenerator,
    LocalEnhancer,
    MappingNetwork,
    MSGGeneratorHeads,
    ResnetBlock,
    StyleGAN2Generator,
)
from .layers import (
    AdaIN,
    BiasAct,
    Blur,
    Downsample2d,
    EqualConv2d,
    EqualLinear,
    FadeInSchedule,
    FusedLeakyReLU,
    MinibatchDiscrimination,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    ToRGB,
    Upsample2d,
    equalized_lr,
    remove_equalized_lr,
)
from .losses import AdversarialLoss, FeatureMatchingLoss, VGGLoss
from .ops import use_backend
from .penalties import (
    ConsistencyRegularization,
    DraganPenalty,
    GradientPenalty,
    HistoricalAveraging,
    LazyRegularizer,
    PathLengthPenalty,
    R1Penalty,
    R2Penalty,
)
from .training import AdaptiveAugmentProbability, DiffAugment, ImagePool, ModelEMA

__version__ = "0.1.0"

__all__ = [
    "AdaIN",
    "AdaINSynthesisBlock",
    "AdaINSynthesisInput",
    "AdaINSynthesisLayer",
    "AdaptiveAugmentProbability",
    "AdversarialLoss",
    "BiasAct",
    "Blur",
    "ConsistencyRegularization",
    "ConstantInput",
    "DiffAugment",
    "DiscriminatorOutput",
    "Downsample2d",
    "DraganPenalty",
    "EqualConv2d",
    "EqualLinear",
    "FadeInSchedule",
    "FeatureEncoder",
    "FeatureMatchingLoss",
    "FusedLeakyReLU",
    "GlobalGenerator",
    "GradientPenalty",
    "HistoricalAveraging",
    "ImagePool",
    "ImagePyramid",
    "LazyRegularizer",
    "LocalEnhancer",
    "MSGDiscriminator",
    "MSGGeneratorHeads",
    "MappingNetwork",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "ModelEMA",
    "ModulatedConv2d",
    "MultiScaleDiscriminator",
    "NoiseInjection",
    "PatchDiscriminator",
    "PathLengthPenalty",
    "PixelNorm",
    "R1Penalty",
    "R2Penalty",
    "ResnetBlock",
    "RosinalityCheckpoint",
    "StyleGAN2ADACheckpoint",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "ToRGB",
    "Upsample2d",
    "VGGLoss",
    "__version__",
    "checkpoints",
    "equalized_lr",
    "functional",
    "load_rosinality_checkpoint",
    "load_stylegan2_ada_pkl",
    "ops",
    "remove_equalized_lr",
    "use_backend",
]
