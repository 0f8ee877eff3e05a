"""The class-incremental loop every learner runs: train a task, herd the memory, evaluate.

Shapes: N images, S image side, D feature width, T tasks, K classes seen (2 per task).

Task t's real images are class 2t, its fakes 2t + 1. A task trains on its own training
images, plus the exemplar memory for learners that keep one, or plus every earlier task's
training images for `joint`. Training augments with random horizontal flips only.

Speed: the extractors that do not train in a task (LoRAX's older adapters, the expandable
net's older copies, the linear learner's backbone) give the same features every epoch, so
their features are computed once per task for every training image and its mirror image
(`frozen_feature_cache`) instead of once per step; `forward(x, frozen=...)` then only runs the
extractor that trains. A test holds the cached path to the plain forward.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.lorax.data import TaskData
from sensorium.lorax.memory import ExemplarMemory
from sensorium.lorax.methods import (
    METHODS,
    USES_MEMORY,
    ContinualNet,
    LoraSettings,
    auxiliary_targets,
)
from sensorium.lorax.metrics import attribution_correct, binary_correct

logger = logging.getLogger(__name__)


@dataclass
class ContinualSettings:
    method: str = "lorax"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_epochs: float = 1.0
    memory: int = 500
    aux_weight: float = 0.1
    eval_batch: int = 256
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if self.method not in METHODS:
            raise SensoriumError(f"method {self.method!r}; expected one of {', '.join(METHODS)}")
        for name in ("epochs", "batch_size", "eval_batch"):
            if getattr(self, name) < 1:
                raise SensoriumError(f"{name} {getattr(self, name)}; expected 1 or more")
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise SensoriumError(f"learning rate {self.lr}; expected a positive number")
        if self.memory < 0:
            raise SensoriumError(f"memory {self.memory}; expected 0 or more images")
        for name in ("weight_decay", "warmup_epochs", "aux_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise SensoriumError(f"{name} {value}; expected a finite number >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def to_input(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images (N, S, S, 3) as floats (N, 3, S, S) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


@torch.no_grad()
def batched(fn, images: np.ndarray, batch: int, device) -> torch.Tensor | None:
    """fn over `images` in batches, the results concatenated; None if fn gives None."""
    outputs = []
    for start in range(0, len(images), batch):
        out = fn(to_input(images[start : start + batch], device))
        if out is None:
            return None
        outputs.append(out)
    return torch.cat(outputs) if outputs else None


def frozen_feature_cache(
    net: ContinualNet, images: np.ndarray, batch: int, device
) -> torch.Tensor | None:
    """(2, N, D_frozen): the frozen extractors' features of each image and of its mirror
    image (flipped left to right); None if every extractor trains."""
    was_training = net.training
    net.eval()
    try:
        plain = batched(net.frozen_features, images, batch, device)
        if plain is None:
            return None
        mirrored = batched(net.frozen_features, images[:, :, ::-1], batch, device)
    finally:
        net.train(was_training)
    return torch.stack([plain, mirrored])


@torch.no_grad()
def predict(net: ContinualNet, images: np.ndarray, batch: int, device) -> np.ndarray:
    """(N,) predicted classes, in eval mode."""
    net.eval()
    return batched(lambda x: net(x)[0].argmax(1), images, batch, device).cpu().numpy()


def evaluate_tasks(
    net: ContinualNet, tasks: list[TaskData], batch: int, device
) -> tuple[list[float], list[float]]:
    """Attribution and binary accuracy (fractions) on each task's validation images."""
    attribution, binary = [], []
    for index, task in enumerate(tasks):
        labels = task.val_labels + 2 * index
        predicted = predict(net, task.val_images, batch, device)
        attribution.append(float(attribution_correct(predicted, labels).mean()))
        binary.append(float(binary_correct(predicted, labels).mean()))
    return attribution, binary


def _schedule(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up, then cosine decay to zero, stepped once per optimisation step."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_task(
    net: ContinualNet,
    images: np.ndarray,
    labels: np.ndarray,
    settings: ContinualSettings,
    ctx: DistributedContext,
    desc: str,
) -> float:
    """Train the current task on `images` (N, S, S, 3) uint8 with `labels` (N,); returns the
    mean loss of the last epoch. Under torchrun each process takes its share of every epoch."""
    s = settings
    device = ctx.device
    params = net.trainable_parameters()
    cache = frozen_feature_cache(net, images, s.eval_batch, device)
    model = DistributedDataParallel(net) if ctx.is_distributed else net
    optimizer = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    usable = len(images) - len(images) % ctx.world_size  # every process the same step count
    steps_per_epoch = math.ceil(usable // ctx.world_size / s.batch_size)
    total = steps_per_epoch * s.epochs
    scheduler = _schedule(optimizer, round(s.warmup_epochs * steps_per_epoch), total)
    rng = np.random.default_rng(s.seed + 1000 * net.tasks)
    targets = torch.from_numpy(labels).to(device)
    bar = tqdm(total=total, desc=desc, unit="step", disable=not ctx.is_main, delay=0.5)
    losses: list[float] = []
    net.train()
    for _ in range(s.epochs):
        order = rng.permutation(len(images))[:usable][ctx.rank :: ctx.world_size]
        flips = rng.random(len(images)) < 0.5
        losses = []
        for start in range(0, len(order), s.batch_size):
            idx = order[start : start + s.batch_size]
            x = to_input(images[idx], device)
            flip = torch.from_numpy(flips[idx]).to(device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            frozen = None if cache is None else cache[flip.long(), torch.from_numpy(idx)]
            logits, aux = model(x, frozen)
            y = targets[idx]
            loss = F.cross_entropy(logits, y)
            if aux is not None:
                loss = loss + s.aux_weight * F.cross_entropy(aux, auxiliary_targets(y, net.tasks))
            if not torch.isfinite(loss):
                raise SensoriumError(
                    f"{desc}: the training loss became {float(loss)}; lower --lr and start again"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    net.eval()
    return ctx.all_reduce_mean(float(np.mean(losses)) if losses else float("nan"))


@dataclass
class TaskRecord:
    name: str
    train_images: int
    trainable_parameters: int
    extractor_parameters: int
    seconds: float
    final_loss: float


def training_set(
    settings: ContinualSettings, tasks: list[TaskData], t: int, memory: ExemplarMemory
) -> tuple[np.ndarray, np.ndarray]:
    """Task t's training images and labels, with the memory or (joint) every earlier task."""
    own = (tasks[t].train_images, tasks[t].train_labels + 2 * t)
    if settings.method == "joint":
        parts = [(task.train_images, task.train_labels + 2 * i) for i, task in enumerate(tasks[:t])]
        parts.append(own)
    elif USES_MEMORY[settings.method] and len(memory):
        parts = [memory.arrays(), own]
    else:
        parts = [own]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def learn_task(
    net: ContinualNet,
    tasks: list[TaskData],
    t: int,
    memory: ExemplarMemory,
    settings: ContinualSettings,
    ctx: DistributedContext,
) -> TaskRecord:
    """Add task t to `net`, train it, and update the memory (tasks[:t] already learned)."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed + t)
    net.begin_task()
    net.to(ctx.device)
    images, labels = training_set(settings, tasks, t, memory)
    extractor = sum(p.numel() for p in net.extractor_parameters())
    trainable = sum(p.numel() for p in net.trainable_parameters())
    desc = f"task {t + 1}/{len(tasks)} {tasks[t].name}"
    logger.info("%s: %d training images, %d trainable parameters", desc, len(images), trainable)
    loss = train_task(net, images, labels, settings, ctx, desc)
    if USES_MEMORY[settings.method]:
        net.eval()
        own = tasks[t].train_labels + 2 * t
        memory.add_classes(
            tasks[t].train_images,
            own,
            lambda im: batched(net.features, im, settings.eval_batch, ctx.device).cpu().numpy(),
        )
    return TaskRecord(
        tasks[t].name, len(images), trainable, extractor, time.perf_counter() - started, loss
    )
