"""A user backbone for the tests, named on the command line as FILE.py:tiny_vit."""

import torch

from sensorium.lorax.backbone import VisionTransformer, ViTConfig


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(ViTConfig(image_size=8, patch_size=4, dim=16, depth=2, heads=2))
