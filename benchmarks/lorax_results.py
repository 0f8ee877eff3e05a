"""LoRAX against its baselines on a benchmark folder: every method over the chosen orders.

Runs `sensorium lorax train DATA --order O --method M --out RUNS/O/M` for each order and
method (a run whose metrics.json already covers its order is kept, an unfinished one is
resumed), then prints the table docs/lorax.md shows: average incremental accuracy, final
average accuracy, backward transfer, real/fake accuracy and trainable extractor parameters
per task, and writes every run's metrics to --json.

    sensorium lorax build-data --out data/lorax-bench
    python benchmarks/lorax_results.py data/lorax-bench --runs runs/lorax --json lorax.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

METHODS = ("lorax", "expandable", "finetune", "replay", "linear", "joint")


def finished(run: Path, order_length: int | None) -> dict | None:
    path = run / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return metrics if order_length is None or len(metrics["order"]) == order_length else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--runs", default="runs/lorax")
    parser.add_argument("--orders", default="easy,hard,long")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", default=None)
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time, 1 thread each")
    parser.add_argument(
        "--train-options", default="", help='passed to every train command, e.g. "--epochs 4"'
    )
    args = parser.parse_args()

    from sensorium.lorax.data import resolve_order

    jobs = []  # (order, method, run folder, command or None when already finished)
    for order in args.orders.split(","):
        length = len(resolve_order(Path(args.data), order))
        for method in args.methods.split(","):
            run = Path(args.runs) / order / method
            command = None
            if finished(run, length) is None:
                command = [
                    sys.executable, "-m", "sensorium", "lorax", "train", args.data,
                    "--order", order, "--method", method, "--out", str(run),
                    *shlex.split(args.train_options),
                ]  # fmt: skip
                if (run / "checkpoint.pt").is_file():
                    command.append("--resume")
            jobs.append((order, method, run, length, command))
    # Several runs side by side, one thread each: on a small machine that keeps every core
    # busy without the threads of one run waiting on each other.
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.parallel > 1 else None
    running: list[subprocess.Popen] = []
    for *_, command in jobs:
        if command is None:
            continue
        while len(running) >= args.parallel:
            running.pop(0).wait()
        log = Path(command[command.index("--out") + 1]).with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:  # the child keeps its own copy of the file
            running.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
    failed = [p.args for p in running if p.wait() != 0]
    records = []
    for order, method, run, length, _ in jobs:
        metrics = finished(run, length)
        if metrics is None:
            failed.append(f"{order}/{method}")
            continue
        records.append({**metrics, "preset": order})
    if failed:
        print(f"unfinished runs: {failed}; see their .log files", file=sys.stderr)

    print(f"\n{'order':<6} {'method':<11} {'AIA':>6} {'final':>6} {'BWT':>7} {'real/fake':>9} "
          f"{'params/task':>11} {'share':>6} {'minutes':>7}")  # fmt: skip
    for r in records:
        params = r["extractor_parameters_per_task"]
        print(
            f"{r['preset']:<6} {r['method']:<11} {r['average_incremental_accuracy']:6.2f} "
            f"{r['final_average_accuracy']:6.2f} {r['backward_transfer']:+7.2f} "
            f"{r['final_binary_accuracy']:9.2f} {max(params):>11,} "
            f"{r['extractor_share_of_backbone_percent']:5.1f}% {r['seconds'] / 60:7.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"records": records}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
