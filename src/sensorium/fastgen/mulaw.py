"""Mu-law companding between waveforms in [-1, 1] and Q integer classes."""

from __future__ import annotations

import math

import torch


def mulaw_encode(audio: torch.Tensor, quantization: int = 256) -> torch.Tensor:
    """Waveform (...,) in [-1, 1] to int64 classes (...,) in [0, Q)."""
    mu = quantization - 1
    x = audio.clamp(-1.0, 1.0).double()
    companded = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.floor((companded + 1) / 2 * mu + 0.5).long()


def mulaw_decode(classes: torch.Tensor, quantization: int = 256) -> torch.Tensor:
    """int classes (...,) in [0, Q) to a float32 waveform (...,) in [-1, 1]."""
    mu = quantization - 1
    companded = 2 * classes.double() / mu - 1
    audio = torch.sign(companded) * (torch.pow(1 + mu, companded.abs()) - 1) / mu
    return audio.float()


def silence_class(quantization: int = 256) -> int:
    """The class of a zero sample: the first input fed to an unprimed generator."""
    return int(mulaw_encode(torch.zeros(()), quantization))
