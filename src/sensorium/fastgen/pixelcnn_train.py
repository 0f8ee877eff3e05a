"""Training a PixelCNN++ on an image set, alone or under torchrun with DDP.

Shape letters: B batch, C channels, H, W image size.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from sensorium.common.checkpoints import load_checkpoint, load_model, save_checkpoint
from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.common.seeding import seed_everything
from sensorium.common.training_loop import LossNames, run_trainer
from sensorium.data.images import ImageSplits, load_image_splits
from sensorium.fastgen.logistic_mixture import bits_per_dim, to_unit
from sensorium.fastgen.pixelcnn import PixelCNN, PixelCNNConfig

logger = logging.getLogger(__name__)

CHECKPOINT_KIND = "pixelcnn"
LOSS_NAMES = LossNames("bits/dim", "test", "train_bits", "test_bits")


@dataclass
class PixelTrainSettings:
    """Everything one training run needs besides the model settings."""

    data: str
    out: str
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 0.9995  # per 10 steps, as a smooth exponential
    ema: float = 0.999  # Polyak averaging of the weights for evaluation; 0 switches it off
    eval_every: int = 500
    eval_images: int = 1000  # test images scored at each evaluation; the last scores them all
    test_fraction: float = 0.1  # held out when the data has no test split of its own
    seed: int = 0
    model: PixelCNNConfig = field(default_factory=PixelCNNConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "eval_images"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SensoriumError(f"training setting {name}={value!r} must be an integer >= 1")
        if not 0 < self.lr < float("inf"):
            raise SensoriumError(f"learning rate {self.lr!r} must be a finite number > 0")
        if not 0.0 < self.lr_decay <= 1.0:
            raise SensoriumError(f"lr decay {self.lr_decay!r} must lie in (0, 1]")
        if not 0.0 <= self.ema < 1.0:
            raise SensoriumError(f"EMA decay {self.ema!r} must lie in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


def warmed_up_ema(decay: float):
    """An exponential moving average whose decay grows to `decay` over the first updates,
    min(decay, (1 + n) / (10 + n)) at update n, so early evaluations are not dominated by
    the random initial weights."""

    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor):
        rate = min(decay, (1.0 + float(updates)) / (10.0 + float(updates)))
        return rate * averaged + (1.0 - rate) * current

    return average


def load_pixelcnn(path: Path, device: str = "cpu") -> tuple[PixelCNN, dict]:
    """A trained PixelCNN (its averaged weights where it has them) and its checkpoint."""
    return load_model(
        path, CHECKPOINT_KIND, lambda cfg: PixelCNN(PixelCNNConfig.from_dict(cfg)), device
    )


@torch.no_grad()
def score_images(
    model: PixelCNN, images: torch.Tensor, batch: int = 100, progress: bool = False
) -> float:
    """Mean bits per dimension of uint8 images (N, C, H, W) under the model in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    starts = range(0, images.shape[0], batch)
    for start in tqdm(starts, desc="scoring", unit="batch", disable=not progress, leave=False):
        x = to_unit(images[start : start + batch]).to(device)
        total += float(bits_per_dim(model(x), x, model.config.mixtures)) * x.shape[0]
    model.train(was_training)
    return total / images.shape[0]


class PixelCNNTrainer:
    """Runs the training loop; rank 0 writes checkpoints, the log and metrics."""

    def __init__(self, settings: PixelTrainSettings, ctx: DistributedContext, resume: bool):
        self.settings = settings
        self.ctx = ctx
        self.run_dir = Path(settings.out)
        seed_everything(settings.seed + ctx.rank)
        self.data: ImageSplits = load_image_splits(
            Path(settings.data), settings.test_fraction, settings.seed
        )
        cfg = settings.model
        cfg.channels, cfg.height, cfg.width = self.data.shape
        self.model = PixelCNN(cfg).to(ctx.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.averaged = (
            AveragedModel(self.model, avg_fn=warmed_up_ema(settings.ema))
            if settings.ema > 0
            else None
        )
        self.step = 0
        self.seconds_before = 0.0
        if resume:
            self._resume()
        self.ddp = DistributedDataParallel(self.model) if ctx.is_distributed else self.model
        self.rng = np.random.default_rng([settings.seed, ctx.rank, self.step])
        logger.info(
            "PixelCNN++: %d filters, %d resnets per level, %d mixtures, %.2fM parameters; "
            "data %s: %d training and %d test images of %s",
            cfg.filters,
            cfg.resnets,
            cfg.mixtures,
            sum(p.numel() for p in self.model.parameters()) / 1e6,
            self.data.source,
            self.data.train.shape[0],
            self.data.test.shape[0],
            "x".join(str(v) for v in self.data.shape),
        )

    def evaluation_model(self) -> PixelCNN:
        return self.model if self.averaged is None else self.averaged.module

    def _resume(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        data = load_checkpoint(path, CHECKPOINT_KIND)
        if data["config"] != self.settings.model.to_dict():
            raise SensoriumError(
                f"cannot resume {str(path)!r}: its model settings differ from this run's"
            )
        self.model.load_state_dict(data["training_model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if self.averaged is not None and data.get("averaged") is not None:
            self.averaged.load_state_dict(data["averaged"])
        self.step = int(data["step"])
        self.seconds_before = float(data.get("seconds", 0.0))
        logger.info("resumed from step %d", self.step)

    def save(self, test_bits: float, seconds: float) -> None:
        """checkpoint.pt: everything to resume; model.pt: the weights to sample from (the
        averaged ones where averaging is on) and their test score."""
        model = {
            "config": self.settings.model.to_dict(),
            "model": self.evaluation_model().state_dict(),
            "step": self.step,
            "seconds": seconds,
            "test_bits": test_bits,
            "data": self.data.source,
        }
        resume = {
            "training_model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "averaged": self.averaged.state_dict() if self.averaged is not None else None,
        }
        save_checkpoint(self.run_dir / "checkpoint.pt", CHECKPOINT_KIND, {**model, **resume})
        save_checkpoint(self.run_dir / "model.pt", CHECKPOINT_KIND, model)

    def train_step(self) -> float:
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr * s.lr_decay ** (self.step / 10)
        picks = torch.from_numpy(self.rng.integers(0, self.data.train.shape[0], s.batch_size))
        x = to_unit(self.data.train[picks]).to(self.ctx.device)  # (B, C, H, W)
        loss = bits_per_dim(self.ddp(x), x, s.model.mixtures)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)
        self.step += 1
        return loss.item()

    def _evaluate(self, last: bool) -> float:
        """Test bits per dimension: of the first `eval_images` test images, of all at the end."""
        test = self.data.test if last else self.data.test[: self.settings.eval_images]
        logger.info("scoring %d test images", test.shape[0])
        return score_images(self.evaluation_model(), test, progress=True)

    def train(self) -> dict:
        self.model.train()
        return run_trainer(
            self,
            LOSS_NAMES,
            self._evaluate,
            test_bits_per_dim=lambda result: result.last_score,
            test_images=lambda result: int(self.data.test.shape[0]),
        )
