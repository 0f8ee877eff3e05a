"""Pretraining the encoder on synthetic radio signals only, alone or under torchrun with DDP.

The pretraining set is drawn once from `rf.random_rf`: every modulation family, emitters
of their own (seeded apart from the emitters the probes use, so those stay unseen), random
channels and SNRs. Each step draws a batch from it; the views and losses are in
`principles.py`.

Shape letters: B batch, T window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from sensorium.common.checkpoints import load_checkpoint, load_model, save_checkpoint
from sensorium.common.distributed import DistributedContext
from sensorium.common.errors import SensoriumError
from sensorium.common.seeding import seed_everything
from sensorium.common.training_loop import LossNames, run_trainer
from sensorium.phai.encoder import (
    CHECKPOINT_KIND,
    EncoderConfig,
    PrincipleEncoder,
    parameter_count,
)
from sensorium.phai.principles import (
    LossWeights,
    PretrainHeads,
    as_channels,
    pretraining_losses,
)
from sensorium.phai.rf import make_emitters, random_rf

logger = logging.getLogger(__name__)

LOSS_NAMES = LossNames("", "validation", "train_loss", "val_loss")
PRETRAIN_EMITTER_SEED = 0  # the probes draw their emitters from another seed
SPECTRUM_BINS = 64
MAX_SET_GB = 8.0  # the pretraining set is held in memory as float32 I/Q


@dataclass
class PretrainSettings:
    out: str
    # NOTE: the shipped encoders had 1,500 steps (what the machine time allowed); their
    # validation loss was still falling slowly, so the default asks for more.
    steps: int = 2500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    signals: int = 40_000
    val_signals: int = 512
    emitters: int = 32
    snr_low: float = -2.0
    snr_high: float = 20.0
    eval_every: int = 250
    seed: int = 0
    losses: LossWeights = field(default_factory=LossWeights)
    model: EncoderConfig = field(default_factory=EncoderConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "signals", "val_signals", "emitters", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SensoriumError(f"{_flag(name)} {value!r} must be an integer >= 1")
        if self.batch_size < 4:
            raise SensoriumError(f"batch size {self.batch_size} must be >= 4 (batch statistics)")
        if not 0 < self.lr < float("inf"):
            raise SensoriumError(f"learning rate {self.lr!r} must be a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise SensoriumError(f"weight decay {self.weight_decay!r} must be finite and >= 0")
        if not (math.isfinite(self.snr_low) and math.isfinite(self.snr_high)):
            raise SensoriumError("SNR range must be finite")
        if not (self.snr_low >= -30 and self.snr_high <= 60):
            raise SensoriumError(
                f"SNR range {self.snr_low}..{self.snr_high} dB; expected within -30..60 dB"
            )
        if self.signals < self.batch_size:
            raise SensoriumError(
                f"{self.signals} training signals are fewer than a batch of {self.batch_size}"
            )
        if self.snr_low > self.snr_high:
            raise SensoriumError(f"SNR range {self.snr_low}..{self.snr_high} is empty")
        gigabytes = (self.signals + self.val_signals) * self.model.length * 8 / 1e9
        if gigabytes > MAX_SET_GB:
            raise SensoriumError(
                f"{self.signals} RF signals of {self.model.length} samples need "
                f"{gigabytes:.0f} GB in memory; at most {MAX_SET_GB:.0f} GB: use fewer "
                "--train-signals or a shorter --window"
            )
        if self.model.length % SPECTRUM_BINS:
            raise SensoriumError(
                f"encoder window {self.model.length} must be a multiple of {SPECTRUM_BINS}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def _flag(name: str) -> str:
    """The command-line option of a PretrainSettings field."""
    return "--train-signals" if name == "signals" else "--" + name.replace("_", "-")


def load_encoder(path: Path, device: str = "cpu") -> tuple[PrincipleEncoder, dict]:
    """A pretrained encoder, in eval mode, and its checkpoint's contents."""
    return load_model(
        path, CHECKPOINT_KIND, lambda cfg: PrincipleEncoder(EncoderConfig.from_dict(cfg)), device
    )


def half_precision_copy(source: Path, target: Path) -> None:
    """Write an encoder checkpoint with its weights in float16, as the package ships them
    (half the size; `load_encoder` casts them back to float32)."""
    data = load_checkpoint(source, CHECKPOINT_KIND)
    data["model"] = {k: v.half() if v.is_floating_point() else v for k, v in data["model"].items()}
    data.pop("kind")
    data.pop("format_version", None)
    save_checkpoint(target, CHECKPOINT_KIND, data)


def pretraining_set(
    settings: PretrainSettings, count: int, seed: int, progress: bool
) -> torch.Tensor:
    """`count` RF signals (N, 2, T), drawn in chunks under a progress bar."""
    rng = np.random.default_rng([settings.seed, seed])
    emitters = make_emitters(settings.emitters, PRETRAIN_EMITTER_SEED)
    chunks, done = [], 0
    with tqdm(total=count, desc="RF signals", unit="sig", disable=not progress) as bar:
        while done < count:
            n = min(2000, count - done)
            snr = (settings.snr_low, settings.snr_high)
            batch = random_rf(n, settings.model.length, rng, emitters, snr_range=snr)
            chunks.append(as_channels(torch.from_numpy(batch.signals)))  # (n, 2, T)
            done += n
            bar.update(n)
    return torch.cat(chunks)


class _Objective(nn.Module):
    """Encoder and heads together, so one DDP wrapper covers both."""

    def __init__(self, encoder: PrincipleEncoder, heads: PretrainHeads, weights: LossWeights):
        super().__init__()
        self.encoder = encoder
        self.heads = heads
        self.weights = weights

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        return pretraining_losses(self.encoder, self.heads, x, self.weights, generator=generator)


class EncoderPretrainer:
    """Runs pretraining; rank 0 writes checkpoints, the log and metrics."""

    def __init__(self, settings: PretrainSettings, ctx: DistributedContext, resume: bool):
        self.settings = settings
        self.ctx = ctx
        self.run_dir = Path(settings.out)
        seed_everything(settings.seed + ctx.rank)
        self.encoder = PrincipleEncoder(settings.model)
        self.heads = PretrainHeads(self.encoder.dim, SPECTRUM_BINS)
        self.objective = _Objective(self.encoder, self.heads, settings.losses).to(ctx.device)
        self.optimizer = torch.optim.AdamW(
            self.objective.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        warmup = max(1, settings.steps // 20)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, settings.steps - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.step = 0
        self.seconds_before = 0.0
        if resume:
            self._resume()
        self.ddp = DistributedDataParallel(self.objective) if ctx.is_distributed else self.objective
        self.train_set = pretraining_set(settings, settings.signals, 1, ctx.is_main)
        self.val_set = pretraining_set(settings, settings.val_signals, 2, False)
        self.rng = np.random.default_rng([settings.seed, ctx.rank, self.step])
        params = parameter_count(self.encoder)
        logger.info(
            "encoder: %.2fM parameters, window %d; losses: %s; %d RF signals",
            params / 1e6,
            settings.model.length,
            ", ".join(settings.losses.active()),
            settings.signals,
        )

    def _resume(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        data = load_checkpoint(path, CHECKPOINT_KIND)
        if data["config"] != self.settings.model.to_dict():
            raise SensoriumError(
                f"cannot resume {str(path)!r}: its encoder settings differ from this run's"
            )
        self.encoder.load_state_dict(data["model"])
        self.heads.load_state_dict(data["heads"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.scheduler.load_state_dict(data["scheduler"])
        self.step = int(data["step"])
        self.seconds_before = float(data.get("seconds", 0.0))
        logger.info("resumed from step %d", self.step)

    @torch.no_grad()
    def validate(self) -> float:
        """The weighted loss on the fixed validation signals, with fixed views."""
        self.objective.eval()
        generator = torch.Generator().manual_seed(12345)
        total = 0.0
        batches = self.val_set.split(max(4, self.settings.batch_size))
        for x in batches:
            total += float(self.objective(x.to(self.ctx.device), generator)["total"])
        self.objective.train()
        return total / len(batches)

    def save(self, val_loss: float, seconds: float) -> None:
        payload = {
            "config": self.settings.model.to_dict(),
            "losses": self.settings.losses.to_dict(),
            "model": self.encoder.state_dict(),
            "heads": self.heads.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "seconds": seconds,
            "val_loss": val_loss,
            "pretraining": {k: v for k, v in self.settings.to_dict().items() if k != "model"},
        }
        save_checkpoint(self.run_dir / "checkpoint.pt", CHECKPOINT_KIND, payload)
        keep = ("config", "losses", "model", "step", "seconds", "val_loss", "pretraining")
        save_checkpoint(self.run_dir / "encoder.pt", CHECKPOINT_KIND, {k: payload[k] for k in keep})

    def train_step(self) -> float:
        index = self.rng.integers(0, len(self.train_set), self.settings.batch_size)
        losses = self.ddp(self.train_set[torch.from_numpy(index)].to(self.ctx.device))
        loss = losses["total"]
        if not torch.isfinite(loss):
            raise SensoriumError(
                f"the loss became {loss.item()} at step {self.step + 1}; try a lower --lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.objective.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def train(self) -> dict:
        self.objective.train()
        return run_trainer(
            self,
            LOSS_NAMES,
            lambda last: self.validate(),
            val_loss=lambda result: result.last_score,
            encoder_parameters=lambda result: parameter_count(self.encoder),
            losses=lambda result: self.settings.losses.active(),
        )
