"""Drawing the next class from logits, identically in every sampler.

Every sampler consumes the same pre-drawn uniform numbers, one per stream and step, and turns
logits into a class by inverting the softmax's cumulative distribution in float64. Two samplers
whose logits agree (to float64 rounding) therefore pick the same classes from the same seed.
"""

from __future__ import annotations

import torch

from sensorium.common.errors import SensoriumError


def draw_uniforms(seed: int, *shape: int) -> torch.Tensor:
    """float64 uniforms in [0, 1) of `shape` from a generator seeded with `seed`.

    The WaveNet samplers draw (steps, B), one per stream and step; the PixelCNN samplers
    (N, H, W, 1 + C), one set per pixel of every image asked for.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator, dtype=torch.float64)


def check_temperature(temperature: float) -> float:
    if not temperature >= 0.0:  # also rejects NaN
        raise SensoriumError(f"temperature {temperature!r} must be >= 0 (0 means greedy)")
    return float(temperature)


def sample_from_logits(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float):
    """Pick one class per row.

    Args:
        logits: (B, Q) scores.
        uniforms: (B,) float64 numbers in [0, 1).
        temperature: 0 picks the first highest-scoring class; otherwise the logits are divided
            by it before the softmax.

    Returns:
        (B,) int64 classes: the first class whose cumulative probability exceeds u.
    """
    if temperature == 0.0:
        return logits.argmax(dim=1)
    scaled = logits.double() / temperature
    weights = torch.exp(scaled - scaled.max(dim=1, keepdim=True).values)  # (B, Q)
    cdf = torch.cumsum(weights, dim=1)
    targets = uniforms.to(cdf.device)[:, None] * cdf[:, -1:]  # (B, 1)
    picked = torch.searchsorted(cdf, targets, right=True)[:, 0]
    return picked.clamp(max=logits.shape[1] - 1)
