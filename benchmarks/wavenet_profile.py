"""Where one cached WaveNet sample's time goes, at batch 1, on this machine.

The compiled step loop is one opaque function to a Python profiler, so this measures its parts
by difference, in one process:
- per layer: the slope of microseconds per sample against the number of layers;
- head and sampling: what is left at zero layers (intercept);
- sampling alone: a softmax draw against a greedy pick (temperature 1 against 0);
- the weights' bytes per sample and the bandwidth that implies.
For the eager cached sampler it prints torch.profiler's busiest operators for contrast.

    python benchmarks/wavenet_profile.py --json profile.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from sensorium.fastgen.wavenet import WaveNet, WaveNetConfig
from sensorium.fastgen.wavenet_samplers import EagerCachedSampler, FusedCachedSampler


def microseconds_per_sample(
    sampler, steps: int, repeats: int, temperature: float = 1.0, **kwargs
) -> float:
    sampler.generate(64, temperature=temperature, **kwargs)
    runs = []
    for r in range(repeats):
        started = time.perf_counter()
        sampler.generate(steps, seed=r, temperature=temperature, **kwargs)
        runs.append((time.perf_counter() - started) / steps * 1e6)
    return statistics.median(runs)


def weight_bytes(model: WaveNet) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)

    rows = []
    print(f"{'layers':>6} {'weights MB':>10} {'us/sample':>10} {'samples/s':>10}")
    for layers_per_stack in (2, 4, 6, 8, 10):
        model = WaveNet(WaveNetConfig(layers_per_stack=layers_per_stack)).eval()
        us = microseconds_per_sample(FusedCachedSampler(model), args.steps, args.repeats)
        layers = model.config.num_layers
        rows.append({"layers": layers, "weight_bytes": weight_bytes(model), "us_per_sample": us})
        print(f"{layers:>6} {weight_bytes(model) / 1e6:>10.2f} {us:>10.1f} {1e6 / us:>10.0f}")
    layers = np.array([r["layers"] for r in rows], dtype=float)
    us = np.array([r["us_per_sample"] for r in rows])
    slope, intercept = np.polyfit(layers, us, 1)

    reference = WaveNet(WaveNetConfig()).eval()
    fused = FusedCachedSampler(reference)
    hot = microseconds_per_sample(fused, args.steps, args.repeats, temperature=1.0)
    greedy = microseconds_per_sample(fused, args.steps, args.repeats, temperature=0.0)
    ref_bytes = weight_bytes(reference)
    print(
        f"\nfit over layer counts: {slope:.2f} us per layer, {intercept:.1f} us per sample for "
        f"the head, sampling and loop overhead"
    )
    print(
        f"reference (20 layers): {hot:.1f} us/sample with a softmax draw, {greedy:.1f} us "
        f"greedy; sampling costs {hot - greedy:.1f} us"
    )
    print(
        f"weights {ref_bytes / 1e6:.2f} MB read once per sample: "
        f"{ref_bytes / (hot * 1e-6) / 1e9:.1f} GB/s effective"
    )

    eager = EagerCachedSampler(reference)
    eager.generate(32)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        eager.generate(200)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    print("\neager cached sampler, 200 samples, busiest operators:\n" + table)
    eager_us = microseconds_per_sample(eager, 500, 3)
    print(f"eager cached: {eager_us:.0f} us/sample ({1e6 / eager_us:.0f} samples/s)")

    if args.json:
        summary = {
            "layer_sweep": rows,
            "us_per_layer": slope,
            "us_head_sampling_overhead": intercept,
            "reference_us_per_sample": hot,
            "reference_us_per_sample_greedy": greedy,
            "reference_weight_bytes": ref_bytes,
            "eager_us_per_sample": eager_us,
        }
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
