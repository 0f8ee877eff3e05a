"""The offline benchmark builder and its generators, at tiny sizes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.lorax.build_data import (
    HELD_OUT_KINDS,
    TASKS,
    BuildSettings,
    build_offline_benchmark,
    build_pretraining_set,
    degrade,
)
from sensorium.lorax.data import MANIFEST_NAME, list_tasks, read_tasks
from sensorium.lorax.generators import GENERATOR_KINDS, train_generator

TINY = {
    "train_per_class": 4,
    "val_per_class": 2,
    "generator_images": 8,
    "generator_steps": 2,
    "gan_steps": 2,
    "batch_size": 4,
    "generator_width": 4,
    "pretrain_per_class": 6,
}


def fingerprint(root: Path) -> dict[str, str]:
    """The SHA-256 of every image file below a folder, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.jpg"))
    }


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run fastest on one thread, and far slower on two busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    return build_offline_benchmark(
        tmp_path_factory.mktemp("bench") / "out", BuildSettings(**TINY, seed=3), progress=True
    )


def test_build_writes_the_cddb_layout(tiny_build):
    assert list_tasks(tiny_build) == sorted(t.name for t in TASKS)
    assert 10 <= len(TASKS) <= 12
    multiclass = [t for t in TASKS if t.subclasses]
    assert 2 <= len(multiclass) <= 3
    for spec in TASKS:
        for split, n in (("train", 4), ("val", 2)):
            base = tiny_build / spec.name / split
            if spec.subclasses:
                assert sorted(p.name for p in base.iterdir()) == sorted(
                    s for s, _ in spec.subclasses
                )
                folders = [base / s for s, _ in spec.subclasses]
            else:
                folders = [base]
            for label in ("0_real", "1_fake"):
                files = [f for folder in folders for f in (folder / label).glob("*.jpg")]
                assert len(files) == n, (spec.name, split, label)


def test_manifest_orders_read_back(tiny_build):
    manifest = json.loads((tiny_build / MANIFEST_NAME).read_text())
    orders = manifest["orders"]
    assert {k: len(v) for k, v in orders.items()} == {"easy": 5, "hard": 5, "long": 10}
    assert manifest["seed"] == 3 and manifest["settings"]["train_per_class"] == 4
    assert set(manifest["tasks"]) == {t.name for t in TASKS}
    # Easy: clearly different families and sources; hard: all heavier JPEG.
    easy = [manifest["tasks"][t] for t in orders["easy"]]
    assert len({t["generator"] for t in easy}) == 5 and len({t["source"] for t in easy}) == 5
    assert all(manifest["tasks"][t]["hard"] for t in orders["hard"])
    for task in manifest["tasks"].values():
        assert task["counts"] == {
            "train": {"0_real": 4, "1_fake": 4},
            "val": {"0_real": 2, "1_fake": 2},
        }
    assert set(manifest["held_out"]["generators"]) == set(HELD_OUT_KINDS)
    used = {t.kind for t in TASKS}
    assert not used & set(HELD_OUT_KINDS)
    for order in orders:
        tasks = read_tasks(tiny_build, order, 32)
        assert [t.name for t in tasks] == orders[order]
        for task in tasks:
            assert task.train_images.shape == (8, 32, 32, 3)
            assert task.val_labels.tolist() == [0, 0, 1, 1]


def test_build_is_reproducible_and_seeded(tiny_build, tmp_path):
    again = build_offline_benchmark(tmp_path / "again", BuildSettings(**TINY, seed=3))
    assert fingerprint(again) == fingerprint(tiny_build)
    other = build_offline_benchmark(tmp_path / "other", BuildSettings(**TINY, seed=4))
    first, second = fingerprint(tiny_build), fingerprint(other)
    assert first.keys() == second.keys()
    assert sum(first[k] == second[k] for k in first) < len(first) // 10


def test_a_subset_builds_the_same_tasks(tiny_build, tmp_path):
    names = [TASKS[1].name, TASKS[4].name]
    part = build_offline_benchmark(tmp_path / "part", BuildSettings(**TINY, seed=3), only=names)
    assert sorted(p.name for p in part.iterdir() if p.is_dir()) == sorted(names)
    whole = fingerprint(tiny_build)
    assert fingerprint(part).items() <= whole.items()
    manifest = json.loads((part / "benchmark.json").read_text())
    assert all(set(order) <= set(names) for order in manifest["orders"].values())
    with pytest.raises(SensoriumError, match="unknown task"):
        build_offline_benchmark(tmp_path / "x", BuildSettings(**TINY), only=["nope"])


def test_refuses_non_empty_folder_unless_forced(tmp_path):
    out = tmp_path / "out"
    stale = out / TASKS[0].name / "train" / "0_real" / "stale.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SensoriumError, match=r"not empty.*--force"):
        build_offline_benchmark(out, BuildSettings(**TINY))
    build_offline_benchmark(out, BuildSettings(**TINY), force=True)
    assert not stale.exists()  # the task folder was replaced whole
    assert (out / "keep.txt").read_text() == "mine"  # anything else is left alone


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("train_per_class", 1, "train_per_class must be at least 2"),
        ("generator_steps", 0, "generator_steps must be at least 1"),
        ("jpeg_quality", (90, 70), r"jpeg_quality \(90, 70\) must be"),
        ("hard_jpeg_quality", (0, 50), "hard_jpeg_quality"),
        ("resize_fraction", 1.5, "resize_fraction must lie in"),
        ("resize_scale", (0.5, 1.0), "resize_scale"),
        ("torch_threads", -1, "torch_threads"),
    ],
)
def test_settings_validation(field, value, message):
    with pytest.raises(SensoriumError, match=message):
        BuildSettings(**{field: value})


def test_degrade_keeps_size_and_draws_quality_in_range():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    for fraction in (0.0, 1.0):
        picture, quality = degrade(image, rng, (60, 65), fraction, (0.5, 0.6))
        assert picture.size == (32, 32) and 60 <= quality <= 65
        changed = np.abs(np.asarray(picture).astype(int) - image).mean()
        assert (changed == 0) if fraction == 0 else (changed > 5)


def test_pretraining_set_uses_held_out_families():
    settings = BuildSettings(**TINY)
    images, labels = build_pretraining_set(settings, seed=5)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [6, 3, 3]
    # Real and fake images differ: each class keeps its own images.
    assert not np.array_equal(images[labels == 0][:3], images[labels == 1])
    _, binary = build_pretraining_set(settings, seed=5, by_family=False)
    assert np.bincount(binary).tolist() == [6, 6]
    again, labels_again = build_pretraining_set(settings, seed=5)
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    other, _ = build_pretraining_set(settings, seed=6)
    assert not np.array_equal(images, other)


# --- generators ---------------------------------------------------------------------------


def real_images(n: int = 16) -> np.ndarray:
    """Smooth random colour images (n, 32, 32, 3) uint8."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8)
    return coarse.repeat(4, axis=1).repeat(4, axis=2)


@pytest.mark.parametrize("kind", GENERATOR_KINDS)
def test_each_generator_trains_and_generates(kind):
    reals = real_images()
    generator = train_generator(kind, reals, steps=3, seed=0, width=4, batch_size=4)
    source = reals[:5] if generator.needs_source else 5
    fakes = generator.generate(source, seed=1)
    assert fakes.shape == (5, 32, 32, 3) and fakes.dtype == np.uint8
    assert np.array_equal(generator.generate(source, seed=1), fakes)  # seeded
    assert fakes.std() > 0
    again = train_generator(kind, reals, steps=3, seed=0, width=4, batch_size=4)
    assert np.array_equal(again.generate(source, seed=1), fakes)


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_stochastic_generators_depend_on_the_seed(kind):
    generator = train_generator(kind, real_images(), steps=2, seed=0, width=4, batch_size=4)
    source = real_images()[:4] if generator.needs_source else 4
    assert not np.array_equal(generator.generate(source, seed=1), generator.generate(source, 2))


def test_sr_training_reduces_error():
    reals = real_images(64)
    errors = []
    for steps in (1, 60):
        generator = train_generator("sr_bilinear", reals, steps=steps, seed=0, width=8)
        errors.append(np.abs(generator.generate(reals, 0).astype(float) - reals).mean())
    assert errors[1] < errors[0]


def test_generator_bad_input():
    with pytest.raises(SensoriumError, match="unknown generator kind 'diffusion'"):
        train_generator("diffusion", real_images(), 1, 0)
    with pytest.raises(SensoriumError, match=r"shape \(4, 16, 16, 3\); expected \(N, 32, 32, 3\)"):
        train_generator("sr_tconv", np.zeros((4, 16, 16, 3), np.uint8), 1, 0)
    with pytest.raises(SensoriumError, match="steps must be at least 1"):
        train_generator("sr_tconv", real_images(), 0, 0)
    generator = train_generator("sr_tconv", real_images(), 1, 0, width=4)
    with pytest.raises(SensoriumError, match="transforms real images; got a count"):
        generator.generate(3, seed=0)
