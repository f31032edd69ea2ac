"""metaaug: meta-learned GAN initializations for few-shot data augmentation."""

__version__ = "0.1.0"
