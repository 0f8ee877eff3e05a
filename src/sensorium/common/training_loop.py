"""The step loop every trainer shares: progress bar, periodic evaluation, metrics, saving.

A trainer supplies what differs: one optimisation step, an evaluation and a save. The loop
averages the training loss between evaluations over all processes, evaluates on rank 0 only,
logs one line and appends one metrics row per evaluation, and keeps the processes in step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.common.metrics_log import MetricsLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossNames:
    """How a loss and its held-out score are called in the log and in metrics.csv."""

    unit: str  # e.g. "bits/sample"
    score: str  # the held-out set, e.g. "validation"
    train_column: str  # e.g. "train_bits"
    score_column: str  # e.g. "val_bits"


@dataclass(frozen=True)
class LoopResult:
    steps: int
    last_score: float  # NaN if no evaluation ran
    seconds: float


def run_steps(
    ctx: DistributedContext,
    run_dir: Path,
    names: LossNames,
    first_step: int,
    total_steps: int,
    eval_every: int,
    train_step: Callable[[], float],
    evaluate: Callable[[bool], float],
    save: Callable[[int, float, float], None],
    seconds_before: float = 0.0,
) -> LoopResult:
    """Run steps first_step + 1 .. total_steps.

    Args:
        train_step: one optimisation step; returns its loss.
        evaluate: the held-out score, called on rank 0 every `eval_every` steps and at the
            last step (with True).
        save: called on rank 0 after every evaluation with the step, the score and the
            seconds of training so far.
        seconds_before: training time of the run before this call (when resuming).
    """
    log = None
    if ctx.is_main:
        columns = ["step", names.train_column, names.score_column, "seconds"]
        log = MetricsLog(Path(run_dir) / "metrics.csv", columns)
    started = time.perf_counter() - seconds_before
    running: list[float] = []
    score = float("nan")
    step = first_step
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="training",
        unit="step",
        disable=not ctx.is_main,
        delay=0.5,
    )
    while step < total_steps:
        running.append(train_step())
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}")
        last = step == total_steps
        if step % eval_every and not last:
            continue
        train_loss = ctx.all_reduce_mean(float(np.mean(running)))
        running = []
        if ctx.is_main:
            score = evaluate(last)
            logger.info(
                "step %d: train %.3f %s, %s %.3f %s",
                step,
                train_loss,
                names.unit,
                names.score,
                score,
                names.unit,
            )
            elapsed = time.perf_counter() - started
            log.append([step, train_loss, score, elapsed])
            save(step, score, elapsed)
        ctx.barrier()
    bar.close()
    return LoopResult(step, score, time.perf_counter() - started)


def write_summary(run_dir: Path, summary: dict, ctx: DistributedContext) -> None:
    """The run's closing figures as summary.json, from rank 0."""
    if ctx.is_main:
        (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def run_trainer(trainer, names: LossNames, evaluate: Callable[[bool], float], **figures) -> dict:
    """Run a trainer's remaining steps with `run_steps`, then write and return its summary.

    `trainer` carries `ctx`, `run_dir`, `step`, `seconds_before`, `settings.steps`,
    `settings.eval_every`, `train_step()` and `save(score, seconds)`. `figures` maps summary
    keys to functions of the `LoopResult` (e.g. the last score under its own name).
    """
    s = trainer.settings
    if trainer.step >= s.steps:
        raise SensoriumError(
            f"the run in {str(trainer.run_dir)!r} is already at step {trainer.step}; "
            f"pass --steps above {trainer.step} to train on"
        )
    result = run_steps(
        trainer.ctx,
        trainer.run_dir,
        names,
        trainer.step,
        s.steps,
        s.eval_every,
        trainer.train_step,
        evaluate=evaluate,
        save=lambda step, score, seconds: trainer.save(score, seconds),
        seconds_before=trainer.seconds_before,
    )
    summary = {
        "steps": result.steps,
        **{key: figure(result) for key, figure in figures.items()},
        "seconds": result.seconds,
        "world_size": trainer.ctx.world_size,
    }
    write_summary(trainer.run_dir, summary, trainer.ctx)
    return summary
