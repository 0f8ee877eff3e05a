"""Each cached PixelCNN layer kind against the uncached layer, row by row and pixel by pixel,
and the whole cached network against the full pass."""

from __future__ import annotations

import pytest
import torch

from sensorium.fastgen.pixelcnn import GatedResnet, ShiftedConv2d, ShiftedDeconv2d
from sensorium.fastgen.pixelcnn_cache import (
    CachedGatedResnet,
    PixelCache,
    PixelDeconvCache,
    RowCache,
    RowDeconvCache,
)
from sensorium.fastgen.pixelcnn_cached import CachedPixelCNN
from tests.fastgen.pixelcnn_helpers import random_images, small_pixelcnn

# Float64 layers: the cached and full passes sum the same products in other orders, which
# moves a result by a few ulps of values of order 10; 1e-10 leaves a wide margin.
TOL = 1e-10


def randomised(layer: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    layer = layer.double()
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p))
    return layer.eval()


def feature_map(channels: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, channels, height, width, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kernel", [(2, 3), (1, 3), (2, 5)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(6, 7), (5, 8)])
def test_row_cache_equals_down_shifted_conv(kernel, stride, size):
    layer = randomised(ShiftedConv2d(3, 4, kernel, stride=stride))
    x = feature_map(3, *size)
    full = layer(x)  # (B, F_out, h_out, w_out)
    cache = RowCache(layer)
    cache.reset(2, size[1])
    rows = []
    for r in range(size[0]):
        cache.push(x[:, :, r].transpose(1, 2))
        if r % stride == 0:
            rows.append(cache.output())  # (B, w_out, F_out)
    cached = torch.stack(rows, dim=1).permute(0, 3, 1, 2)
    assert cached.shape == full.shape
    torch.testing.assert_close(cached, full, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kernel", [(2, 2), (2, 1), (3, 3)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(6, 7), (5, 8)])
def test_pixel_cache_equals_down_right_shifted_conv(kernel, stride, size):
    layer = randomised(ShiftedConv2d(3, 4, kernel, stride=stride, right=True))
    x = feature_map(3, *size)
    full = layer(x)
    cache = PixelCache(layer)
    cache.reset(2, size[1])
    cached = torch.zeros_like(full)
    for r in range(size[0]):
        for c in range(size[1]):
            cache.push(c, x[:, :, r, c])
            if r % stride == 0 and c % stride == 0:
                cached[:, :, r // stride, c // stride] = cache.output(c)
        cache.next_row()
    torch.testing.assert_close(cached, full, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("target", [(8, 10), (7, 9)])
def test_row_deconv_cache_equals_down_shifted_deconv(target):
    layer = randomised(ShiftedDeconv2d(3, 4, (2, 3)))
    x = feature_map(3, 4, 5)
    full = layer(x, target)
    cache = RowDeconvCache(layer)
    cache.reset(2, target[1])
    rows = []
    for r in range(target[0]):
        if r % 2 == 0:
            cache.push(x[:, :, r // 2].transpose(1, 2))
        rows.append(cache.output(r))
    cached = torch.stack(rows, dim=1).permute(0, 3, 1, 2)
    torch.testing.assert_close(cached, full, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("target", [(8, 10), (7, 9)])
def test_pixel_deconv_cache_equals_down_right_shifted_deconv(target):
    layer = randomised(ShiftedDeconv2d(3, 4, (2, 2), right=True))
    x = feature_map(3, 4, 5)
    full = layer(x, target)
    cache = PixelDeconvCache(layer)
    cache.reset(2, 5)
    cached = torch.zeros_like(full)
    for r in range(target[0]):
        for c in range(target[1]):
            if r % 2 == 0 and c % 2 == 0:
                cache.push(c // 2, x[:, :, r // 2, c // 2])
            cached[:, :, r, c] = cache.output(r, c)
    torch.testing.assert_close(cached, full, atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    ("right", "extra", "row_side"),
    [(False, 0, 0), (False, 5, 0), (True, 0, 0), (True, 5, 0), (True, 5, 2), (True, 5, 5)],
)
def test_cached_gated_resnet_equals_the_block(right, extra, row_side):
    """row_side: that many side channels are handed over per row, the rest per pixel."""
    block = randomised(GatedResnet(4, right=right, extra=extra, dropout=0.0))
    H, W = 5, 6
    x = feature_map(4, H, W)
    side = feature_map(extra, H, W, seed=2) if extra else None
    full = block(x, side)
    cached_block = CachedGatedResnet(block, row_side)
    cached_block.reset(2, W)
    cached = torch.zeros_like(full)
    for r in range(H):
        if right:
            if row_side:
                cached_block.begin_row(side[:, :row_side, r].transpose(1, 2))
            for c in range(W):
                s = side[:, row_side:, r, c] if row_side < extra else None
                cached[:, :, r, c] = cached_block.step(x[:, :, r, c], s, c)
            cached_block.next_row()
        else:
            s = side[:, :, r].transpose(1, 2) if extra else None
            out = cached_block.step(x[:, :, r].transpose(1, 2), s, None)
            cached[:, :, r] = out.transpose(1, 2)
    torch.testing.assert_close(cached, full, atol=TOL, rtol=TOL)


def test_caches_refuse_the_other_stream_kind():
    with pytest.raises(ValueError, match="PixelCache"):
        RowCache(ShiftedConv2d(2, 2, (2, 2), right=True))
    with pytest.raises(ValueError, match="RowCache"):
        PixelCache(ShiftedConv2d(2, 2, (2, 3)))


def teacher_forced(model, images: torch.Tensor) -> torch.Tensor:
    """The cached network's parameters (B, P, H, W) for every pixel of given images."""
    B, _, H, W = images.shape
    net = CachedPixelCNN(model)
    net.reset(B, H, W)
    dtype = next(model.parameters()).dtype
    padded = torch.cat((images, images.new_ones(B, 1, H, W)), 1).permute(0, 2, 3, 1).to(dtype)
    out = None
    for r in range(H):
        net.begin_row(r, padded[:, r - 1] if r > 0 else None)
        for c in range(W):
            params = net.pixel(r, c)
            if out is None:
                out = params.new_zeros((B, params.shape[1], H, W))
            out[:, :, r, c] = params
            net.feed(r, c, padded[:, r, c])
    return out


@pytest.mark.parametrize(
    ("channels", "height", "width", "resnets"),
    [(1, 7, 9, 1), (3, 6, 5, 2), (1, 8, 8, 3), (3, 1, 4, 1), (1, 11, 3, 2)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cached_network_equals_the_full_pass(channels, height, width, resnets, dtype):
    model = small_pixelcnn(channels, height, width, resnets, dtype=dtype)
    _, images = random_images(2, channels, height, width)
    images = images.to(dtype)
    with torch.no_grad():
        full = model(images)
        cached = teacher_forced(model, images)
    # float32: some 40 layers, each summing products in another order, drift by a few ulps of
    # values of order 1-10, well under 1e-4; float64: 1e-10.
    tol = 1e-4 if dtype == torch.float32 else TOL
    torch.testing.assert_close(cached, full, atol=tol, rtol=tol)


def test_full_pass_is_causal_in_raster_order():
    model = small_pixelcnn(3, 6, 7, resnets=2)
    _, images = random_images(1, 3, 6, 7)
    with torch.no_grad():
        base = model(images)
        for r, c in [(0, 0), (2, 3), (3, 6), (5, 6)]:
            changed = images.clone()
            changed[:, :, r, c] = -changed[:, :, r, c] + 0.3
            diff = (model(changed) - base).abs().amax(dim=1)[0]  # (H, W)
            position = torch.arange(6 * 7).reshape(6, 7)
            assert diff[position <= r * 7 + c].max() == 0.0
            if r * 7 + c + 1 < 6 * 7:  # the next pixel in raster order sees the change
                assert diff.flatten()[r * 7 + c + 1] > 0.0
