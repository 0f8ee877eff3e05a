"""Small WaveNets for tests: every configuration the samplers must agree on."""

from __future__ import annotations

import torch

from sensorium.fastgen.wavenet import WaveNet, WaveNetConfig


def small_wavenet(
    kernel_size: int = 2,
    global_classes: int = 0,
    local_channels: int = 0,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> WaveNet:
    """A randomly initialised WaveNet small enough to run the naive sampler in tests.

    Gate and residual widths differ, so a transposed weight would fail loudly.
    """
    torch.manual_seed(seed)
    cfg = WaveNetConfig(
        residual_channels=8,
        gate_channels=6,
        skip_channels=10,
        kernel_size=kernel_size,
        layers_per_stack=4,
        stacks=2,
        quantization=32,
        global_classes=global_classes,
        local_channels=local_channels,
        local_hop=7,
    )
    model = WaveNet(cfg).to(dtype)
    # Larger than default weights make the logits peaked enough that a wrong tap or bias
    # changes which class is drawn.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def conditioning(model: WaveNet, batch: int, frames: int = 40, seed: int = 0):
    """Global ids (B,) and local frames (B, C, F) fitting `model`, or None where unused."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    dtype = next(model.parameters()).dtype
    gid = (
        torch.randint(0, cfg.global_classes, (batch,), generator=g) if cfg.global_classes else None
    )
    local = (
        torch.randn(batch, cfg.local_channels, frames, generator=g, dtype=dtype)
        if cfg.local_channels
        else None
    )
    return gid, local
