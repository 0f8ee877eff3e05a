"""Drawing images from a trained PixelCNN: dtype and sampler choice, speed, grids and plots.

Shape letters: N images, C channels, H, W image size.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.pixelcnn import PixelCNN
from sensorium.fastgen.pixelcnn_samplers import NaivePixelSampler, Progress, make_sampler

logger = logging.getLogger(__name__)

SHIPPED_PIXELCNN = Path(__file__).parent / "weights" / "pixelcnn_fashion_mnist.pt"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _model_in(model: PixelCNN, dtype: str) -> PixelCNN:
    if dtype not in DTYPES:
        raise SensoriumError(f"dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return model.to(DTYPES[dtype]).eval()


def draw_images(
    model: PixelCNN,
    count: int,
    sampler: str = "cached",
    batch: int = 16,
    seed: int = 0,
    dtype: str = "float32",
    progress: Progress | None = None,
) -> tuple[torch.Tensor, dict]:
    """`count` images (N, C, H, W) uint8 and a summary with the sampler and images per second."""
    drawer = make_sampler(sampler, _model_in(model, dtype))
    started = time.perf_counter()
    images = drawer.generate(count, batch=batch, seed=seed, progress=progress)
    seconds = time.perf_counter() - started
    summary = {
        "sampler": type(drawer).__name__,
        "images": count,
        "batch": batch,
        "seconds": seconds,
        "images_per_second": count / seconds,
    }
    logger.info("%s: %d images in %.2f s (%.3f images/s)", summary["sampler"], count, seconds,
                summary["images_per_second"])  # fmt: skip
    return images, summary


def naive_images_per_second(
    model: PixelCNN,
    batch: int,
    pixels: int,
    dtype: str = "float32",
    progress: Progress | None = None,
) -> float:
    """The naive sampler's images per second at `batch`, timed over the first `pixels` pixels.

    Every naive step is the same full pass over the whole image, so the time of a few steps,
    times H * W, is the time of an image.
    """
    sampler = NaivePixelSampler(_model_in(model, dtype))
    cfg = model.config
    sampler.generate(batch, batch=batch, pixels=1)  # warm up
    started = time.perf_counter()
    sampler.generate(batch, batch=batch, pixels=pixels, progress=progress)
    per_step = (time.perf_counter() - started) / pixels
    return batch / (per_step * cfg.height * cfg.width)


def tile(images: torch.Tensor, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """Images (N, C, H, W) uint8 side by side: (rows * (H + gap), columns * (W + gap), C)."""
    N, C, H, W = images.shape
    columns = columns or int(np.ceil(np.sqrt(N)))
    rows = -(-N // columns)
    grid = np.full((rows * (H + gap) + gap, columns * (W + gap) + gap, C), 255, np.uint8)
    for n, image in enumerate(images.numpy()):
        r, c = divmod(n, columns)
        top, left = gap + r * (H + gap), gap + c * (W + gap)
        grid[top : top + H, left : left + W] = image.transpose(1, 2, 0)
    return grid


def save_grid(path: Path, images: torch.Tensor, scale: int = 3) -> None:
    """The images tiled into one PNG, each pixel shown as a scale x scale block."""
    from PIL import Image

    grid = tile(images)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(path)


def plot_samples_beside_real(
    path: Path, samples: torch.Tensor, real: torch.Tensor, test_bits: float | None
) -> None:
    """Generated images on the left, real test images on the right, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    for ax, images, title in (
        (axes[0], samples, "drawn by the shipped PixelCNN++ (cached sampler)"),
        (axes[1], real, "real Fashion-MNIST test images"),
    ):
        grid = tile(images)
        ax.imshow(grid[:, :, 0] if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if test_bits is not None:
        fig.suptitle(f"model test likelihood: {test_bits:.3f} bits per dimension", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
