"""The cached PixelCNN sampler against the naive full-pass reference, and the mixture draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.logistic_mixture import (
    log_likelihood,
    parameters_per_pixel,
    sample_pixels,
    to_unit,
)
from sensorium.fastgen.pixelcnn_samplers import (
    CachedPixelSampler,
    NaivePixelSampler,
    make_sampler,
)
from sensorium.fastgen.sampling_compiled import draw_mixture_pixels
from tests.fastgen.pixelcnn_helpers import small_pixelcnn


@pytest.mark.parametrize(
    ("channels", "height", "width", "resnets"),
    [
        (1, 7, 9, 1),
        (3, 6, 6, 2),
        (1, 5, 10, 3),
        (3, 3, 5, 1),
        (1, 32, 32, 1),
        (3, 32, 32, 1),
    ],
)
def test_samplers_draw_identical_images_in_float64(channels, height, width, resnets):
    model = small_pixelcnn(channels, height, width, resnets)
    naive, cached = NaivePixelSampler(model), CachedPixelSampler(model)
    seeds = (0, 1) if height * width < 200 else (0,)
    drawn = {}
    for seed in seeds:
        drawn[seed] = cached.generate(2, batch=2, seed=seed)
        assert torch.equal(drawn[seed], naive.generate(2, batch=2, seed=seed))
    # The images are not trivial: they vary over pixels, and with the seed.
    assert drawn[0].float().std() > 10
    if len(seeds) > 1:
        assert not torch.equal(drawn[0], drawn[1])


def test_images_do_not_depend_on_the_batch_size():
    model = small_pixelcnn(3, 5, 6, resnets=2)
    sampler = CachedPixelSampler(model)
    together = sampler.generate(5, batch=5, seed=3)
    assert torch.equal(sampler.generate(5, batch=2, seed=3), together)
    assert torch.equal(NaivePixelSampler(model).generate(5, batch=3, seed=3), together)


def test_float32_cached_matches_float64_reference():
    """float32 logits differ by ~1e-5: only a uniform within that of a class boundary flips."""
    model64 = small_pixelcnn(1, 8, 8, resnets=2)
    reference = NaivePixelSampler(model64).generate(3, seed=5)
    model32 = small_pixelcnn(1, 8, 8, resnets=2, dtype=torch.float32)
    drawn = CachedPixelSampler(model32).generate(3, seed=5)
    agree = (drawn == reference).float().mean()
    # One flipped pixel changes the context of the rest of its image, so agreement is high but
    # need not be total.
    assert agree > 0.9


def test_partial_images_draw_the_first_pixels_only():
    model = small_pixelcnn(1, 4, 5)
    full = CachedPixelSampler(model).generate(2, seed=1)
    part = CachedPixelSampler(model).generate(2, seed=1, pixels=7)
    flat_full, flat_part = full.flatten(2), part.flatten(2)
    assert torch.equal(flat_part[:, :, :7], flat_full[:, :, :7])
    assert (flat_part[:, :, 7:] == 0).all()
    assert torch.equal(NaivePixelSampler(model).generate(2, seed=1, pixels=7), part)


def test_caches_are_allocated_once_per_batch_size():
    model = small_pixelcnn(1, 4, 5)
    sampler = CachedPixelSampler(model)
    first = sampler.generate(2, batch=2, seed=0)
    buffer = sampler.network.up_ul[0][0].conv_in.rows.data_ptr()
    assert torch.equal(sampler.generate(2, batch=2, seed=0), first)
    assert sampler.network.up_ul[0][0].conv_in.rows.data_ptr() == buffer


def test_bad_requests_are_refused():
    sampler = make_sampler("cached", small_pixelcnn())
    with pytest.raises(SensoriumError, match="image count 0"):
        sampler.generate(0)
    with pytest.raises(SensoriumError, match="batch"):
        sampler.generate(2, batch=0)
    with pytest.raises(SensoriumError, match="pixels"):
        sampler.generate(2, pixels=1000)
    with pytest.raises(SensoriumError, match="unknown sampler"):
        make_sampler("fast", small_pixelcnn())


def test_grayscale_likelihood_sums_to_one_over_the_levels():
    K = 3
    params = torch.randn(4, parameters_per_pixel(1, K), dtype=torch.float64) * 2
    levels = torch.arange(256)
    x = to_unit(levels, torch.float64).reshape(256, 1, 1, 1)  # every level, one pixel each
    total = []
    for row in params:
        p = row.reshape(1, -1, 1, 1).expand(256, -1, 1, 1)
        total.append(log_likelihood(p, x, K).exp().sum())
    torch.testing.assert_close(torch.stack(total), torch.ones(4, dtype=torch.float64), atol=1e-6,
                               rtol=0)  # fmt: skip


def test_draws_follow_the_likelihood():
    """20,000 draws of one pixel: level frequencies within sampling noise of the likelihood."""
    K, n = 2, 20_000
    params = torch.tensor([[0.3, -0.2, -0.2, 0.4, -2.5, -3.0]], dtype=torch.float64)
    u = torch.rand(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = sample_pixels(params.expand(n, -1), u, 1, K)[:, 0]
    freq = torch.bincount(levels, minlength=256).double() / n
    x = to_unit(torch.arange(256), torch.float64).reshape(256, 1, 1, 1)
    prob = log_likelihood(params.reshape(1, -1, 1, 1).expand(256, -1, 1, 1), x, K).exp()
    # Standard error of a frequency is sqrt(p (1 - p) / n) <= 0.0036; allow five of them.
    assert (freq - prob).abs().max() < 5 * math.sqrt(0.25 / n)
    assert prob.max() > 0.01  # the comparison is over a spread-out distribution


def test_colour_channels_are_coupled_through_the_drawn_values():
    """One sharp component: G's level follows mean_G + coeff * R's drawn value."""
    K, C = 1, 3
    params = torch.zeros(1, parameters_per_pixel(C, K), dtype=torch.float64)
    params[0, 1:4] = torch.tensor([0.5, -0.2, 0.1])  # means of R, G, B
    params[0, 4:7] = -7.0  # log scales: nearly deterministic draws
    params[0, 7:10] = torch.atanh(torch.tensor([0.5, 0.0, -0.5]))  # G<-R, B<-R, B<-G
    levels = sample_pixels(params, torch.full((1, 4), 0.5, dtype=torch.float64), C, K)[0]
    r = to_unit(levels[0], torch.float64)
    g = to_unit(levels[1], torch.float64)
    assert int(levels[0]) == round((0.5 + 1) * 127.5)
    assert abs(float(g - (-0.2 + 0.5 * r))) <= 1 / 255
    assert abs(float(to_unit(levels[2], torch.float64) - (0.1 - 0.5 * g))) <= 1 / 255


@pytest.mark.parametrize("channels", [1, 3])
def test_compiled_pixel_draws_equal_the_reference(channels):
    K, n = 4, 5000
    g = torch.Generator().manual_seed(channels)
    params = torch.randn(n, parameters_per_pixel(channels, K), generator=g, dtype=torch.float64)
    params = params * 3  # wide and sharp components, means beyond [-1, 1]: the clamps matter
    u = torch.rand(n, 1 + channels, generator=g, dtype=torch.float64)
    u[:10, 1:] = 0.0  # the edges of the uniforms' range
    expected = sample_pixels(params, u, channels, K)
    got = np.empty((n, channels), dtype=np.int64)
    draw_mixture_pixels(params.numpy(), u.numpy(), channels, K, got)
    assert np.array_equal(got, expected.numpy())
    assert (expected == 0).any() and (expected == 255).any()
