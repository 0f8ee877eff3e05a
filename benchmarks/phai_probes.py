"""Linear probes of the shipped principle-driven encoder against its baselines, over seeds.

For each seed, every probe task is built afresh (its data drawn with that seed) and split
70/30 with it; the principle-driven encoder and the plain-contrastive one (same
architecture, same RF, InfoNCE only; by default the shipped ones, --principle and
--contrastive take other checkpoints), the same architecture with random weights
(initialised with that seed), the log-magnitude spectrum and the raw samples are each
probed with a logistic regression. The table gives the mean and standard deviation of
held-out top-1 over the seeds, per task and per group.

    python benchmarks/phai_probes.py --seeds 3 --json docs/phai-probes.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sensorium.phai.cli import checkpoint_path
from sensorium.phai.encoder import PrincipleEncoder
from sensorium.phai.pretrain import load_encoder
from sensorium.phai.probe import (
    encoder_features,
    group_means,
    probe_task,
    raw_features,
    spectrum_features,
)
from sensorium.phai.tasks import build_task, parse_tasks


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--principle", default="shipped", help="encoder checkpoint or 'shipped'")
    parser.add_argument("--contrastive", default="contrastive", help="baseline checkpoint")
    args = parser.parse_args()

    principle, _ = load_encoder(checkpoint_path(args.principle))
    contrastive, _ = load_encoder(checkpoint_path(args.contrastive))
    names = parse_tasks(args.tasks)
    runs = []
    started = time.perf_counter()
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        featurizers = {
            "principle": encoder_features(principle),
            "contrastive": encoder_features(contrastive),
            "random": encoder_features(PrincipleEncoder(principle.config)),
            "spectrum": spectrum_features,
            "raw": raw_features,
        }
        results = []
        for name in names:
            task = build_task(name, principle.config.length, seed, args.scale)
            results += probe_task(task, featurizers, seed)
        runs.append(results)
        print(f"seed {seed} done after {time.perf_counter() - started:.0f} s", flush=True)

    kinds = list(dict.fromkeys(r.features for r in runs[0]))
    rows = []
    header = f"{'task':<18} {'group':<9}" + "".join(f"{k:>16}" for k in kinds)
    print(header)
    for name in names:
        group = next(r.group for r in runs[0] if r.task == name)
        cells, record = [], {"task": name, "group": group}
        for kind in kinds:
            values = [
                100 * r.top1 for run in runs for r in run if (r.task, r.features) == (name, kind)
            ]
            top3 = [
                100 * r.top3 for run in runs for r in run if (r.task, r.features) == (name, kind)
            ]
            mean, std = _mean_std(values)
            record[kind] = {"top1": mean, "top1_std": std, "top3": statistics.fmean(top3)}
            cells.append(f"{mean:>10.1f} ±{std:>4.1f}")
        rows.append(record)
        print(f"{name:<18} {group:<9}" + "".join(cells))
    means = {}
    for group in ("all", "physical", "semantic"):
        cells = []
        for kind in kinds:
            per_seed = [100 * group_means(run)[kind][group]["top1"] for run in runs]
            per_seed3 = [100 * group_means(run)[kind][group]["top3"] for run in runs]
            mean, std = _mean_std(per_seed)
            means.setdefault(kind, {})[group] = {
                "top1": mean, "top1_std": std, "top3": statistics.fmean(per_seed3)
            }  # fmt: skip
            cells.append(f"{mean:>10.1f} ±{std:>4.1f}")
        print(f"{'mean, ' + group:<28}" + "".join(cells))
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s for {args.seeds} seeds")
    if args.json:
        record = {"seeds": args.seeds, "scale": args.scale, "seconds": seconds,
                  "tasks": rows, "means": means}  # fmt: skip
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
