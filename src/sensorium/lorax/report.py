"""A continual run's results on disk: accuracy matrices as CSV, metrics as JSON, a plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from sensorium.lorax.metrics import summarize


def write_matrix(path: Path, R: np.ndarray, names: list[str]) -> None:
    """Rows: the task evaluated; columns: after training each task. Percent; blank = unseen."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", *[f"after {n}" for n in names[: R.shape[1]]]])
        for i, name in enumerate(names[: R.shape[0]]):
            writer.writerow([name, *["" if np.isnan(v) else f"{100 * v:.2f}" for v in R[i]]])


def run_metrics(
    method: str,
    names: list[str],
    R: np.ndarray,
    binary: np.ndarray,
    records: list[dict],
    backbone_parameters: int,
) -> dict:
    """The metrics.json of a run: the headline figures and each task's cost."""
    per_task = [r["extractor_parameters"] for r in records]
    return {
        "method": method,
        "order": names,
        **summarize(R, binary),
        "backbone_parameters": backbone_parameters,
        "trainable_parameters_per_task": [r["trainable_parameters"] for r in records],
        "extractor_parameters_per_task": per_task,
        "extractor_share_of_backbone_percent": 100 * float(np.mean(per_task)) / backbone_parameters,
        "seconds": float(sum(r["seconds"] for r in records)),
        "tasks": records,
    }


def write_report(run_dir: Path, metrics: dict, R: np.ndarray, binary: np.ndarray) -> None:
    names = metrics["order"]
    write_matrix(run_dir / "accuracy_matrix.csv", R, names)
    write_matrix(run_dir / "binary_accuracy_matrix.csv", binary, names)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_accuracy(run_dir / "accuracy.png", R, names, metrics["method"])


def plot_accuracy(path: Path, R: np.ndarray, names: list[str], method: str) -> None:
    """Accuracy on each task over the sequence, and the mean over the tasks seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, R.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for i in range(R.shape[0]):
        ax.plot(steps[i:], 100 * R[i, i:], marker="o", ms=3, lw=1.2, label=names[i])
    mean = [100 * np.mean(R[: j + 1, j]) for j in range(R.shape[1])]
    ax.plot(steps, mean, color="black", lw=2.4, ls="--", label="mean of tasks seen")
    ax.set_xticks(steps, [f"{j}\n{names[j - 1][:12]}" for j in steps], fontsize=7)
    ax.set_xlabel("after training task")
    ax.set_ylabel("attribution accuracy (%)")
    ax.set_title(f"{method}: accuracy on each task through the sequence")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
