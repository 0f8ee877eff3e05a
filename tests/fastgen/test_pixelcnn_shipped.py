"""The PixelCNN++ shipped in the package, on the real Fashion-MNIST the set-up installs."""

from __future__ import annotations

import json

import numpy as np
import torch

from sensorium.cli import main
from sensorium.data.images import DEFAULT_FASHION_MNIST_DIR, load_image_splits
from sensorium.fastgen.pixelcnn_generate import SHIPPED_PIXELCNN
from sensorium.fastgen.pixelcnn_train import load_pixelcnn, score_images


def test_shipped_model_is_small_and_scores_real_test_images():
    assert SHIPPED_PIXELCNN.stat().st_size < 6_000_000
    model, checkpoint = load_pixelcnn(SHIPPED_PIXELCNN)
    cfg = model.config
    assert (cfg.channels, cfg.height, cfg.width) == (1, 28, 28)
    test = load_image_splits(DEFAULT_FASHION_MNIST_DIR).test[:200]
    bits = score_images(model, test)
    # Uniform noise would score 8 bits per dimension; the shipped model scored about
    # checkpoint["test_bits"] on all 10,000 test images (docs/pixelcnn.md).
    assert bits < 4.0
    assert abs(bits - checkpoint["test_bits"]) < 0.3


def test_demo_writes_samples_and_speeds(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["pixelcnn", "demo", "--out", str(out), "--n", "2", "--batch", "2",
                 "--naive-pixels", "2"])  # fmt: skip
    assert code == 0
    assert (out / "samples.png").stat().st_size > 5_000
    speed = json.loads((out / "speed.json").read_text())
    assert speed["cached_images_per_s"] > 0 and speed["naive_images_per_s"] > 0
    printed = capsys.readouterr().out
    assert "naive sampler" in printed and "cached sampler" in printed
    assert main(["pixelcnn", "demo", "--out", str(out)]) == 2  # outputs exist: needs --force


def test_shipped_samples_look_like_clothes_not_noise():
    """Drawn images have the real set's dark background and bright, connected objects."""
    model, _ = load_pixelcnn(SHIPPED_PIXELCNN)
    from sensorium.fastgen.pixelcnn_samplers import CachedPixelSampler

    images = CachedPixelSampler(model).generate(4, batch=4, seed=0).float()
    border = torch.cat([images[:, :, :2].flatten(1), images[:, :, -2:].flatten(1)], dim=1)
    assert border.mean() < 80  # real test images: 33 on average
    # Neighbouring pixels agree far more than in noise (real images: mean |diff| 23; noise: 83).
    assert (images[..., 1:] - images[..., :-1]).abs().mean() < 45
    assert np.isfinite(images.numpy()).all()
