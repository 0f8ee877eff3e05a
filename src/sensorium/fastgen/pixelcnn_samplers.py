"""PixelCNN++ samplers: the naive full-pass reference and the cached sampler.

Shape letters: N images asked for, B images in one batch, C channels, H, W image size,
P mixture parameters per pixel.

Both samplers share one `generate` loop and one way of drawing a pixel
(`logistic_mixture.sample_pixels`) from uniforms drawn up front for every image, so for the
same seed they differ only in how the next pixel's parameters are computed:

- `NaivePixelSampler`: one full pass of the network over the whole image for every pixel,
  H * W passes an image;
- `CachedPixelSampler`: every layer's output computed once (`pixelcnn_cached.py`), about one
  full pass's arithmetic an image.

Image n always uses uniforms[n], so the images do not depend on the batch size either.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.logistic_mixture import to_unit
from sensorium.fastgen.pixelcnn import PixelCNN
from sensorium.fastgen.pixelcnn_cached import CachedPixelCNN
from sensorium.fastgen.sampling import draw_uniforms
from sensorium.fastgen.sampling_compiled import draw_mixture_pixels

Progress = Callable[[int], None]

SAMPLERS = ("naive", "cached")


class PixelCNNSampler:
    """Draws images from a trained PixelCNN. Subclasses supply `_draw_batch`."""

    def __init__(self, model: PixelCNN) -> None:
        self.model = model.eval()
        self.config = model.config
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def generate(
        self,
        count: int,
        batch: int = 16,
        seed: int = 0,
        progress: Progress | None = None,
        pixels: int | None = None,
    ) -> torch.Tensor:
        """Draw `count` images.

        Args:
            count: images N (>= 1).
            batch: images drawn together (>= 1); does not change the images, only the speed.
            seed: seeds the uniforms that draw every pixel.
            progress: called with the number of pixels (over all images) finished since its
                last call.
            pixels: draw only the first `pixels` pixels of each image in raster order and
                leave the rest 0 (to time a sampler on part of an image); None draws them all.

        Returns:
            (N, C, H, W) uint8 levels 0..255, on the CPU.
        """
        for name, value in (("image count", count), ("batch", batch)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SensoriumError(f"{name} {value!r} must be an integer >= 1")
        cfg = self.config
        H, W, C = cfg.height, cfg.width, cfg.channels
        total = H * W if pixels is None else pixels
        if not isinstance(total, int) or not 1 <= total <= H * W:
            raise SensoriumError(f"pixels {pixels!r} must lie in 1..{H * W}")
        uniforms = draw_uniforms(seed, count, H, W, 1 + C)  # (N, H, W, 1 + C)
        images = torch.empty((count, C, H, W), dtype=torch.uint8)
        for start in range(0, count, batch):
            chunk = uniforms[start : start + batch]
            drawn = self._draw_batch(chunk, total, progress)
            images[start : start + chunk.shape[0]] = drawn
        return images

    def _draw_batch(
        self, uniforms: torch.Tensor, pixels: int, progress: Progress | None
    ) -> torch.Tensor:
        """Images (B, C, H, W) uint8 drawn with uniforms (B, H, W, 1 + C), the first `pixels`
        of each in raster order."""
        raise NotImplementedError

    def _draw_pixel(self, params: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Levels (B, C) int64 of one pixel from its parameters (B, P) and uniforms (B, 1 + C).

        Compiled (`sampling_compiled.draw_mixture_pixels`): `logistic_mixture.sample_pixels`
        gives the same levels but costs a few hundred microseconds of dispatch per pixel.
        """
        cfg = self.config
        levels = np.empty((params.shape[0], cfg.channels), dtype=np.int64)
        flat = params.detach().to("cpu", torch.float64).numpy()
        draw_mixture_pixels(flat, uniforms.numpy(), cfg.channels, cfg.mixtures, levels)
        return torch.from_numpy(levels)


class NaivePixelSampler(PixelCNNSampler):
    """The reference: a full pass over the whole image for every pixel."""

    def _draw_batch(self, uniforms, pixels, progress):
        B, H, W, _ = uniforms.shape
        C = self.config.channels
        x = torch.zeros((B, C, H, W), dtype=self.dtype, device=self.device)  # undrawn: zeros
        levels = torch.zeros((B, C, H, W), dtype=torch.uint8)
        for position in range(pixels):
            r, c = divmod(position, W)
            params = self.model(x)[:, :, r, c]  # (B, P)
            pixel = self._draw_pixel(params, uniforms[:, r, c])  # (B, C)
            levels[:, :, r, c] = pixel.cpu().to(torch.uint8)
            x[:, :, r, c] = to_unit(pixel, self.dtype)
            if progress is not None:
                progress(B)
        return levels


class CachedPixelSampler(PixelCNNSampler):
    """Every layer's output computed once: rows for the vertical stream, pixels for the
    horizontal one. The caches are allocated once per batch size and reset per batch."""

    def __init__(self, model: PixelCNN) -> None:
        super().__init__(model)
        self.network = CachedPixelCNN(model)

    def _draw_batch(self, uniforms, pixels, progress):
        B, H, W, _ = uniforms.shape
        C = self.config.channels
        self.network.reset(B, H, W)
        # The drawn image channels-last with the model's extra channel of ones: (B, H, W, C + 1)
        image = torch.zeros((B, H, W, C + 1), dtype=self.dtype, device=self.device)
        image[..., C] = 1.0
        levels = torch.zeros((B, C, H, W), dtype=torch.uint8)
        for r in range(-(-pixels // W)):
            self.network.begin_row(r, image[:, r - 1] if r > 0 else None)
            row_pixels = min(W, pixels - r * W)
            for c in range(row_pixels):
                pixel = self._draw_pixel(self.network.pixel(r, c), uniforms[:, r, c])
                levels[:, :, r, c] = pixel.cpu().to(torch.uint8)
                image[:, r, c, :C] = to_unit(pixel, self.dtype)
                self.network.feed(r, c, image[:, r, c])
            if progress is not None:
                progress(B * row_pixels)
        return levels


def make_sampler(name: str, model: PixelCNN) -> PixelCNNSampler:
    if name not in SAMPLERS:
        raise SensoriumError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    return NaivePixelSampler(model) if name == "naive" else CachedPixelSampler(model)
