"""Probe results as a CSV, a JSON summary, a Markdown table and a bar chart."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sensorium.phai.probe import ProbeResult, group_means


def markdown_table(results: list[ProbeResult]) -> str:
    """Tasks as rows, feature kinds as columns: top-1 (top-3) in percent, then the means."""
    kinds = list(dict.fromkeys(r.features for r in results))
    tasks = list(dict.fromkeys(r.task for r in results))
    by = {(r.task, r.features): r for r in results}
    lines = [
        "| task | group | classes | " + " | ".join(kinds) + " |",
        "|---|---|---|" + "---|" * len(kinds),
    ]
    for task in tasks:
        first = next(r for r in results if r.task == task)
        cells = [
            f"{100 * by[task, k].top1:.1f} ({100 * by[task, k].top3:.1f})"
            if (task, k) in by
            else "-"
            for k in kinds
        ]
        lines.append(f"| {task} | {first.group} | {first.classes} | " + " | ".join(cells) + " |")
    means = group_means(results)
    for group in ("all", "physical", "semantic"):
        cells = []
        count = 0
        for k in kinds:
            m = means[k].get(group)
            count = m["tasks"] if m else count
            cells.append(f"**{100 * m['top1']:.1f}** ({100 * m['top3']:.1f})" if m else "-")
        tasks = f"{count} task" + ("s" if count != 1 else "")
        lines.append(f"| mean, {group} | | {tasks} | " + " | ".join(cells) + " |")
    note = (
        "\nHeld-out top-1 accuracy in percent; in brackets top-k with k = 3, or k = classes - 1 "
        "for tasks of 3 or fewer classes (for them top-3 would always be 100).\n"
    )
    return "\n".join(lines) + "\n" + note


def bar_chart(results: list[ProbeResult], path: Path) -> None:
    """Top-1 accuracy per task, one bar per feature kind, physical tasks first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r.features for r in results))
    tasks = sorted(
        dict.fromkeys(r.task for r in results),
        key=lambda t: next(r.group for r in results if r.task == t) != "physical",
    )
    by = {(r.task, r.features): r.top1 for r in results}
    width = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(tasks) + 2), 4.5))
    x = np.arange(len(tasks))
    for i, kind in enumerate(kinds):
        values = [100 * by.get((t, kind), np.nan) for t in tasks]
        ax.bar(x + (i - (len(kinds) - 1) / 2) * width, values, width, label=kind)
    groups = [next(r.group for r in results if r.task == t) for t in tasks]
    ax.set_xticks(x, [f"{t}\n({g})" for t, g in zip(tasks, groups, strict=True)], fontsize=7)
    ax.set_ylabel("held-out top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("linear probes on frozen features")
    ax.legend(fontsize=8, ncol=len(kinds))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: list[ProbeResult], out: Path, extra: dict) -> None:
    """results.csv, summary.json, table.md and accuracy.png in `out`."""
    out = Path(out)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        for r in results:
            writer.writerow(asdict(r))
    summary = {**extra, "means": group_means(results), "results": [asdict(r) for r in results]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "table.md").write_text(markdown_table(results))
    bar_chart(results, out / "accuracy.png")
