"""The discretized logistic mixture of PixelCNN++: likelihood of 8-bit pixels and sampling.

Shape letters: B batch, C image channels, K mixture components, H, W image size, P parameters
per pixel, N any number of pixels.

Per pixel the network gives P = K * (1 + 2C + C(C-1)/2) numbers, laid out as
    [0, K)                        mixture logits
    [K, K + CK)                   means, channel-major (C, K)
    [K + CK, K + 2CK)             log scales (C, K), floored at LOG_SCALE_FLOOR
    [K + 2CK, P)                  coupling coefficients (C(C-1)/2, K), through tanh
The components are shared by the channels of a pixel; channel c's mean moves by
coeff(c', c) * x[c'] for every earlier channel c' (for RGB: G on R, B on R and G).

Pixel values are the 256 levels of an 8-bit image scaled to [-1, 1]; level v covers
[x - 1/255, x + 1/255] around its value x, and the end levels reach to -inf and +inf.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sensorium.fastgen.sampling import sample_from_logits

LEVELS = 256
LOG_SCALE_FLOOR = -7.0
# Uniforms for the logistic draw are kept this far inside (0, 1): log(u) stays finite.
UNIFORM_MARGIN = 1e-10


def parameters_per_pixel(channels: int, mixtures: int) -> int:
    return mixtures * (1 + 2 * channels + channels * (channels - 1) // 2)


def to_unit(levels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """8-bit levels 0..255 to values in [-1, 1]."""
    return levels.to(dtype) / (LEVELS - 1) * 2.0 - 1.0


def unpack(params: torch.Tensor, channels: int, mixtures: int):
    """Split (N, P) parameters into logits (N, K), means, log scales (N, C, K), coeffs (N, ., K)."""
    K, C, N = mixtures, channels, params.shape[0]
    logits = params[:, :K]
    means = params[:, K : K + C * K].reshape(N, C, K)
    log_scales = params[:, K + C * K : K + 2 * C * K].reshape(N, C, K).clamp(min=LOG_SCALE_FLOOR)
    coeffs = torch.tanh(params[:, K + 2 * C * K :].reshape(N, C * (C - 1) // 2, K))
    return logits, means, log_scales, coeffs


def coupled_means(means: torch.Tensor, coeffs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Channel c's means (N, C, K) shifted by the earlier channels' values x (N, C)."""
    C = means.shape[1]
    shifted = [means[:, 0]]
    pair = 0
    for c in range(1, C):
        m = means[:, c]
        for earlier in range(c):
            m = m + coeffs[:, pair] * x[:, earlier, None]
            pair += 1
        shifted.append(m)
    return torch.stack(shifted, dim=1)


def log_likelihood(params: torch.Tensor, x: torch.Tensor, mixtures: int) -> torch.Tensor:
    """Log-probability in nats of every image.

    Args:
        params: (B, P, H, W) network output.
        x: (B, C, H, W) pixel values in [-1, 1] on the 256-level grid.
        mixtures: K.

    Returns:
        (B,) summed over the image's pixels and channels.
    """
    B, C, H, W = x.shape
    flat_params = params.permute(0, 2, 3, 1).reshape(B * H * W, -1)  # (N, P)
    flat_x = x.permute(0, 2, 3, 1).reshape(B * H * W, C)  # (N, C)
    logits, means, log_scales, coeffs = unpack(flat_params, C, mixtures)
    centred = flat_x[:, :, None] - coupled_means(means, coeffs, flat_x)  # (N, C, K)
    inv_scale = torch.exp(-log_scales)
    half_bin = 1.0 / (LEVELS - 1)
    upper = inv_scale * (centred + half_bin)
    lower = inv_scale * (centred - half_bin)
    log_cdf_upper = upper - F.softplus(upper)  # log sigmoid(upper): the lowest level's mass
    log_sf_lower = -F.softplus(lower)  # log (1 - sigmoid(lower)): the highest level's mass
    mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    middle = inv_scale * centred
    # Where a bin's mass underflows (very sharp components), use the density at its centre.
    log_density = middle - log_scales - 2.0 * F.softplus(middle) + math.log(2 * half_bin)
    log_mass = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_density)
    edge = flat_x[:, :, None]
    log_p = torch.where(
        edge < -0.999, log_cdf_upper, torch.where(edge > 0.999, log_sf_lower, log_mass)
    )
    per_component = log_p.sum(dim=1) + F.log_softmax(logits, dim=1)  # (N, K)
    return torch.logsumexp(per_component, dim=1).reshape(B, H * W).sum(dim=1)


def bits_per_dim(params: torch.Tensor, x: torch.Tensor, mixtures: int) -> torch.Tensor:
    """Mean negative log-likelihood in bits per pixel channel over the batch (a scalar)."""
    _, C, H, W = x.shape
    return -log_likelihood(params, x, mixtures).mean() / (C * H * W * math.log(2))


def sample_pixels(params: torch.Tensor, uniforms: torch.Tensor, channels: int, mixtures: int):
    """Draw one pixel per row exactly from the discretized mixture.

    Args:
        params: (N, P) network output at the pixel.
        uniforms: (N, 1 + C) float64 numbers in [0, 1): the first picks the component (the
            softmax CDF inverted in float64, as in every sampler), the others draw each channel
            by inverting the logistic CDF.

    Returns:
        (N, C) int64 levels 0..255. A channel's value (not the continuous draw) shifts the
        later channels' means, as in the likelihood.
    """
    logits, means, log_scales, coeffs = unpack(params.double(), channels, mixtures)
    component = sample_from_logits(logits, uniforms[:, 0], 1.0)  # (N,)
    pick = component[:, None, None].expand(-1, channels, 1)
    means = means.gather(2, pick)[:, :, 0]  # (N, C)
    scales = torch.exp(log_scales.gather(2, pick)[:, :, 0])
    coeffs = coeffs.gather(2, component[:, None, None].expand(-1, coeffs.shape[1], 1))[:, :, 0]
    u = uniforms[:, 1:].to(params.device).clamp(UNIFORM_MARGIN, 1.0 - UNIFORM_MARGIN)
    noise = torch.log(u) - torch.log1p(-u)  # logistic draws (N, C)
    levels = torch.empty(means.shape, dtype=torch.long, device=params.device)
    values = torch.empty_like(means)
    pair = 0
    for c in range(channels):
        mean = means[:, c]
        for earlier in range(c):
            mean = mean + coeffs[:, pair] * values[:, earlier]
            pair += 1
        draw = mean + scales[:, c] * noise[:, c]
        levels[:, c] = torch.round((draw + 1.0) * (LEVELS - 1) / 2.0).clamp(0, LEVELS - 1).long()
        values[:, c] = to_unit(levels[:, c], torch.float64)
    return levels
