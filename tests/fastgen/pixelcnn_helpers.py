"""Small PixelCNNs for tests: every configuration the samplers must agree on."""

from __future__ import annotations

import torch

from sensorium.fastgen.pixelcnn import PixelCNN, PixelCNNConfig


def small_pixelcnn(
    channels: int = 1,
    height: int = 7,
    width: int = 9,
    resnets: int = 1,
    filters: int = 6,
    mixtures: int = 3,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> PixelCNN:
    """A randomly initialised PixelCNN small enough to run the naive sampler in tests.

    Biases are randomised too (PyTorch starts some at zero), so a bias applied where the full
    pass has zero padding, or left out where it has one, changes the output.
    """
    torch.manual_seed(seed)
    cfg = PixelCNNConfig(
        channels=channels,
        height=height,
        width=width,
        filters=filters,
        resnets=resnets,
        mixtures=mixtures,
        dropout=0.0,
    )
    model = PixelCNN(cfg).to(dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
    return model.eval()


def random_images(batch: int, channels: int, height: int, width: int, seed: int = 0):
    """(B, C, H, W) levels 0..255 (uint8) and the same scaled to [-1, 1] in float64."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, (batch, channels, height, width), generator=g)
    return levels.to(torch.uint8), levels.double() / 255 * 2 - 1
