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


class StepClock:
    """A progress callback that timestamps every report of finished samples."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def __call__(self, count: int) -> None:
        self.marks.append((time.perf_counter(), count))

    def step_rates(self) -> list[float]:
        """Samples per stream and second of each report after the first."""
        pairs = zip(self.marks, self.marks[1:], strict=False)
        return [count / (t1 - t0) for (t0, _), (t1, count) in pairs]

    def samples_per_second(self) -> float:
        """Samples per stream and second after the first report, which covers the priming."""
        samples = sum(count for _, count in self.marks[1:])
        return samples / (self.marks[-1][0] - self.marks[0][0])


def samples_per_second(
    sampler: WaveNetSampler, steps: int, batch: int, receptive_field: int, repeats: int
) -> tuple[float, list[float]]:
    """Median samples/s (all streams together) over `repeats` runs of `steps` steps.

    Every run continues a random prime one receptive field long, so the naive sampler always
    passes over a full window, and the priming (one full pass for the cached samplers) is
    left out of the timing.
    """
    prime = torch.randint(0, 256, (batch, receptive_field))
    sampler.generate(2, batch=batch, prime=prime)  # compile, allocate
    runs = []
    for r in range(repeats):
        clock = StepClock()
        sampler.generate(steps + 1, batch=batch, seed=r, prime=prime, progress=clock)
        runs.append(clock.samples_per_second() * batch)
    return statistics.median(runs), runs


def naive_samples_per_second(
    sampler: NaiveSampler, batch: int, receptive_field: int, budget: float
) -> tuple[float, list[float], int]:
    """Median samples/s over single naive steps, each a full pass over a full window.

    One step sizes the run to about `budget` seconds (at least 3 timed steps): each naive step
    costs the same, so the steps of one run serve as the repeats.
    """
    prime = torch.randint(0, 256, (batch, receptive_field))
    probe = StepClock()
    sampler.generate(2, batch=batch, prime=prime, progress=probe)
    per_step = 1.0 / probe.samples_per_second()
    steps = max(3, int(budget / per_step))
    clock = StepClock()
    sampler.generate(steps + 1, batch=batch, prime=prime, progress=clock)
    rates = [rate * batch for rate in clock.step_rates()]
    return statistics.median(rates), rates, steps


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
            rf = cfg.receptive_field
            fast, fast_runs = samples_per_second(
                FusedCachedSampler(model), cached_steps, batch, rf, args.repeats
            )
            slow, slow_runs, naive_steps = naive_samples_per_second(
                NaiveSampler(model), batch, rf, args.naive_seconds
            )
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
    eager, eager_runs = samples_per_second(
        EagerCachedSampler(reference), 1000, 1, reference.config.receptive_field, args.repeats
    )
    fused, fused_runs = samples_per_second(
        FusedCachedSampler(reference), 16000, 1, reference.config.receptive_field, args.repeats
    )
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
