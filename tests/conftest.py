"""Shared fixtures: small recordings written on the fly, small models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile


def write_tone(path: Path, seconds: float, rate: int, freq: float, channels: int = 1) -> Path:
    """A decaying tone with a little noise: (T,) or (T, channels), 16-bit WAV."""
    rng = np.random.default_rng(int(freq))
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t) + 0.01 * rng.standard_normal(t.shape)
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "VORBIS" if path.suffix == ".ogg" else "PCM_16"
    soundfile.write(str(path), audio, rate, subtype=subtype)
    return path


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    """Six short recordings in two speaker folders, one at another rate and in stereo."""
    root = tmp_path / "audio"
    write_tone(root / "alice" / "a1.wav", 1.0, 8000, 220)
    write_tone(root / "alice" / "a2.wav", 0.8, 8000, 330)
    write_tone(root / "alice" / "a3.flac", 0.9, 8000, 440)
    write_tone(root / "bob" / "b1.wav", 1.0, 16000, 150, channels=2)
    write_tone(root / "bob" / "b2.wav", 0.7, 8000, 180)
    write_tone(root / "bob" / "b3.ogg", 0.9, 8000, 260)
    return root
