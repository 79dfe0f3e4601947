"""ganblocks: GAN building blocks for PyTorch on fused Triton ops with exact PyTorch references.

Modules live here; every function is in :mod:`ganblocks.functional`; backend control in :mod:`ganblocks.ops`.
"""

from . import functional, ops
from .discriminators import (
    DiscriminatorOutput,
    ImagePyramid,
    MSGDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
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
from .training import AdaptiveAugmentProbability, AugmentPipe, DiffAugment, ImagePool, ModelEMA

__version__ = "0.1.0"

__all__ = [
    "AdaIN",
    "AdaINSynthesisBlock",
    "AdaINSynthesisInput",
    "AdaINSynthesisLayer",
    "AdaptiveAugmentProbability",
    "AdversarialLoss",
    "AugmentPipe",
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
    "ToRGB",
    "Upsample2d",
    "VGGLoss",
    "__version__",
    "equalized_lr",
    "functional",
    "ops",
    "remove_equalized_lr",
    "use_backend",
]
