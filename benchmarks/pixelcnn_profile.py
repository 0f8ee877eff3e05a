"""Where the cached PixelCNN++ sampler's time goes, on this machine.

The cached sampler computes every layer output once, about the arithmetic of one full pass of
the network per image. This measures, in one process and for each batch size:
- one full forward pass over the batch (the arithmetic the cached sampler must at least do);
- the cached sampler's whole batch, and its split (cProfile, cumulative) into the vertical
  stream (`begin_row`, once per row), the horizontal stream (`pixel`, once per pixel), the
  pixel draws and the hand-back of drawn pixels (`feed`);
- the PyTorch operators that take the most time, and how many operator calls a pixel costs.

Reference configuration: 28x28 grayscale, 64 filters, 3 gated resnets per resolution,
5 mixture components (as in `pixelcnn_generation.py`).

    python benchmarks/pixelcnn_profile.py --json pixelcnn-profile.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time

import torch

from sensorium.fastgen.pixelcnn import PixelCNN, PixelCNNConfig
from sensorium.fastgen.pixelcnn_samplers import CachedPixelSampler

PARTS = {
    "vertical stream (begin_row)": "begin_row",
    "horizontal stream (pixel)": "pixel",
    "pixel draws (_draw_pixel)": "_draw_pixel",
    "hand-back of drawn pixels (feed)": "feed",
}


def full_pass_seconds(model: PixelCNN, batch: int, repeats: int) -> float:
    cfg = model.config
    x = torch.rand(batch, cfg.channels, cfg.height, cfg.width) * 2 - 1
    with torch.no_grad():
        model(x)
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(x)
            runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def profile_batch(sampler: CachedPixelSampler, batch: int) -> dict:
    sampler.generate(batch, batch=batch, pixels=2)  # allocate, compile the draw
    started = time.perf_counter()
    sampler.generate(batch, batch=batch, seed=1)
    plain = time.perf_counter() - started
    profiler = cProfile.Profile()
    profiler.enable()
    sampler.generate(batch, batch=batch, seed=2)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tottime, cumtime, ...)}
    profiled = sum(v[2] for v in stats.values())
    parts = {}
    for label, name in PARTS.items():
        parts[label] = sum(v[3] for k, v in stats.items() if k[2] == name)
    torch_ops = {}
    for (file, _, name), (_, calls, tottime, _, _) in stats.items():
        if file == "~" and ("torch" in name or "Tensor" in name):
            torch_ops[name] = (calls, tottime)
    calls = sum(c for c, _ in torch_ops.values())
    busiest = sorted(torch_ops.items(), key=lambda kv: -kv[1][1])[:8]
    pixels = sampler.config.height * sampler.config.width
    return {
        "cached_seconds": plain,
        "profiled_seconds": profiled,
        "parts_seconds_profiled": parts,
        "torch_calls_per_pixel": calls / pixels,
        "busiest_torch_calls": [
            {"name": n, "calls": c, "seconds_profiled": t} for n, (c, t) in busiest
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--resnets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = PixelCNNConfig(filters=args.filters, resnets=args.resnets, mixtures=5)
    model = PixelCNN(cfg).eval()
    sampler = CachedPixelSampler(model)
    records = []
    for batch in [int(v) for v in args.batches.split(",")]:
        full = full_pass_seconds(model, batch, args.repeats)
        record = {"batch": batch, "full_pass_seconds": full, **profile_batch(sampler, batch)}
        records.append(record)
        print(
            f"\nbatch {batch}: one full pass {full * 1000:.1f} ms; cached sampler "
            f"{record['cached_seconds']:.2f} s a batch ({record['cached_seconds'] / full:.1f} "
            f"full passes); {record['torch_calls_per_pixel']:.0f} PyTorch calls a pixel"
        )
        total = record["profiled_seconds"]
        print(f"  under cProfile {total:.2f} s, of which (cumulative):")
        for label, seconds in record["parts_seconds_profiled"].items():
            print(f"    {label:<36} {seconds:7.2f} s  {seconds / total:6.1%}")
        print("  busiest PyTorch calls (own time under cProfile):")
        for op in record["busiest_torch_calls"]:
            print(f"    {op['name']:<36} {op['calls']:>7} calls {op['seconds_profiled']:7.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg.to_dict(), "records": records}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
