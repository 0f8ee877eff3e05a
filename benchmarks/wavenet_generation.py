"""Naive against cached WaveNet generation, in one process, on this machine.

For every receptive field and batch size this measures samples per second of the naive
sampler (a full pass over the receptive field per sample) and of the cached sampler (layer
queues, compiled step loop), repeats each measurement, and prints medians and their ratio.
It also reports the cached sampler's achieved FLOP/s against a matrix-multiply peak measured
here, and the eager-PyTorch cached sampler at batch 1 for contrast.

Reference configuration: 2 stacks, 64 residual and gate channels, 128 skip channels, kernel
width 2, 256 classes; the receptive field grows with the layers per stack (10 layers: 2,047
samples, about 1.3 MFLOP per sample).

    python benchmarks/wavenet_generation.py --json wavenet.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sensorium.fastgen.wavenet import WaveNet, WaveNetConfig
from sensorium.fastgen.wavenet_samplers import (
    EagerCachedSampler,
    FusedCachedSampler,
    NaiveSampler,
    WaveNetSampler,
)


def flops_per_sample(cfg: WaveNetConfig) -> int:
    """Multiply-adds of one cached step, times two: dilated conv, 1x1 convs, the head."""
    R, G, S, Q, k = (
        cfg.residual_channels,
        cfg.gate_channels,
        cfg.skip_channels,
        cfg.quantization,
        cfg.kernel_size,
    )
    per_layer = k * R * 2 * G + G * R + G * S
    return 2 * (cfg.num_layers * per_layer + S * Q + Q * Q)


def samples_per_second(
    sampler: WaveNetSampler, steps: int, batch: int, repeats: int
) -> tuple[float, list[float]]:
    """Median and all runs of (steps * batch) / seconds, after one warm-up call."""
    sampler.generate(min(steps, 16), batch=batch, seed=0)  # compile, allocate
    runs = []
    for r in range(repeats):
        started = time.perf_counter()
        sampler.generate(steps, batch=batch, seed=r)
        runs.append(steps * batch / (time.perf_counter() - started))
    return statistics.median(runs), runs


def matmul_peak_gflops(repeats: int = 5) -> float:
    """Best float32 GEMM rate of torch on this machine, all its threads."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layers",
        default="9,10,11,12,13",
        help="layers per stack to try (receptive fields 1023 .. 16383)",
    )
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cached-samples",
        type=int,
        default=8000,
        help="samples per stream in one cached measurement",
    )
    parser.add_argument(
        "--naive-seconds",
        type=float,
        default=1.0,
        help="rough time budget of one naive measurement",
    )
    parser.add_argument("--json", default=None, help="write the records here")
    args = parser.parse_args()
    torch.manual_seed(0)

    peak = matmul_peak_gflops()
    print(f"float32 matmul peak here: {peak:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    records = []
    header = (
        f"{'layers':>6} {'RF':>6} {'batch':>5} {'naive/s':>10} {'cached/s':>10} "
        f"{'speedup':>8} {'cached GFLOP/s':>14} {'of peak':>7}"
    )
    print(header)
    for layers in [int(v) for v in args.layers.split(",")]:
        cfg = WaveNetConfig(layers_per_stack=layers)
        model = WaveNet(cfg).eval()
        for batch in [int(v) for v in args.batches.split(",")]:
            cached_steps = max(200, args.cached_samples // max(1, batch // 8))
            fast, fast_runs = samples_per_second(
                FusedCachedSampler(model), cached_steps, batch, args.repeats
            )
            # Size the naive run from one timed step so it fits the time budget.
            naive = NaiveSampler(model)
            probe = time.perf_counter()
            naive.generate(2, batch=batch, seed=0)
            per_step = (time.perf_counter() - probe) / 2
            naive_steps = max(2, int(args.naive_seconds / per_step))
            slow, slow_runs = samples_per_second(naive, naive_steps, batch, args.repeats)
            gflops = fast * flops_per_sample(cfg) / 1e9
            record = {
                "layers_per_stack": layers,
                "stacks": cfg.stacks,
                "residual_channels": cfg.residual_channels,
                "gate_channels": cfg.gate_channels,
                "skip_channels": cfg.skip_channels,
                "kernel_size": cfg.kernel_size,
                "receptive_field": cfg.receptive_field,
                "batch": batch,
                "mflop_per_sample": flops_per_sample(cfg) / 1e6,
                "naive_samples_per_s": slow,
                "cached_samples_per_s": fast,
                "speedup": fast / slow,
                "cached_gflop_per_s": gflops,
                "matmul_peak_gflop_per_s": peak,
                "naive_runs": slow_runs,
                "cached_runs": fast_runs,
                "naive_steps": naive_steps,
                "cached_steps": cached_steps,
            }
            records.append(record)
            print(
                f"{layers:>6} {cfg.receptive_field:>6} {batch:>5} {slow:>10.1f} {fast:>10.0f} "
                f"{fast / slow:>7.0f}x {gflops:>14.1f} {gflops / peak:>7.1%}",
                flush=True,
            )

    reference = WaveNet(WaveNetConfig()).eval()
    eager, eager_runs = samples_per_second(EagerCachedSampler(reference), 1000, 1, args.repeats)
    fused, fused_runs = samples_per_second(FusedCachedSampler(reference), 16000, 1, args.repeats)
    print(
        f"reference config, batch 1: eager cached {eager:.0f} samples/s, "
        f"compiled cached {fused:.0f} samples/s ({fused / eager:.1f}x)"
    )
    summary = {
        "records": records,
        "reference_batch1": {
            "eager_cached_samples_per_s": eager,
            "cached_samples_per_s": fused,
            "eager_runs": eager_runs,
            "cached_runs": fused_runs,
        },
        "matmul_peak_gflop_per_s": peak,
        "torch_threads": torch.get_num_threads(),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
