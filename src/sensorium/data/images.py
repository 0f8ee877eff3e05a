"""Reading a user's images: IDX files (MNIST, Fashion-MNIST) and folders of image files.

Images are returned as uint8 tensors (N, C, H, W), C = 1 (grayscale) or 3 (RGB).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

# 70,000 real 28x28 grayscale images (Debian package dataset-fashion-mnist).
DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# IDX type codes and the NumPy types they hold (big-endian).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSplits:
    """Training and test images (N, C, H, W) uint8, and where they came from."""

    train: torch.Tensor
    test: torch.Tensor
    source: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train.shape[1:])


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as an array of its declared type and shape."""
    path = Path(path)
    if not path.is_file():
        raise SensoriumError(f"IDX file {str(path)!r} does not exist")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise SensoriumError(f"could not read IDX file {str(path)!r}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise SensoriumError(
            f"{str(path)!r} is not an IDX file: its magic number is {data[:4].hex() or 'missing'}"
            "; expected 0000 then a type code (08 for bytes) and the number of dimensions"
        )
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise SensoriumError(f"IDX file {str(path)!r} has a truncated header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise SensoriumError(
            f"IDX file {str(path)!r} holds {len(data) - header} bytes of data; its header "
            f"declares shape {shape}, which needs {expected} (truncated or damaged?)"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def idx_images(path: Path) -> torch.Tensor:
    """An IDX file of images (N, H, W) or (N, H, W, C) bytes as (N, C, H, W) uint8."""
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim not in (3, 4):
        raise SensoriumError(
            f"IDX file {str(path)!r} holds {array.dtype} data of shape {array.shape}; expected "
            "bytes shaped (images, height, width) or (images, height, width, channels)"
        )
    array = array[:, None] if array.ndim == 3 else array.transpose(0, 3, 1, 2)  # (N, C, H, W)
    if array.shape[1] not in (1, 3):
        raise SensoriumError(f"IDX images in {str(path)!r} have {array.shape[1]} channels")
    return torch.from_numpy(np.array(array))  # a writable copy in C order


def folder_images(path: Path) -> torch.Tensor:
    """Every image file below a folder, all of one size, as (N, C, H, W) uint8.

    Grayscale when every file is grayscale, else RGB (alpha dropped).
    """
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in Path(path).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SensoriumError(
            f"folder {str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no IDX files"
        )
    pictures = []
    for file in files:
        try:
            with Image.open(file) as picture:
                picture.load()
                pictures.append((file, picture.copy()))
        except (OSError, UnidentifiedImageError) as exc:
            raise SensoriumError(f"could not read image {str(file)!r}: {exc}") from exc
    first_file, first = pictures[0]
    for file, picture in pictures[1:]:
        if picture.size != first.size:
            raise SensoriumError(
                f"images in {str(path)!r} differ in size: {str(first_file)!r} is "
                f"{first.size[0]}x{first.size[1]}, {str(file)!r} is "
                f"{picture.size[0]}x{picture.size[1]}; resize them to one size"
            )
    gray = all(p.mode in ("1", "L", "LA", "I", "I;16") for _, p in pictures)
    mode = "L" if gray else "RGB"
    arrays = [np.asarray(p.convert(mode), dtype=np.uint8) for _, p in pictures]
    stacked = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    stacked = stacked[:, None] if gray else stacked.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(stacked))


def _idx_pair(folder: Path) -> tuple[Path, Path] | None:
    """The (train, test) image IDX files of a folder laid out like MNIST, if it is one."""

    def find(prefix: str) -> Path | None:
        for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"):
            for suffix in ("", ".gz"):
                if (folder / (name + suffix)).is_file():
                    return folder / (name + suffix)
        return None

    train, test = find("train"), find("t10k")
    return (train, test) if train and test else None


def load_image_splits(path: Path, test_fraction: float = 0.1, seed: int = 0) -> ImageSplits:
    """Training and test images from an MNIST-style folder, one IDX file, or an image folder.

    An MNIST-style folder (train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz]) keeps
    its own split; otherwise `test_fraction` of the images, chosen with `seed`, is held out.
    """
    path = Path(path)
    if not path.exists():
        hint = ""
        if path == DEFAULT_FASHION_MNIST_DIR:
            hint = f" (install the Debian package {FASHION_MNIST_PACKAGE})"
        raise SensoriumError(f"image data {str(path)!r} does not exist{hint}")
    if path.is_dir() and (pair := _idx_pair(path)) is not None:
        train, test = idx_images(pair[0]), idx_images(pair[1])
        if train.shape[1:] != test.shape[1:]:
            raise SensoriumError(
                f"training images {tuple(train.shape[1:])} and test images "
                f"{tuple(test.shape[1:])} in {str(path)!r} differ in shape"
            )
        return ImageSplits(train, test, str(path))
    images = folder_images(path) if path.is_dir() else idx_images(path)
    if not 0.0 < test_fraction < 1.0:
        raise SensoriumError(f"test fraction {test_fraction!r} must lie in (0, 1)")
    if images.shape[0] < 2:
        raise SensoriumError(f"{str(path)!r} holds {images.shape[0]} image; need at least 2")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = min(max(1, round(test_fraction * images.shape[0])), images.shape[0] - 1)
    logger.info("holding out %d of %d images of %s for testing", n_test, len(order), path)
    return ImageSplits(images[order[n_test:]], images[order[:n_test]], str(path))
