"""Reading a user's audio: folders of WAV/FLAC/OGG files, mixed to mono, resampled.

Audio is returned as float32 NumPy arrays in [-1, 1] of shape (T,).
"""

from __future__ import annotations

import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff")

# Real US-English speech, one speaker, 8 kHz (Debian package asterisk-core-sounds-en-wav).
DEFAULT_SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
DEFAULT_SPEECH_PACKAGE = "asterisk-core-sounds-en-wav"


def find_audio_files(path: Path) -> list[Path]:
    """All audio files at `path`: the file itself, or every audio file below a folder, sorted."""
    path = Path(path)
    if not path.exists():
        hint = ""
        if path == DEFAULT_SPEECH_DIR:
            hint = f" (install the Debian package {DEFAULT_SPEECH_PACKAGE})"
        raise SensoriumError(f"audio path {str(path)!r} does not exist{hint}")
    if path.is_file():
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise SensoriumError(
                f"{str(path)!r} is not an audio file; expected one of {', '.join(AUDIO_SUFFIXES)}"
            )
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise SensoriumError(
            f"folder {str(path)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)})"
        )
    return files


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Read one file, mix it to mono and resample it to `sample_rate`: float32 (T,)."""
    path = Path(path)
    if not path.is_file():
        raise SensoriumError(f"audio file {str(path)!r} does not exist")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as exc:
        raise SensoriumError(
            f"could not read audio file {str(path)!r}: it is empty, damaged or not audio ({exc})"
        ) from exc
    if data.shape[0] == 0:
        raise SensoriumError(f"audio file {str(path)!r} holds no samples")
    audio = data.mean(axis=1)  # (T,)
    if not np.all(np.isfinite(audio)):
        raise SensoriumError(
            f"audio file {str(path)!r} holds NaN or infinite samples; expected finite audio"
        )
    if rate != sample_rate:
        factor = gcd(int(rate), int(sample_rate))
        audio = resample_poly(audio, sample_rate // factor, rate // factor).astype(np.float32)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def save_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio (T,) or (T, channels) as 16-bit PCM WAV."""
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
