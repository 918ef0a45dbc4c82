"""afdm-study: the Adversarial Feature Deformation Module (Bhunia et al., CVPR 2019),
its recognition/spotting backbones, the alternating trainer and the study around them."""

__version__ = "0.1.0"
