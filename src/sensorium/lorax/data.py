"""Reading continual real-vs-fake attribution tasks laid out like CDDB.

A root folder holds one folder per task::

    ROOT/TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE

Multiclass tasks have SUBCLASS folders between the split and the class folders; their
subclasses merge into one real and one fake class, as CDDB's loaders do. Images of any size
and mode are read with Pillow, converted to RGB, their shorter side resized to `image_size`
(bilinear) and centre-cropped to `image_size` x `image_size`.

A root built by `build_data.build_offline_benchmark` also holds a manifest `benchmark.json`
with its own task orders; elsewhere the order presets are CDDB's (`CDDB_ORDERS`).

Shape letters: N training images, M validation images, S the image side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")
CLASS_FOLDERS = ("0_real", "1_fake")  # label 0 real, 1 fake
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MANIFEST_NAME = "benchmark.json"

# The task orders of the LoRAX paper on CDDB (configs/data/ganfake_*_order.yaml).
CDDB_ORDERS: dict[str, list[str]] = {
    "easy": ["gaugan", "biggan", "cyclegan", "imle", "deepfake", "crn", "wild"],
    "hard": ["gaugan", "biggan", "wild", "whichfaceisreal", "san"],
    "long": [
        "gaugan",
        "biggan",
        "cyclegan",
        "imle",
        "deepfake",
        "crn",
        "wild",
        "glow",
        "stargan_gf",
        "stylegan",
        "whichfaceisreal",
        "san",
    ],
}


@dataclass
class TaskData:
    """One task's images: uint8 (N, S, S, 3) RGB with labels (N,) int64, 0 real and 1 fake."""

    name: str
    train_images: np.ndarray  # (N, S, S, 3) uint8, RGB
    train_labels: np.ndarray  # (N,) int64: 0 real, 1 fake
    val_images: np.ndarray  # (M, S, S, 3) uint8
    val_labels: np.ndarray  # (M,) int64

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class, e.g. {"train": {"0_real": 600, "1_fake": 600}, ...}."""
        return {
            split: {name: int((labels == c).sum()) for c, name in enumerate(CLASS_FOLDERS)}
            for split, labels in (("train", self.train_labels), ("val", self.val_labels))
        }


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise SensoriumError(f"data folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise SensoriumError(f"data folder {str(root)!r} is not a folder")
    return root


def _is_task(folder: Path) -> bool:
    return folder.is_dir() and all((folder / split).is_dir() for split in SPLITS)


def list_tasks(root: Path) -> list[str]:
    """The task folders in a root (those holding train/ and val/), sorted by name."""
    root = _check_root(root)
    return sorted(p.name for p in root.iterdir() if _visible(p) and _is_task(p))


def read_manifest(root: Path) -> dict | None:
    """The root's `benchmark.json` manifest, or None when it has none."""
    path = _check_root(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SensoriumError(f"manifest {str(path)!r} is not readable JSON: {exc}") from exc
    orders = manifest.get("orders") if isinstance(manifest, dict) else None
    if not isinstance(orders, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) for t in v) for v in orders.values()
    ):
        raise SensoriumError(
            f"manifest {str(path)!r} has no valid 'orders'; expected an object mapping each "
            "order name to a list of task folder names"
        )
    return manifest


def order_presets(root: Path) -> dict[str, list[str]]:
    """The order presets for a root: its manifest's orders, or CDDB's when it has none."""
    manifest = read_manifest(root)
    return dict(manifest["orders"]) if manifest is not None else dict(CDDB_ORDERS)


def resolve_order(root: Path, order: str | Sequence[str]) -> list[str]:
    """The task folder names of an order, each checked to exist under `root`.

    `order` is a preset name (the manifest's orders where `root` has a `benchmark.json`,
    CDDB's `easy`, `hard` and `long` otherwise), a comma-separated string of task folder
    names (a preset among them stands for its tasks), a single task folder name, or a list
    of task folder names.
    """
    root = _check_root(root)
    presets = order_presets(root)
    if isinstance(order, str):
        text = order.strip()
        if text in presets:
            names = list(presets[text])
        elif "," in text or (text and _is_task(root / text)):
            names = []
            for part in (name.strip() for name in text.split(",")):
                # A preset inside a list stands for its tasks ("easy,my-new-task").
                expand = part in presets and not (root / part).is_dir()
                names.extend(presets[part] if expand else [part] if part else [])
        else:
            kind = "manifest" if (root / MANIFEST_NAME).is_file() else "CDDB"
            raise SensoriumError(
                f"unknown task order {order!r}; expected a {kind} preset "
                f"({', '.join(presets)}) or a comma-separated list of task folders in "
                f"{str(root)!r} (found: {', '.join(list_tasks(root)) or 'none'})"
            )
    else:
        names = [str(name) for name in order]
    if not names:
        raise SensoriumError(f"task order {order!r} names no tasks")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SensoriumError(f"task order names {', '.join(duplicates)} more than once")
    missing = [name for name in names if not (root / name).is_dir()]
    if missing:
        raise SensoriumError(
            f"task folder(s) {', '.join(missing)} not found in {str(root)!r}; it holds "
            f"{', '.join(list_tasks(root)) or 'no task folders'}"
        )
    return names


def _image_files(folder: Path) -> list[Path]:
    """Image files in and below a class folder, hidden files and folders skipped, sorted."""
    files = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
    return sorted(files)


def _class_folders(split_dir: Path) -> list[tuple[Path, int]]:
    """(class folder, label) pairs of a split, flat or with SUBCLASS folders."""
    if any((split_dir / name).is_dir() for name in CLASS_FOLDERS):
        return [(split_dir / n, c) for c, n in enumerate(CLASS_FOLDERS) if (split_dir / n).is_dir()]
    subclasses = sorted(p for p in split_dir.iterdir() if _visible(p) and p.is_dir())
    pairs = []
    for sub in subclasses:
        found = [(sub / n, c) for c, n in enumerate(CLASS_FOLDERS) if (sub / n).is_dir()]
        if not found:
            raise SensoriumError(
                f"subclass folder {str(sub)!r} holds neither 0_real nor 1_fake; expected "
                "SPLIT/[SUBCLASS/]{0_real,1_fake}/IMAGE"
            )
        pairs.extend(found)
    if not pairs:
        raise SensoriumError(
            f"split folder {str(split_dir)!r} holds no 0_real/1_fake folders (directly or in "
            "SUBCLASS folders); expected TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE"
        )
    return pairs


def load_image(path: Path, image_size: int) -> np.ndarray:
    """One image file as uint8 (S, S, 3) RGB: shorter side resized to S (bilinear), centre crop."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.load()
            rgb = picture.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise SensoriumError(f"could not read image {str(path)!r}: {exc}") from exc
    width, height = rgb.size
    if (width, height) != (image_size, image_size):
        scale = image_size / min(width, height)
        size = (max(image_size, round(width * scale)), max(image_size, round(height * scale)))
        rgb = rgb.resize(size, Image.BILINEAR)
        left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
        rgb = rgb.crop((left, top, left + image_size, top + image_size))
    return np.asarray(rgb, dtype=np.uint8)


def _read_split(task_dir: Path, split: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A split's images (N, S, S, 3) uint8 and labels (N,) int64, all subclasses merged."""
    split_dir = task_dir / split
    files: dict[int, list[Path]] = {0: [], 1: []}
    for folder, label in _class_folders(split_dir):
        files[label].extend(_image_files(folder))
    for label, name in enumerate(CLASS_FOLDERS):
        if not files[label]:
            raise SensoriumError(
                f"task {task_dir.name!r} has no {name.split('_')[1]} images in "
                f"{str(split_dir)!r}; expected image files ({', '.join(IMAGE_SUFFIXES)}) "
                f"under [SUBCLASS/]{name}/"
            )
    paths = files[0] + files[1]
    images = np.empty((len(paths), image_size, image_size, 3), np.uint8)
    for i, path in enumerate(paths):
        images[i] = load_image(path, image_size)
    labels = np.repeat(np.array([0, 1], np.int64), [len(files[0]), len(files[1])])
    return images, labels


def read_task(root: Path, task: str, image_size: int) -> TaskData:
    """One task folder's train and val images, resized to `image_size`, and their labels."""
    root = _check_root(root)
    if int(image_size) < 1:
        raise SensoriumError(f"image size must be a positive number of pixels; got {image_size!r}")
    task_dir = root / task
    if not task_dir.is_dir():
        raise SensoriumError(
            f"task folder {task!r} not found in {str(root)!r}; it holds "
            f"{', '.join(list_tasks(root)) or 'no task folders'}"
        )
    for split in SPLITS:
        if not (task_dir / split).is_dir():
            raise SensoriumError(
                f"task folder {str(task_dir)!r} has no {split}/ folder; expected "
                "TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE"
            )
    train_images, train_labels = _read_split(task_dir, "train", image_size)
    val_images, val_labels = _read_split(task_dir, "val", image_size)
    data = TaskData(task, train_images, train_labels, val_images, val_labels)
    logger.info("read task %s: %s", task, data.counts())
    return data


def read_tasks(
    root: Path, order: str | Sequence[str], image_size: int, progress: bool = False
) -> list[TaskData]:
    """The tasks of an order (see `resolve_order`), in that order."""
    from tqdm import tqdm

    names = resolve_order(root, order)
    tasks = []
    # closed before an error propagates, so the bar is drawn once, above the error line
    with tqdm(total=len(names), desc="reading tasks", unit="task", disable=not progress) as bar:
        for name in names:
            tasks.append(read_task(root, name, image_size))
            bar.update(1)
    return tasks
