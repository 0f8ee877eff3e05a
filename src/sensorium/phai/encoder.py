"""The principle-driven signal encoder: a time-domain and a frequency-domain branch, fused.

Input: complex signals as two channels (B, 2, T), real and imaginary part, T = the
encoder's window. The encoder first divides each signal by its RMS, so everything it
computes sees a signal of unit power, and hands the log RMS on as the last entry of the
embedding: scaling a signal's amplitude changes that entry alone, exactly (amplitude
equivariance by construction), and the signal's energy stays recoverable from it.

- Time branch: strided 1-D convolutions over the waveform, then mean and max over time.
- Frequency branch: the short-time Fourier transform (log power and the cosine and sine of
  the phase advance between frames, which carries instantaneous frequency), 2-D
  convolutions that stride along time only, then a mean over time: frequency-preserving
  pooling, so the branch keeps its F frequency bins to the end and flattens them.
- Fusion: an MLP from both branches to D features; the embedding is those D features and
  the log RMS, (B, D + 1).

Shapes: B batch, T samples, F frequency bins, N frames, C channels, D embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sensorium.common.errors import SensoriumError

CHECKPOINT_KIND = "phai-encoder"
MAX_WINDOW = 65536


@dataclass
class EncoderConfig:
    length: int = 1024  # window T, samples
    time_channels: tuple[int, ...] = (32, 64, 96, 128)
    stft_bins: int = 64  # F, the STFT's FFT size
    stft_hop: int = 32
    freq_channels: tuple[int, ...] = (16, 32, 32)
    freq_features: int = 512  # the flattened frequency branch is mapped to this width
    hidden: int = 896
    embed_dim: int = 256  # D

    def __post_init__(self) -> None:
        self.time_channels = tuple(int(c) for c in self.time_channels)
        self.freq_channels = tuple(int(c) for c in self.freq_channels)
        if not isinstance(self.length, int) or not 64 <= self.length <= MAX_WINDOW:
            raise SensoriumError(
                f"encoder window {self.length!r} must be an integer from 64 to {MAX_WINDOW}"
            )
        if not 8 <= self.stft_bins <= self.length or not 1 <= self.stft_hop <= self.stft_bins:
            raise SensoriumError(
                f"STFT of {self.stft_bins} bins and hop {self.stft_hop} does not fit a "
                f"window of {self.length} samples"
            )
        widths = {
            "time_channels": min(self.time_channels, default=0),
            "freq_channels": min(self.freq_channels, default=0),
            "freq_features": self.freq_features,
            "hidden": self.hidden,
            "embed_dim": self.embed_dim - 1,
        }
        for name, width in widths.items():
            if width < 1:
                least = 2 if name == "embed_dim" else 1
                raise SensoriumError(f"encoder setting {name} must be at least {least}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        return cls(**data)


def rms_normalise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signals (B, 2, T) scaled to unit mean power, and their log RMS (B,)."""
    power = x.pow(2).sum(1).mean(-1).clamp_min(1e-12)  # (B,)
    return x / power.sqrt()[:, None, None], 0.5 * power.log()


def stft_features(x: torch.Tensor, bins: int, hop: int) -> torch.Tensor:
    """Two-channel signals (B, 2, T) -> (B, 3, F, N): log power (centred on the zero
    frequency) and the cosine and sine of the phase advance from the previous frame."""
    z = torch.complex(x[:, 0], x[:, 1])  # (B, T)
    window = torch.hann_window(bins, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        z, bins, hop, window=window, center=False, return_complex=True, onesided=False
    )  # (B, F, N)
    spec = torch.fft.fftshift(spec, dim=1)
    log_power = torch.log(spec.abs().pow(2) + 1e-6)
    advance = spec[..., 1:] * spec[..., :-1].conj()  # (B, F, N - 1)
    advance = advance / (advance.abs() + 1e-6)
    advance = F.pad(torch.view_as_real(advance), (0, 0, 1, 0))  # (B, F, N, 2)
    return torch.stack([log_power, advance[..., 0], advance[..., 1]], dim=1)


class PrincipleEncoder(nn.Module):
    """Signals (B, 2, T) -> embeddings (B, D + 1); the last entry is the log RMS."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 2
        for i, c in enumerate(config.time_channels):
            kernel = 7 if i == 0 else 5
            layers += [
                nn.Conv1d(width, c, kernel, stride=2, padding=kernel // 2),
                nn.GroupNorm(min(8, c), c),
                nn.GELU(),
            ]
            width = c
        self.time_branch = nn.Sequential(*layers)
        layers = []
        width = 3
        for c in config.freq_channels:
            layers += [
                nn.Conv2d(width, c, 3, stride=(1, 2), padding=1),
                nn.GroupNorm(min(8, c), c),
                nn.GELU(),
            ]
            width = c
        self.freq_branch = nn.Sequential(*layers)
        self.freq_project = nn.Linear(width * config.stft_bins, config.freq_features)
        fused = 2 * config.time_channels[-1] + config.freq_features
        self.fuse = nn.Sequential(
            nn.Linear(fused, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, config.embed_dim),
        )

    @property
    def dim(self) -> int:
        """Width of the embedding, D + 1."""
        return self.config.embed_dim + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.dim() != 3 or x.shape[1] != 2 or x.shape[2] != cfg.length:
            raise SensoriumError(
                f"encoder input of shape {tuple(x.shape)}; expected (batch, 2, {cfg.length})"
            )
        x, log_rms = rms_normalise(x)
        t = self.time_branch(x)  # (B, C, T / 2^layers)
        t = torch.cat([t.mean(-1), t.amax(-1)], dim=1)  # (B, 2C)
        f = self.freq_branch(stft_features(x, cfg.stft_bins, cfg.stft_hop))  # (B, C, F, N')
        f = self.freq_project(f.mean(-1).flatten(1))  # mean over frames only: (B, C * F)
        z = self.fuse(torch.cat([t, f], dim=1))  # (B, D)
        return torch.cat([z, log_rms[:, None]], dim=1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
