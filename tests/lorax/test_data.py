"""Reading CDDB-style task folders: layouts, resizing, order resolution and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sensorium.common.errors import SensoriumError
from sensorium.lorax.data import (
    CDDB_ORDERS,
    MANIFEST_NAME,
    list_tasks,
    load_image,
    read_task,
    read_tasks,
    resolve_order,
)


def write_image(path: Path, value: int, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> Path:
    """A flat image of one grey value, `size` (width, height), saved in the suffix's format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "I") else (value,) * len(mode)).save(path)
    return path


def write_task(
    root: Path,
    task: str,
    counts: dict[str, tuple[int, int]] | None = None,
    subclasses: tuple[str, ...] = (),
) -> Path:
    """A task folder with (real, fake) image counts per split, real images dark, fakes bright."""
    counts = counts or {"train": (3, 2), "val": (2, 1)}
    for split, (n_real, n_fake) in counts.items():
        for sub in subclasses or ("",):
            base = root / task / split / sub
            for i in range(n_real):
                write_image(base / "0_real" / f"r{i}.png", 10)
            for i in range(n_fake):
                write_image(base / "1_fake" / f"f{i}.jpg", 240)
    return root / task


def test_read_flat_task(tmp_path):
    write_task(tmp_path, "gaugan")
    data = read_task(tmp_path, "gaugan", 8)
    assert data.name == "gaugan"
    assert data.train_images.shape == (5, 8, 8, 3) and data.train_images.dtype == np.uint8
    assert data.val_images.shape == (3, 8, 8, 3)
    assert data.train_labels.dtype == np.int64
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1]
    assert data.val_labels.tolist() == [0, 0, 1]
    # Real images were written dark and fakes bright: the labels follow the folders.
    assert data.train_images[data.train_labels == 0].max() < 50
    assert data.train_images[data.train_labels == 1].min() > 200
    assert data.counts() == {
        "train": {"0_real": 3, "1_fake": 2},
        "val": {"0_real": 2, "1_fake": 1},
    }


def test_multiclass_task_merges_subclasses(tmp_path):
    write_task(tmp_path, "cyclegan", {"train": (2, 3), "val": (1, 1)}, ("apple", "horse", "zebra"))
    data = read_task(tmp_path, "cyclegan", 8)
    assert data.counts() == {"train": {"0_real": 6, "1_fake": 9}, "val": {"0_real": 3, "1_fake": 3}}
    assert set(np.unique(data.train_labels)) == {0, 1}


def test_resize_shorter_side_then_centre_crop(tmp_path):
    # 40 x 20 (width x height): left quarter black, middle white, right quarter grey.
    pixels = np.full((20, 40, 3), 255, np.uint8)
    pixels[:, :10] = 0
    pixels[:, 30:] = 128
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    image = load_image(path, 10)  # shorter side 20 -> 10: 20 x 10, centre crop columns 5..15
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert image[:, 2:8].min() == 255  # only the white middle is left
    tall = np.zeros((30, 10), np.uint8)
    tall[10:20] = 200
    Image.fromarray(tall).save(tmp_path / "tall.png")
    image = load_image(tmp_path / "tall.png", 5)  # 10 x 30 -> 5 x 15, rows 5..10 kept
    assert image.shape == (5, 5, 3)
    assert image[1:4].min() > 150


def test_modes_sizes_suffixes_and_hidden_files(tmp_path):
    base = tmp_path / "task" / "train"
    write_image(base / "0_real" / "grey.PNG", 20, (50, 30), "L")
    write_image(base / "0_real" / "rgba.webp", 20, (12, 12), "RGBA")
    write_image(base / "0_real" / "big.TIFF", 20, (64, 64))
    write_image(base / "0_real" / ".hidden.png", 20)
    (base / "0_real" / "notes.txt").write_text("not an image")
    write_image(base / "1_fake" / "a.JPEG", 200, (16, 40))
    write_image(base / "1_fake" / "b.bmp", 200, (7, 7))
    write_task(tmp_path, "task", {"val": (1, 1)})
    data = read_task(tmp_path, "task", 16)
    assert data.counts()["train"] == {"0_real": 3, "1_fake": 2}
    assert data.train_images.shape == (5, 16, 16, 3)
    assert np.abs(data.train_images[:3].astype(int) - 20).max() <= 2


def test_read_tasks_in_order_with_progress(tmp_path):
    for name in ("b", "a", "c"):
        write_task(tmp_path, name)
    tasks = read_tasks(tmp_path, ["c", "a"], 8, progress=True)
    assert [t.name for t in tasks] == ["c", "a"]
    assert list_tasks(tmp_path) == ["a", "b", "c"]


def test_list_tasks_skips_non_tasks(tmp_path):
    write_task(tmp_path, "real-task")
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cache" / "train").mkdir(parents=True)
    (tmp_path / "file.txt").write_text("x")
    assert list_tasks(tmp_path) == ["real-task"]


# --- order resolution ---------------------------------------------------------------------


def test_cddb_presets_without_manifest(tmp_path):
    for name in CDDB_ORDERS["long"]:
        (tmp_path / name).mkdir()
    assert resolve_order(tmp_path, "hard") == ["gaugan", "biggan", "wild", "whichfaceisreal", "san"]
    assert resolve_order(tmp_path, "easy") == CDDB_ORDERS["easy"]
    assert len(resolve_order(tmp_path, "long")) == 12


def test_manifest_presets_take_precedence(tmp_path):
    for name in ("x", "y", "z"):
        write_task(tmp_path, name)
    manifest = {"orders": {"easy": ["z", "x"], "mine": ["y"]}}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert resolve_order(tmp_path, "easy") == ["z", "x"]
    assert resolve_order(tmp_path, "mine") == ["y"]
    assert resolve_order(tmp_path, "easy,y") == ["z", "x", "y"]  # a preset extended
    with pytest.raises(SensoriumError, match=r"unknown task order 'hard'.*easy, mine"):
        resolve_order(tmp_path, "hard")  # a CDDB preset, but this root's manifest has none


def test_custom_orders(tmp_path):
    for name in ("x", "y", "z"):
        write_task(tmp_path, name)
    assert resolve_order(tmp_path, ["y", "x"]) == ["y", "x"]
    assert resolve_order(tmp_path, "z, x") == ["z", "x"]
    assert resolve_order(tmp_path, "y") == ["y"]


def test_order_naming_a_missing_task_lists_what_exists(tmp_path):
    for name in ("x", "y"):
        write_task(tmp_path, name)
    with pytest.raises(SensoriumError, match=r"task folder\(s\) nope not found.*holds x, y"):
        resolve_order(tmp_path, "x,nope")
    with pytest.raises(SensoriumError, match="gaugan, biggan"):  # CDDB names absent here
        resolve_order(tmp_path, "hard")
    with pytest.raises(SensoriumError, match="more than once"):
        resolve_order(tmp_path, ["x", "x"])


def test_unknown_preset(tmp_path):
    write_task(tmp_path, "x")
    with pytest.raises(SensoriumError, match=r"unknown task order 'medium'.*easy, hard, long.*x"):
        resolve_order(tmp_path, "medium")


def test_bad_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(SensoriumError, match="not readable JSON"):
        resolve_order(tmp_path, "easy")
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"orders": {"easy": "x"}}))
    with pytest.raises(SensoriumError, match="no valid 'orders'"):
        resolve_order(tmp_path, "easy")


# --- bad input ----------------------------------------------------------------------------


def test_missing_root_or_file_root(tmp_path):
    with pytest.raises(SensoriumError, match=r"'.*absent' does not exist"):
        read_task(tmp_path / "absent", "x", 8)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SensoriumError, match="is not a folder"):
        resolve_order(tmp_path / "file", "easy")


def test_task_without_val_split(tmp_path):
    write_task(tmp_path, "t", {"train": (1, 1)})
    with pytest.raises(SensoriumError, match=r"has no val/ folder.*0_real,1_fake"):
        read_task(tmp_path, "t", 8)


def test_split_without_class_folders(tmp_path):
    write_task(tmp_path, "t", {"train": (1, 1)})
    (tmp_path / "t" / "val").mkdir()
    with pytest.raises(SensoriumError, match="holds no 0_real/1_fake folders"):
        read_task(tmp_path, "t", 8)
    write_image(tmp_path / "t" / "val" / "sub" / "images" / "a.png", 1)
    with pytest.raises(SensoriumError, match=r"subclass folder '.*sub' holds neither"):
        read_task(tmp_path, "t", 8)


@pytest.mark.parametrize("missing", ["real", "fake"])
def test_task_without_real_or_fake_images(tmp_path, missing):
    counts = (0, 2) if missing == "real" else (2, 0)
    write_task(tmp_path, "t", {"train": (2, 2), "val": counts})
    (tmp_path / "t" / "val" / ("0_real" if missing == "real" else "1_fake")).mkdir(exist_ok=True)
    with pytest.raises(SensoriumError, match=f"task 't' has no {missing} images in '.*val'"):
        read_task(tmp_path, "t", 8)


def test_corrupt_image_is_named(tmp_path):
    write_task(tmp_path, "t")
    (tmp_path / "t" / "val" / "1_fake" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(SensoriumError, match=r"could not read image '.*broken\.png'"):
        read_task(tmp_path, "t", 8)


def test_read_task_of_missing_folder_and_bad_size(tmp_path):
    write_task(tmp_path, "here")
    with pytest.raises(SensoriumError, match=r"task folder 'gone' not found.*holds here"):
        read_task(tmp_path, "gone", 8)
    with pytest.raises(SensoriumError, match="image size must be a positive"):
        read_task(tmp_path, "here", 0)
