"""Pretraining the shipped backbone, on images the continual benchmark never uses.

No pretrained vision weights can be had offline, so the backbone LoRAX keeps frozen is
trained here first, in the spirit of "pretrained on a large set, then adapted to new
generators": a ViT learns two things at once on held-out real photographs and fakes of
held-out generator families (`build_data.build_pretraining_set`):
- which source made each image (its class label: real, or one of the held-out generators);
- how the image was rotated (0, 90, 180 or 270 degrees), a self-supervised task that needs
  no labels and pushes the features towards image structure.

Shapes: N images, S image side (32), K source classes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sensorium.lorax.backbone import VisionTransformer, ViTConfig

logger = logging.getLogger(__name__)


@dataclass
class PretrainSettings:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _rotated(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Each image (B, 3, S, S) turned by its `turns` (B,) quarter turns."""
    out = x.clone()
    for k in (1, 2, 3):
        chosen = turns == k
        out[chosen] = torch.rot90(x[chosen], k, dims=(2, 3))
    return out


def pretrain_backbone(
    images: np.ndarray,
    labels: np.ndarray,
    config: ViTConfig,
    settings: PretrainSettings,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
) -> tuple[VisionTransformer, dict]:
    """Train a ViT on `images` (N, S, S, 3) uint8 with source `labels` (N,) in 0..K-1 and
    random rotations; returns it and a record of the training (accuracies on `held_out`)."""
    from sensorium.lorax.harness import to_input

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    classes = int(labels.max()) + 1
    vit = VisionTransformer(config)
    source_head = nn.Linear(config.dim, classes)
    rotation_head = nn.Linear(config.dim, 4)
    params = [*vit.parameters(), *source_head.parameters(), *rotation_head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, settings.steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, settings.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    targets = torch.from_numpy(labels.astype(np.int64))
    started = time.perf_counter()
    bar = tqdm(range(settings.steps), desc="pretraining", unit="step", disable=not progress)
    for _ in bar:
        idx = rng.integers(0, len(images), settings.batch_size)
        x = to_input(images[idx])
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        turns = torch.from_numpy(rng.integers(0, 4, len(idx)))
        features = vit(_rotated(x, turns))
        loss = F.cross_entropy(source_head(features), targets[idx]) + F.cross_entropy(
            rotation_head(features), turns
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        bar.set_postfix(loss=f"{float(loss):.3f}")
    record = {"settings": settings.to_dict(), "seconds": time.perf_counter() - started,
              "images": len(images), "classes": classes}  # fmt: skip
    if held_out is not None:
        record.update(_scores(vit, source_head, rotation_head, *held_out))
    vit.eval()
    logger.info("pretrained the backbone: %s", record)
    return vit, record


@torch.no_grad()
def _scores(vit, source_head, rotation_head, images: np.ndarray, labels: np.ndarray) -> dict:
    from sensorium.lorax.harness import to_input

    vit.eval()
    x = to_input(images)
    source = source_head(vit(x)).argmax(1).numpy()
    turns = torch.arange(len(x)) % 4
    rotation = rotation_head(vit(_rotated(x, turns))).argmax(1)
    return {
        "held_out_source_accuracy": float(np.mean(source == labels)),
        "held_out_rotation_accuracy": float((rotation == turns).float().mean()),
    }
