"""Log-mel frames, the local conditioning of a WaveNet vocoder.

Frame f of the features summarises the audio around sample f * hop, so a model conditioned on
them reads, for sample s, frame s // hop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sensorium.common.errors import SensoriumError


@dataclass
class MelSettings:
    """How a waveform becomes conditioning frames."""

    sample_rate: int = 8000
    hop: int = 80
    n_fft: int = 512
    n_mels: int = 40
    floor: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "hop", "n_fft", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SensoriumError(f"mel setting {name}={value!r} must be an integer >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def log_mel(audio: np.ndarray, settings: MelSettings) -> np.ndarray:
    """Waveform (T,) to log-mel frames (n_mels, T // hop + 1), float32."""
    import librosa  # imported here: it takes a second to load and only this needs it

    mel = librosa.feature.melspectrogram(
        y=audio.astype(np.float32),
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop,
        n_mels=settings.n_mels,
        center=True,
    )
    return np.log(np.maximum(mel, settings.floor)).astype(np.float32)
