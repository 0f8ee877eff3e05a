"""The pretraining objectives: signal principles as losses, and plain contrastive learning.

Views. From a batch of signals x, three views are drawn:
- v1 = A1(x), v2 = A2(x): independent random *invariant* transforms: a cyclic time shift,
  a global phase rotation x * e^{j theta} and an amplitude scale;
- v3 = E(v2): a random *equivariant* transform of v2: a frequency shift by a few STFT bins
  (x * e^{j 2 pi df t}) and, for half the signals, conjugation (a mirrored spectrum).

Losses (each switchable, weights in `LossWeights`):
- fourier: from the embedding, a head predicts the view's power spectrum in F bins; the
  loss compares the predicted and true spectral *shape* (log of each bin's share of the
  power), on every view.
- parseval: the predicted spectrum's total power must equal the signal's mean power in the
  time domain (Parseval's theorem); the squared log ratio of the two.
- invariance: the projections of v1 and v2 agree (mean squared difference).
- equivariance: a head reads the transform E from the embeddings of v2 and v3: its
  frequency shift (regression) and whether it conjugated (logistic loss).
- variance and covariance (VICReg-style) on the projections of v1 and v2, against
  collapse: each dimension's standard deviation at least 1, off-diagonal covariance small.
- contrastive: the plain baseline, InfoNCE between the projections of v1 and v2 (other
  signals in the batch are the negatives), with none of the losses above.

Amplitude scaling needs no loss: the encoder normalises power and reports the log RMS
apart (see `encoder.py`); invariance and anti-collapse terms skip that last entry.

Shapes: B batch, T samples, D + 1 embedding, P projection, F spectrum bins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sensorium.common.errors import SensoriumError

PRINCIPLE_LOSSES = ("fourier", "parseval", "invariance", "equivariance", "variance", "covariance")
ALL_LOSSES = (*PRINCIPLE_LOSSES, "contrastive")


@dataclass
class LossWeights:
    fourier: float = 1.0
    parseval: float = 1.0
    invariance: float = 1.0
    equivariance: float = 1.0
    variance: float = 1.0
    covariance: float = 1.0
    contrastive: float = 0.0
    temperature: float = 0.2  # of the contrastive loss

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise SensoriumError(f"loss weight {name}={value!r} must be a finite number >= 0")
        if self.temperature <= 0:
            raise SensoriumError(f"temperature {self.temperature!r} must be > 0")
        if not any(getattr(self, name) > 0 for name in ALL_LOSSES):
            raise SensoriumError("every loss is switched off; expected at least one weight > 0")

    @classmethod
    def only(cls, names: list[str]) -> LossWeights:
        """Weight 1 for the `names` given, 0 for the rest."""
        if not names:
            raise SensoriumError(f"no loss chosen; expected some of {', '.join(ALL_LOSSES)}")
        unknown = [n for n in names if n not in ALL_LOSSES]
        if unknown:
            raise SensoriumError(
                f"unknown loss {unknown[0]!r}; expected some of {', '.join(ALL_LOSSES)}"
            )
        return cls(**{n: float(n in names) for n in ALL_LOSSES})

    def active(self) -> list[str]:
        return [n for n in ALL_LOSSES if getattr(self, n) > 0]

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# views
# --------------------------------------------------------------------------------------------


def as_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, T) real and imaginary channels -> (B, T) complex."""
    return torch.complex(x[:, 0], x[:, 1])


def as_channels(z: torch.Tensor) -> torch.Tensor:
    """(B, T) complex -> (B, 2, T)."""
    return torch.stack([z.real, z.imag], dim=1)


def invariant_view(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Signals (B, 2, T) cyclically shifted, phase-rotated and scaled, each at random."""
    b, _, t = x.shape
    z = as_complex(x)
    shift = torch.randint(0, t, (b, 1), generator=generator)
    index = (torch.arange(t)[None, :] + shift) % t  # (B, T)
    z = torch.gather(z, 1, index.to(z.device))
    theta = 2 * math.pi * torch.rand(b, 1, generator=generator)
    scale = torch.exp(torch.empty(b, 1).uniform_(-1.0, 1.0, generator=generator))
    rotation = torch.polar(scale, theta).to(z.device)
    return as_channels(z * rotation)


def equivariant_view(
    x: torch.Tensor, max_shift_bins: float, bins: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Signals (B, 2, T) shifted in frequency by up to `max_shift_bins` of a `bins`-point
    spectrum and conjugated for about half of them; also the shift in bins (B,) and the
    conjugation flags (B,) as 0/1 floats."""
    b = x.shape[0]
    z = as_complex(x)
    conjugate = (torch.rand(b, generator=generator) < 0.5).to(z.device)
    z = torch.where(conjugate[:, None], z.conj(), z)
    shift = torch.empty(b).uniform_(-max_shift_bins, max_shift_bins, generator=generator)
    return as_channels(shift_frequency(z, shift, bins)), shift.to(z.device), conjugate.float()


def shift_frequency(z: torch.Tensor, shift: torch.Tensor, bins: int) -> torch.Tensor:
    """Complex signals (B, T) moved up in frequency by `shift` (B,) bands of a `bins`-band
    spectrum: z * e^{j 2 pi (shift / bins) t}."""
    t = z.shape[-1]
    phase = 2 * math.pi * (shift.double() / bins)[:, None] * torch.arange(t, dtype=torch.float64)
    rotation = torch.polar(torch.ones_like(phase), phase).to(z.dtype)
    return z * rotation.to(z.device)


def spectrum_target(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Each signal's (B, 2, T) power spectrum in `bins` equal bands, zero frequency in the
    middle, in units where the bands sum to the signal's mean power |x|^2 (Parseval)."""
    z = as_complex(x)
    t = z.shape[-1]
    power = torch.fft.fftshift(torch.fft.fft(z).abs().pow(2), dim=-1) / t**2  # (B, T)
    return power.reshape(power.shape[0], bins, t // bins).sum(-1)  # (B, F)


# --------------------------------------------------------------------------------------------
# heads and losses
# --------------------------------------------------------------------------------------------


class PretrainHeads(nn.Module):
    """The heads the losses read through; discarded after pretraining."""

    def __init__(self, dim: int, spectrum_bins: int, projection: int = 512) -> None:
        super().__init__()
        self.spectrum_bins = spectrum_bins
        self.spectrum = nn.Sequential(nn.Linear(dim, 512), nn.GELU(), nn.Linear(512, spectrum_bins))
        self.projector = nn.Sequential(
            nn.Linear(dim - 1, projection),
            nn.BatchNorm1d(projection),
            nn.ReLU(),
            nn.Linear(projection, projection),
        )
        self.equivariance = nn.Sequential(nn.Linear(2 * dim, 256), nn.GELU(), nn.Linear(256, 2))


def fourier_and_parseval(
    heads: PretrainHeads, embedding: torch.Tensor, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spectral-shape loss and the energy loss of embeddings (B, D + 1) of signals x."""
    target = spectrum_target(x, heads.spectrum_bins)  # (B, F)
    total = target.sum(-1).clamp_min(1e-12)
    log_pred = heads.spectrum(embedding)  # (B, F) predicted log power per band
    shape_pred = F.log_softmax(log_pred, dim=-1)
    shape_true = torch.log(target / total[:, None] + 1e-8)
    fourier = (shape_pred - shape_true).pow(2).mean()
    parseval = (torch.logsumexp(log_pred, dim=-1) - total.log()).pow(2).mean()
    return fourier, parseval


def variance_covariance(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's terms for projections (B, P): hinge on each dimension's std below 1, and
    the squared off-diagonal covariance per dimension."""
    p = p - p.mean(0)
    std = torch.sqrt(p.var(0) + 1e-4)
    variance = F.relu(1 - std).mean()
    cov = (p.T @ p) / max(1, p.shape[0] - 1)  # (P, P)
    off = cov - torch.diag(torch.diag(cov))
    return variance, off.pow(2).sum() / p.shape[1]


def info_nce(p1: torch.Tensor, p2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between two batches of projections (B, P), pairs on the diagonal."""
    a = F.normalize(p1, dim=1)
    b = F.normalize(p2, dim=1)
    logits = a @ b.T / temperature  # (B, B)
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def pretraining_losses(
    encoder: nn.Module,
    heads: PretrainHeads,
    x: torch.Tensor,
    weights: LossWeights,
    max_shift_bins: float = 2.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Every active loss on a batch of signals x (B, 2, T), and their weighted "total"."""
    v1 = invariant_view(x, generator)
    v2 = invariant_view(x, generator)
    views = [v1, v2]
    need_equivariant = weights.equivariance > 0
    if need_equivariant:
        v3, shift, conjugate = equivariant_view(v2, max_shift_bins, heads.spectrum_bins, generator)
        views.append(v3)
    embeddings = encoder(torch.cat(views)).split(len(x))
    losses: dict[str, torch.Tensor] = {}
    if weights.fourier > 0 or weights.parseval > 0:
        fourier, parseval = fourier_and_parseval(heads, torch.cat(embeddings), torch.cat(views))
        losses["fourier"], losses["parseval"] = fourier, parseval
    needs_projection = any(
        getattr(weights, n) > 0 for n in ("invariance", "variance", "covariance", "contrastive")
    )
    if needs_projection:
        p1 = heads.projector(embeddings[0][:, :-1])
        p2 = heads.projector(embeddings[1][:, :-1])
        if weights.invariance > 0:
            losses["invariance"] = (p1 - p2).pow(2).mean()
        if weights.variance > 0 or weights.covariance > 0:
            var1, cov1 = variance_covariance(p1)
            var2, cov2 = variance_covariance(p2)
            losses["variance"], losses["covariance"] = var1 + var2, cov1 + cov2
        if weights.contrastive > 0:  # the baseline's loss, not computed beside the others
            losses["contrastive"] = info_nce(p1, p2, weights.temperature)
    if need_equivariant:
        read = heads.equivariance(torch.cat([embeddings[1], embeddings[2]], dim=1))  # (B, 2)
        losses["equivariance"] = F.mse_loss(read[:, 0], shift / max_shift_bins) + (
            F.binary_cross_entropy_with_logits(read[:, 1], conjugate)
        )
    # VICReg's balance: invariance and variance weigh 25 to covariance's 1
    scale = {"invariance": 25.0, "variance": 25.0}
    losses["total"] = sum(
        getattr(weights, name) * scale.get(name, 1.0) * losses[name] for name in weights.active()
    )
    return losses
