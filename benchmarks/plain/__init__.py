"""The plain-PyTorch formulations users write today (pix2pixHD, StyleGAN2, MSG-GAN), from the published code:
the ``plain`` baseline of every benchmark, and what the ``compile`` provider compiles. No ganblocks imports."""
