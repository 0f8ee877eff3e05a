"""`sensorium pixelcnn train | generate | demo`."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from sensorium.common.cli_options import add_run_options, add_sampling_options, add_system
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_writable
from sensorium.data.images import DEFAULT_FASHION_MNIST_DIR
from sensorium.fastgen.pixelcnn_samplers import SAMPLERS

logger = logging.getLogger(__name__)


def register(systems: argparse._SubParsersAction) -> None:
    add_system(
        systems,
        "pixelcnn",
        "PixelCNN++ with fast cached generation",
        [_add_train, _add_generate, _add_demo],
    )


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def _add_train(verbs) -> None:
    p = verbs.add_parser(
        "train",
        help="train on an image set: MNIST-style IDX files or a folder of images of one size",
        description="Train a PixelCNN++. DATA is a folder holding train-images-idx3-ubyte[.gz] "
        "and t10k-images-idx3-ubyte[.gz] (kept as the train/test split), one IDX file, or a "
        "folder of image files of one size (a --test-fraction is held out). Under `torchrun "
        "--nproc_per_node=N` the same command trains with DistributedDataParallel.",
    )
    p.add_argument(
        "data",
        nargs="?",
        default=str(DEFAULT_FASHION_MNIST_DIR),
        help=f"image data; default: Fashion-MNIST in {DEFAULT_FASHION_MNIST_DIR}",
    )
    add_run_options(p, steps=3000, batch_size=32, lr=1e-3, eval_every=500)
    p.add_argument(
        "--lr-decay", type=float, default=0.9995, help="learning rate factor per 10 steps"
    )
    p.add_argument("--ema", type=float, default=0.999, help="weight averaging; 0: off")
    p.add_argument(
        "--eval-images",
        type=int,
        default=1000,
        help="test images per evaluation; the last evaluation scores every test image",
    )
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--resnets", type=int, default=2, help="gated residual blocks per resolution")
    p.add_argument("--mixtures", type=int, default=5, help="logistic mixture components")
    p.add_argument("--dropout", type=float, default=0.1)
    p.set_defaults(run=_train)


def _train(args) -> int:
    from sensorium.common.training_run import (
        RUN_OUTPUTS,
        saved_settings,
        training_run,
        write_settings,
    )
    from sensorium.fastgen.pixelcnn import PixelCNNConfig
    from sensorium.fastgen.pixelcnn_train import PixelCNNTrainer, PixelTrainSettings

    settings = PixelTrainSettings(
        data=str(Path(args.data).resolve()),
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        ema=args.ema,
        eval_every=args.eval_every,
        eval_images=args.eval_images,
        test_fraction=args.test_fraction,
        seed=args.seed,
        model=PixelCNNConfig(
            filters=args.filters,
            resnets=args.resnets,
            mixtures=args.mixtures,
            dropout=args.dropout,
        ),
    )
    if args.resume:  # the model and its data as the run began; the schedule from this command
        saved = saved_settings(Path(args.out))
        try:
            settings = replace(
                settings,
                data=saved["data"],
                test_fraction=saved["test_fraction"],
                seed=saved["seed"],
                model=PixelCNNConfig.from_dict(saved["model"]),
            )
        except (KeyError, TypeError) as exc:
            raise SensoriumError(
                f"cannot resume: settings.json in {args.out!r} lacks {exc}"
            ) from exc
    with training_run(args, clear=RUN_OUTPUTS) as ctx:
        trainer = PixelCNNTrainer(settings, ctx, resume=args.resume)
        write_settings(Path(args.out), settings, ctx)
        summary = trainer.train()
        if ctx.is_main:
            print(
                f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; test "
                f"{summary['test_bits_per_dim']:.3f} bits/dim on {summary['test_images']} "
                f"images; model: {Path(args.out) / 'model.pt'}"
            )
    return 0


# --------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------
def _add_sampling_options(p, choose_sampler: bool = True) -> None:
    add_sampling_options(
        p,
        SAMPLERS if choose_sampler else None,
        "naive: a full pass per pixel; cached: every layer output computed once",
    )
    p.add_argument("--batch", type=int, default=16, help="images drawn together")


def _add_generate(verbs) -> None:
    p = verbs.add_parser(
        "generate",
        help="draw images from a checkpoint: a grid PNG and the images as .npy",
        description="Draw N images. Writes GRID.png (the images tiled) and GRID.npy "
        "(uint8, N x C x H x W).",
    )
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        help="model.pt or checkpoint.pt of a run; default: the Fashion-MNIST model shipped "
        "with sensorium",
    )
    p.add_argument("--out", required=True, help="grid PNG path")
    p.add_argument("--n", type=int, default=16, help="how many images")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    _add_sampling_options(p)
    p.set_defaults(run=_generate)


def _generate(args) -> int:
    import numpy as np

    from sensorium.fastgen.pixelcnn_generate import SHIPPED_PIXELCNN, draw_images, save_grid
    from sensorium.fastgen.pixelcnn_train import load_pixelcnn

    setup_logging()
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise SensoriumError(f"output {str(out)!r} must end in .png")
    array = out.with_suffix(".npy")
    for path in (out, array):
        check_writable(path, args.force)
    model, _ = load_pixelcnn(Path(args.checkpoint or SHIPPED_PIXELCNN), args.device)
    with _pixel_bar(model, args.n, f"drawing ({args.sampler})") as bar:
        images, summary = draw_images(
            model, args.n, args.sampler, args.batch, args.seed, args.dtype, bar.update
        )
    np.save(array, images.numpy())
    save_grid(out, images)
    print(
        f"wrote {out} and {array} ({args.n} images of {'x'.join(map(str, images.shape[1:]))}) "
        f"with the {args.sampler} sampler at {summary['images_per_second']:.2f} images/s"
    )
    return 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------
def _add_demo(verbs) -> None:
    p = verbs.add_parser(
        "demo",
        help="the shipped Fashion-MNIST model: a grid of samples beside real images, "
        "naive vs cached speed",
    )
    p.add_argument("--out", default="pixelcnn-demo", help="output folder")
    p.add_argument("--n", type=int, default=16, help="images to draw with the cached sampler")
    p.add_argument(
        "--naive-pixels",
        type=int,
        default=20,
        help="pixels the naive sampler draws (per image) to measure its speed",
    )
    _add_sampling_options(p, choose_sampler=False)
    p.set_defaults(run=_demo)


def _demo(args) -> int:
    from sensorium.data.images import load_image_splits
    from sensorium.fastgen.pixelcnn_generate import (
        SHIPPED_PIXELCNN,
        draw_images,
        naive_images_per_second,
        plot_samples_beside_real,
    )
    from sensorium.fastgen.pixelcnn_train import load_pixelcnn

    setup_logging()
    out = Path(args.out)
    grid, report = out / "samples.png", out / "speed.json"
    for path in (grid, report):
        check_writable(path, args.force)
    if args.naive_pixels < 1:
        raise SensoriumError(f"--naive-pixels {args.naive_pixels} must be >= 1")
    model, checkpoint = load_pixelcnn(SHIPPED_PIXELCNN)
    real = load_image_splits(DEFAULT_FASHION_MNIST_DIR).test[: args.n]
    with _pixel_bar(model, args.n, "drawing (cached)") as bar:
        images, fast = draw_images(
            model, args.n, "cached", args.batch, args.seed, args.dtype, bar.update
        )
    plot_samples_beside_real(grid, images, real, checkpoint.get("test_bits"))
    with tqdm(total=args.batch * args.naive_pixels, desc="timing the naive sampler") as bar:
        slow = naive_images_per_second(model, args.batch, args.naive_pixels, args.dtype, bar.update)
    speed = {
        "image_size": list(images.shape[1:]),
        "batch": args.batch,
        "cached_images_per_s": fast["images_per_second"],
        "naive_images_per_s": slow,
        "speedup": fast["images_per_second"] / slow,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    report.write_text(json.dumps(speed, indent=2) + "\n")
    print(f"wrote {grid}: {args.n} samples beside {real.shape[0]} real Fashion-MNIST test images")
    print(
        f"naive sampler:  {speed['naive_images_per_s']:10.3f} images/s (batch {args.batch})\n"
        f"cached sampler: {speed['cached_images_per_s']:10.3f} images/s "
        f"({speed['speedup']:.0f}x faster)"
    )
    return 0


def _pixel_bar(model, images: int, desc: str) -> tqdm:
    cfg = model.config
    total = images * cfg.height * cfg.width
    return tqdm(total=total, desc=desc, unit="pixel", unit_scale=True, delay=0.5)
