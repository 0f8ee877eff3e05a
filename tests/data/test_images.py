"""Reading image sets: IDX files (plain and gzipped), MNIST-style folders, image folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sensorium.common.errors import SensoriumError
from sensorium.data.images import (
    DEFAULT_FASHION_MNIST_DIR,
    idx_images,
    load_image_splits,
    read_idx,
)


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gz else open)(path, "wb").write(data)
    return path


def images(n: int, h: int = 5, w: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    array = images(4)
    path = write_idx(tmp_path / ("x.idx" + (".gz" if gz else "")), array, gz)
    assert np.array_equal(read_idx(path), array)
    loaded = idx_images(path)
    assert loaded.shape == (4, 1, 5, 6) and loaded.dtype == torch.uint8
    assert np.array_equal(loaded[:, 0].numpy(), array)


def test_mnist_style_folder_keeps_its_split(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images(7), gz=True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images(3, seed=1))
    splits = load_image_splits(tmp_path)
    assert splits.train.shape == (7, 1, 5, 6) and splits.test.shape == (3, 1, 5, 6)


def test_one_idx_file_is_split_by_the_fraction(tmp_path):
    path = write_idx(tmp_path / "digits-idx3-ubyte", images(20))
    splits = load_image_splits(path, test_fraction=0.25, seed=1)
    assert splits.train.shape[0] == 15 and splits.test.shape[0] == 5
    together = torch.cat([splits.train, splits.test]).flatten(1)
    assert sorted(map(tuple, together.tolist())) == sorted(
        map(tuple, torch.from_numpy(images(20)).flatten(1).tolist())
    )


def test_image_folder_grayscale_and_rgb(tmp_path):
    gray, rgb = tmp_path / "gray", tmp_path / "rgb"
    for i in range(4):
        (gray / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(images(1, 8, 9, seed=i)[0]).save(gray / "a" / f"{i}.png")
        rgb.mkdir(exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (8, 9, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(rgb / f"{i}.png")
    g = load_image_splits(gray, test_fraction=0.25)
    assert g.shape == (1, 8, 9) and g.train.shape[0] == 3
    c = load_image_splits(rgb, test_fraction=0.25)
    assert c.shape == (3, 8, 9)
    pixels = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    stored = torch.cat([c.train, c.test])
    assert any(np.array_equal(img.numpy().transpose(1, 2, 0), pixels) for img in stored)


def test_bad_image_data_is_reported(tmp_path):
    with pytest.raises(SensoriumError, match="does not exist"):
        load_image_splits(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SensoriumError, match="holds no images"):
        load_image_splits(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(images(1, 8, 8)[0]).save(mixed / "a.png")
    Image.fromarray(images(1, 9, 8)[0]).save(mixed / "b.png")
    with pytest.raises(SensoriumError, match="differ in size"):
        load_image_splits(mixed)
    broken = tmp_path / "broken"
    broken.mkdir()
    Image.fromarray(images(1, 8, 8)[0]).save(broken / "a.png")
    (broken / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(SensoriumError, match="could not read image"):
        load_image_splits(broken)


def test_bad_idx_files_are_reported(tmp_path):
    good = write_idx(tmp_path / "good-idx3-ubyte", images(3)).read_bytes()
    magic = tmp_path / "magic-idx3-ubyte"
    magic.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(SensoriumError, match="magic number is 1234"):
        read_idx(magic)
    truncated = tmp_path / "short-idx3-ubyte"
    truncated.write_bytes(good[:-10])
    with pytest.raises(SensoriumError, match="truncated"):
        read_idx(truncated)
    labels = write_idx(tmp_path / "labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    with pytest.raises(SensoriumError, match="expected bytes shaped"):
        idx_images(labels)
    not_gzip = tmp_path / "fake-idx3-ubyte.gz"
    not_gzip.write_bytes(good)
    with pytest.raises(SensoriumError, match="could not read IDX"):
        read_idx(not_gzip)


def test_fashion_mnist_from_the_debian_package():
    splits = load_image_splits(DEFAULT_FASHION_MNIST_DIR)
    assert splits.train.shape == (60_000, 1, 28, 28)
    assert splits.test.shape == (10_000, 1, 28, 28)
    # Real photographs of clothes: mostly dark background, a broad spread of grey levels.
    sample = splits.test[:500].float()
    assert 50 < sample.mean() < 100 and sample.std() > 60
