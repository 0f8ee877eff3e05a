"""Training a WaveNet on a folder of recordings, alone or under torchrun with DDP.

Shape letters: B batch, T crop length, Q classes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from sensorium.common.checkpoints import load_checkpoint, load_model, save_checkpoint
from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.common.seeding import seed_everything
from sensorium.common.training_loop import LossNames, run_trainer
from sensorium.fastgen.features import MelSettings
from sensorium.fastgen.wavenet import WaveNet, WaveNetConfig
from sensorium.fastgen.wavenet_data import AudioCorpus, crop_batch, validation_crops

logger = logging.getLogger(__name__)

CHECKPOINT_KIND = "wavenet"
CONDITIONING = ("none", "mel", "folders", "mel+folders")
LOSS_NAMES = LossNames("bits/sample", "validation", "train_bits", "val_bits")


@dataclass
class TrainSettings:
    """Everything one training run needs besides the model settings."""

    data_dir: str
    out: str
    steps: int = 2000
    batch_size: int = 8
    crop: int = 4000
    lr: float = 1e-3
    val_fraction: float = 0.05
    val_crops: int = 32
    eval_every: int = 250
    seed: int = 0
    conditioning: str = "none"
    model: WaveNetConfig = field(default_factory=WaveNetConfig)
    mel: MelSettings | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "crop", "val_crops", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SensoriumError(f"training setting {name}={value!r} must be an integer >= 1")
        if not 0 < self.lr < float("inf"):
            raise SensoriumError(f"learning rate {self.lr!r} must be a finite number > 0")
        if self.conditioning not in CONDITIONING:
            raise SensoriumError(
                f"conditioning {self.conditioning!r}; expected one of {', '.join(CONDITIONING)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def bits_per_sample(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in bits: logits (B, Q, T), targets (B, T)."""
    return F.cross_entropy(logits, targets) / math.log(2)


def load_wavenet(path: Path, device: str = "cpu") -> tuple[WaveNet, dict]:
    """A trained WaveNet and its checkpoint contents, from a checkpoint file."""
    return load_model(
        path, CHECKPOINT_KIND, lambda cfg: WaveNet(WaveNetConfig.from_dict(cfg)), device
    )


class WaveNetTrainer:
    """Runs the training loop; rank 0 writes checkpoints, the log and metrics."""

    def __init__(self, settings: TrainSettings, ctx: DistributedContext, resume: bool) -> None:
        self.settings = settings
        self.ctx = ctx
        self.run_dir = Path(settings.out)
        seed_everything(settings.seed + ctx.rank)
        cfg = settings.model
        mel = settings.mel if "mel" in settings.conditioning else None
        self.corpus = AudioCorpus(
            Path(settings.data_dir),
            cfg.sample_rate,
            cfg.quantization,
            mel,
            min_length=settings.crop + 1,
            val_fraction=settings.val_fraction,
            seed=settings.seed,
            global_from_folders="folders" in settings.conditioning,
            show_progress=ctx.is_main,
        )
        if "folders" in settings.conditioning:
            cfg.global_classes = len(self.corpus.global_names)
        if mel is not None:
            cfg.local_channels = mel.n_mels
            cfg.local_hop = mel.hop
        self.model = WaveNet(cfg).to(ctx.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.step = 0
        self.seconds_before = 0.0
        self.best_val = float("inf")
        if resume:
            self._resume()
        self.ddp = DistributedDataParallel(self.model) if ctx.is_distributed else self.model
        self.rng = np.random.default_rng([settings.seed, ctx.rank, self.step])
        params = sum(p.numel() for p in self.model.parameters())
        logger.info(
            "WaveNet: %d layers, receptive field %d samples (%.3f s), %.2fM parameters",
            cfg.num_layers,
            cfg.receptive_field,
            cfg.receptive_field / cfg.sample_rate,
            params / 1e6,
        )

    def _resume(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        data = load_checkpoint(path, CHECKPOINT_KIND)
        if data["config"] != self.settings.model.to_dict():
            raise SensoriumError(
                f"cannot resume {str(path)!r}: its model settings differ from this run's"
            )
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.step = int(data["step"])
        self.seconds_before = float(data.get("seconds", 0.0))
        self.best_val = float(data.get("best_val", float("inf")))
        logger.info("resumed from step %d", self.step)

    def _inputs(self, x, mel, gid):
        dev = self.ctx.device
        cfg = self.settings.model
        mel = mel.to(dev) if mel is not None else None
        gid = gid.to(dev) if cfg.global_classes else None
        return x.to(dev), mel, gid

    @torch.no_grad()
    def validate(self) -> float:
        """Validation bits per sample over fixed crops (NaN without validation clips)."""
        crops = validation_crops(
            self.corpus.val,
            self.settings.crop,
            self.settings.model.local_hop,
            self.settings.val_crops,
        )
        if not crops:
            return float("nan")
        self.model.eval()
        total = 0.0
        for x, mel, gid in crops:
            x, mel, gid = self._inputs(x, mel, gid)
            logits = self.model(x[:, :-1], gid, mel)
            total += float(bits_per_sample(logits, x[:, 1:]))
        self.model.train()
        return total / len(crops)

    def _relative(self, path: Path) -> str:
        root = Path(self.settings.data_dir)
        return str(path.relative_to(root)) if root.is_dir() else path.name

    def save(self, val_bits: float, seconds: float) -> None:
        payload = {
            "config": self.settings.model.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "seconds": seconds,
            "best_val": self.best_val,
            "val_bits": val_bits,
            "mel": self.settings.mel.to_dict() if self.settings.model.local_channels else None,
            "global_names": self.corpus.global_names,
            "val_files": [self._relative(c.path) for c in self.corpus.val],
        }
        save_checkpoint(self.run_dir / "checkpoint.pt", CHECKPOINT_KIND, payload)
        if val_bits <= self.best_val or math.isnan(val_bits):
            self.best_val = val_bits if not math.isnan(val_bits) else self.best_val
            payload = {k: v for k, v in payload.items() if k != "optimizer"}
            payload["best_val"] = self.best_val
            save_checkpoint(self.run_dir / "model.pt", CHECKPOINT_KIND, payload)

    def train_step(self) -> float:
        s = self.settings
        x, mel, gid = crop_batch(
            self.corpus.train, s.batch_size, s.crop, s.model.local_hop, self.rng
        )
        x, mel, gid = self._inputs(x, mel, gid)
        loss = bits_per_sample(self.ddp(x[:, :-1], gid, mel), x[:, 1:])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def train(self) -> dict:
        self.model.train()
        return run_trainer(
            self,
            LOSS_NAMES,
            lambda last: self.validate(),
            val_bits_per_sample=lambda result: result.last_score,
            best_val_bits_per_sample=lambda result: self.best_val,
        )
