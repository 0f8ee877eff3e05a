"""How every modality becomes a signal the encoder reads, and how long signals are windowed.

The rules, one per modality:
- RF: its complex baseband samples (I/Q) as they are.
- every real-valued signal (audio, seismograms, scanned images, text): the mean removed,
  then its analytic signal (`scipy.signal.hilbert`), so it is complex like RF, with the
  real signal as the real part and its Hilbert transform as the imaginary part;
- audio: the waveform, mono, resampled to 8 kHz (`AUDIO_RATE`);
- images: grey levels, resized to 32 x 32 (`IMAGE_SIDE`), scanned row by row (row-major,
  left to right, top to bottom): 1,024 values;
- text: its UTF-8 bytes, as numbers 0..255;
- seismograms: their traces at their own sampling rate;
- video: each frame's grey levels scanned row-major, frame after frame.

A signal longer than the encoder's window is cut into consecutive, non-overlapping windows
(the tail that does not fill one is dropped); an embedding of the whole signal is the mean
of its windows' embeddings. A signal shorter than one window is refused.

Shapes: W windows, T window length, N samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal as sps

from sensorium.common.errors import SensoriumError

AUDIO_RATE = 8000
IMAGE_SIDE = 32
MAX_MAGNITUDE = 1e15  # the encoder's power sums stay finite in float32 below this


def check_finite(x: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(x)):
        raise SensoriumError(f"{what} holds NaN or infinite values; expected finite numbers")


def analytic(x: np.ndarray) -> np.ndarray:
    """A real signal (..., N) as complex: its mean removed, then its analytic signal."""
    x = np.asarray(x, dtype=np.float64)
    return sps.hilbert(x - x.mean(axis=-1, keepdims=True), axis=-1)


def as_complex(x: np.ndarray) -> np.ndarray:
    """A signal as complex samples: complex input as it is, real input by `analytic`."""
    x = np.asarray(x)
    return x.astype(np.complex128) if np.iscomplexobj(x) else analytic(x)


def windows(x: np.ndarray, length: int, what: str = "signal") -> np.ndarray:
    """A 1-D signal (N,), real or complex, as windows (W, 2, T) float32 of the encoder's
    `length`, real and imaginary part in the two channels."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise SensoriumError(f"{what} has shape {x.shape}; expected one channel of samples")
    check_finite(x, what)
    if x.size and np.abs(x).max() > MAX_MAGNITUDE:
        raise SensoriumError(
            f"{what} has values up to {np.abs(x).max():.3g}; expected magnitudes up to "
            f"{MAX_MAGNITUDE:.0e} (scale it down: the encoder sees it relative to its RMS)"
        )
    if len(x) < length:
        raise SensoriumError(
            f"{what} has {len(x)} samples, shorter than the encoder's window of {length}"
        )
    z = as_complex(x)
    count = len(z) // length
    z = z[: count * length].reshape(count, length)  # (W, T)
    return np.stack([z.real, z.imag], axis=1).astype(np.float32)


def image_signal(image: np.ndarray) -> np.ndarray:
    """A grey image (H, W) -> its row-major scan after resizing to IMAGE_SIDE squared."""
    from skimage.transform import resize

    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(-1)
    side = (IMAGE_SIDE, IMAGE_SIDE)
    return resize(image, side, order=1, anti_aliasing=True, preserve_range=True).ravel()


def text_signal(text: str) -> np.ndarray:
    """Text -> its UTF-8 bytes as numbers."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.float64)


def read_audio(path: Path) -> np.ndarray:
    """A sound file as a mono waveform at AUDIO_RATE."""
    from sensorium.data.audio import load_audio

    return load_audio(path, AUDIO_RATE).astype(np.float64)


def read_signal_file(path: Path) -> list[tuple[str, np.ndarray]]:
    """The signals in one user file, each named.

    WAV/FLAC/OGG: one audio signal (see `read_audio`). `.npy`: a 1-D array (real, or
    complex I/Q), a (2, N) array of I and Q rows, or an (M, N) array of M signals.
    """
    path = Path(path)
    if not path.is_file():
        raise SensoriumError(f"input {str(path)!r} does not exist or is not a file")
    suffix = path.suffix.lower()
    name = str(path)
    if suffix in (".wav", ".flac", ".ogg"):
        return [(name, read_audio(path))]
    if suffix != ".npy":
        raise SensoriumError(
            f"input {str(path)!r}: unknown kind {suffix or '(no suffix)'!r}; "
            "expected .wav, .flac, .ogg or .npy"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for damaged files
        raise SensoriumError(f"cannot read NumPy file {str(path)!r}: {exc}") from exc
    if array.dtype.kind not in "biufc":
        raise SensoriumError(f"NumPy file {str(path)!r} holds {array.dtype}; expected numbers")
    if array.size == 0:
        raise SensoriumError(f"NumPy file {str(path)!r} holds no samples (shape {array.shape})")
    if array.ndim == 1:
        return [(name, array)]
    if array.ndim == 2 and array.shape[0] == 2 and not np.iscomplexobj(array):
        return [(name, array[0] + 1j * array[1].astype(np.float64))]
    if array.ndim == 2:
        return [(f"{name}[{i}]", row) for i, row in enumerate(array)]
    raise SensoriumError(
        f"NumPy file {str(path)!r} has shape {array.shape}; expected (N,), (2, N) or (M, N)"
    )
