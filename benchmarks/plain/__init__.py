"""The plain-PyTorch formulations users write today, written here from the published code and formulas.

They are the baseline of every benchmark ("plain" provider) and what ``torch.compile`` compiles
("compile" provider). They do not import ganblocks.

- :mod:`.stylegan2`: StyleGAN2's ``bias_act`` reference / ``fused_leaky_relu`` fallback, equalized layers,
  pixel norm, AdaIN, noise injection, minibatch standard deviation, an equalized-LR discriminator.
- :mod:`.pix2pixhd`: pix2pixHD's ``NLayerDiscriminator``, ``MultiscaleDiscriminator``, ``GANLoss``,
  feature-matching loop, ``Vgg19`` / ``VGGLoss``.
- :mod:`.msggan`: MSG-GAN's discriminator and its WGAN-GP.
"""
