"""Naive against cached PixelCNN++ generation, in one process, on this machine.

For each image shape and batch size this measures images per second of the naive sampler (a
full pass of the network over the whole image for every pixel) and of the cached sampler
(every layer output computed once), repeats each measurement, and prints medians and their
ratio. Every naive step is the same full pass, so the naive sampler is timed over its first
`--naive-pixels` pixels (at least 3 steps, about `--naive-seconds`), and an image's time is
H * W steps; the cached sampler is timed on whole images.

Reference configurations (weights random: speed does not depend on them):
    28x28 grayscale: 64 filters, 3 gated resnets per resolution, 5 mixture components
    32x32 RGB:       64 filters, 3 gated resnets per resolution, 10 mixture components

    python benchmarks/pixelcnn_generation.py --json pixelcnn.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import torch

from sensorium.fastgen.pixelcnn import PixelCNN, PixelCNNConfig
from sensorium.fastgen.pixelcnn_samplers import CachedPixelSampler, NaivePixelSampler

SHAPES = {"28x28x1": (1, 28, 28, 5), "32x32x3": (3, 32, 32, 10)}


def cached_images_per_second(sampler: CachedPixelSampler, batch: int, repeats: int):
    """Median images/s over `repeats` batches of whole images, after one warm-up pixel."""
    sampler.generate(batch, batch=batch, pixels=1)
    runs = []
    for r in range(repeats):
        started = time.perf_counter()
        sampler.generate(batch, batch=batch, seed=r)
        runs.append(batch / (time.perf_counter() - started))
    return statistics.median(runs), runs


def naive_images_per_second(sampler: NaivePixelSampler, batch: int, budget: float):
    """Median images/s over single naive steps, each a full pass over the whole image."""
    cfg = sampler.config
    marks: list[float] = []
    sampler.generate(batch, batch=batch, pixels=1)  # warm up
    started = time.perf_counter()
    sampler.generate(batch, batch=batch, pixels=1)
    steps = max(3, min(cfg.height * cfg.width, int(budget / (time.perf_counter() - started))))
    marks.append(time.perf_counter())
    sampler.generate(batch, batch=batch, pixels=steps, progress=lambda _: marks.append(
        time.perf_counter()))  # fmt: skip
    per_step = [b - a for a, b in itertools.pairwise(marks)]
    rates = [batch / (t * cfg.height * cfg.width) for t in per_step]
    return statistics.median(rates), rates, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="of " + ", ".join(SHAPES))
    parser.add_argument("--batches", default="1,4,16,64")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--resnets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-seconds", type=float, default=10.0)
    parser.add_argument("--json", default=None, help="write the records here")
    args = parser.parse_args()
    torch.manual_seed(0)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'shape':>8} {'batch':>5} {'naive img/s':>12} {'cached img/s':>13} {'speedup':>8}")
    records = []
    for shape in args.shapes.split(","):
        channels, height, width, mixtures = SHAPES[shape]
        cfg = PixelCNNConfig(
            channels=channels,
            height=height,
            width=width,
            filters=args.filters,
            resnets=args.resnets,
            mixtures=mixtures,
        )
        model = PixelCNN(cfg).eval()
        cached = CachedPixelSampler(model)
        naive = NaivePixelSampler(model)
        for batch in [int(v) for v in args.batches.split(",")]:
            fast, fast_runs = cached_images_per_second(cached, batch, args.repeats)
            slow, slow_runs, steps = naive_images_per_second(naive, batch, args.naive_seconds)
            record = {
                "shape": shape,
                **cfg.to_dict(),
                "batch": batch,
                "naive_images_per_s": slow,
                "cached_images_per_s": fast,
                "speedup": fast / slow,
                "naive_steps_timed": steps,
                "naive_runs": slow_runs,
                "cached_runs": fast_runs,
                "torch_threads": torch.get_num_threads(),
            }
            records.append(record)
            print(
                f"{shape:>8} {batch:>5} {slow:>12.4f} {fast:>13.3f} {fast / slow:>7.0f}x",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"records": records}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
