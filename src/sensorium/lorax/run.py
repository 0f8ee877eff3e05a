"""A whole continual run: read the tasks, learn them in order, save and report after each.

The run folder's `checkpoint.pt` holds everything after the last finished task (the net, the
memory, the accuracy matrices), so `--resume` continues a run, and a run can be extended by
new tasks later (new generators) by resuming with a longer order that starts with the old.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from sensorium.common.checkpoints import load_checkpoint, load_weights, save_checkpoint
from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.common.training_run import write_settings
from sensorium.lorax.backbone import build_backbone, count_parameters
from sensorium.lorax.data import read_tasks, resolve_order
from sensorium.lorax.harness import ContinualSettings, evaluate_tasks, learn_task
from sensorium.lorax.memory import ExemplarMemory
from sensorium.lorax.methods import ContinualNet, build_net
from sensorium.lorax.report import run_metrics, write_report

logger = logging.getLogger(__name__)

RUN_KIND = "lorax-run"


def build_run_net(settings: ContinualSettings, backbone: dict) -> tuple[ContinualNet, dict, int]:
    """The learner over the backbone `backbone` describes ({spec, weights, image_size}), that
    description with the backbone's input size filled in, and its parameter count."""
    net = build_backbone(backbone["spec"], backbone.get("weights"), backbone.get("image_size"))
    described = {**backbone, "image_size": net.image_size}
    return build_net(settings.method, net, settings.lora), described, count_parameters(net)


def restore_run(path: Path) -> tuple[dict, ContinualNet, ExemplarMemory, int]:
    """A run's checkpoint, its net with every finished task's extractor and weights, its
    memory and the backbone's parameter count."""
    data = load_checkpoint(path, RUN_KIND)
    try:
        settings = ContinualSettings(**data["settings"])
        net, _, backbone_parameters = build_run_net(settings, data["backbone"])
        for _ in data["order"]:
            net.begin_task()
    except (KeyError, TypeError) as exc:
        raise SensoriumError(f"checkpoint {str(path)!r} is damaged: {exc!r}") from exc
    load_weights(net, data.get("model"), path)
    memory = ExemplarMemory(settings.memory)
    memory.load_state_dict(data["memory"])
    return data, net.eval(), memory, backbone_parameters


RESULTS = ("accuracy_matrix.csv", "binary_accuracy_matrix.csv", "metrics.json",
           "accuracy.png", "evaluation.json")  # fmt: skip


def _clear_outputs(run_dir: Path, keep_checkpoint: bool) -> None:
    """Remove what an earlier run left in `run_dir`, so nothing stale stays beside the new
    results; the checkpoint and settings stay when resuming."""
    stale = RESULTS if keep_checkpoint else (*RESULTS, "settings.json", "checkpoint.pt")
    for name in stale:
        (run_dir / name).unlink(missing_ok=True)


def _matrix(T: int, saved: torch.Tensor | None) -> np.ndarray:
    R = np.full((T, T), np.nan)
    if saved is not None:
        done = saved.shape[0]
        R[:done, :done] = saved.numpy()
    return R


def run_sequence(
    root: Path,
    order: str | list[str],
    settings: ContinualSettings,
    backbone: dict,
    run_dir: Path,
    ctx: DistributedContext,
    resume: bool = False,
) -> dict:
    """Learn the tasks of `order` (a preset or task names) found under `root`; returns the
    run's metrics (also written to run_dir with the matrices, the plot and the checkpoint)."""
    names = resolve_order(root, order)
    checkpoint = run_dir / "checkpoint.pt"
    records: list[dict] = []
    saved_R = saved_binary = None
    if resume:
        data, net, memory, backbone_parameters = restore_run(checkpoint)
        saved = ContinualSettings(**data["settings"])
        if saved.method != settings.method:
            raise SensoriumError(
                f"run folder {str(run_dir)!r} holds a {saved.method!r} run, not "
                f"{settings.method!r}; use a new --out folder"
            )
        done = list(data["order"])
        if names[: len(done)] != done:
            raise SensoriumError(
                f"run folder {str(run_dir)!r} learned {done}; a resumed order must start "
                f"with those tasks, got {names}"
            )
        if saved != settings:
            logger.warning(
                "resuming with the run's own settings (settings.json), not this command's"
            )
        settings, backbone = saved, data["backbone"]
        records, saved_R, saved_binary = data["records"], data["R"], data["binary"]
    else:
        net, backbone, backbone_parameters = build_run_net(settings, backbone)
        memory = ExemplarMemory(settings.memory)
        done = []
    tasks = read_tasks(root, names, backbone["image_size"], progress=ctx.is_main)
    if ctx.is_main:  # the data and settings are good: now the run folder may change
        _clear_outputs(run_dir, keep_checkpoint=resume)
        if not resume:
            write_settings(run_dir, settings, ctx)
    T = len(tasks)
    R, binary = _matrix(T, saved_R), _matrix(T, saved_binary)
    net.to(ctx.device)
    if len(done) == T:
        logger.info("every task of the order is already learned")
    for t in range(len(done), T):
        record = learn_task(net, tasks, t, memory, settings, ctx)
        attribution, real_fake = evaluate_tasks(
            net, tasks[: t + 1], settings.eval_batch, ctx.device
        )
        R[: t + 1, t], binary[: t + 1, t] = attribution, real_fake
        records.append(vars(record))
        logger.info(
            "after %s: attribution accuracy %s (mean %.2f%%), real/fake %.2f%%, %.0f s",
            names[t],
            " ".join(f"{100 * a:.1f}" for a in attribution),
            100 * np.mean(attribution),
            100 * np.mean(real_fake),
            record.seconds,
        )
        if ctx.is_main:
            save_checkpoint(
                checkpoint,
                RUN_KIND,
                {
                    "settings": settings.to_dict(),
                    "backbone": backbone,
                    "order": names[: t + 1],
                    "model": net.state_dict(),
                    "memory": memory.state_dict(),
                    "R": torch.from_numpy(R[: t + 1, : t + 1].copy()),
                    "binary": torch.from_numpy(binary[: t + 1, : t + 1].copy()),
                    "records": records,
                },
            )
            metrics = run_metrics(
                settings.method,
                names[: t + 1],
                R[: t + 1, : t + 1],
                binary[: t + 1, : t + 1],
                records,
                backbone_parameters,
            )
            write_report(run_dir, metrics, R[: t + 1, : t + 1], binary[: t + 1, : t + 1])
        ctx.barrier()
    return run_metrics(settings.method, names, R, binary, records, backbone_parameters)
