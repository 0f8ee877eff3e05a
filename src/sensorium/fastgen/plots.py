"""Pictures a person looks at instead of reading numbers: waveforms and spectrograms."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_waveforms(path: Path, signals: list[tuple[str, np.ndarray]], sample_rate: int) -> None:
    """One row per signal: its waveform on the left, its spectrogram on the right."""
    fig, axes = plt.subplots(
        len(signals),
        2,
        figsize=(12, 2.6 * len(signals)),
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 1.2]},
    )
    for row, (title, audio) in enumerate(signals):
        seconds = np.arange(audio.shape[0]) / sample_rate
        wave_ax, spec_ax = axes[row]
        wave_ax.plot(seconds, audio, linewidth=0.4, color="tab:blue")
        wave_ax.set_xlim(0, max(seconds[-1], 1 / sample_rate))
        wave_ax.set_ylim(-1, 1)
        wave_ax.set_title(f"{title}: waveform")
        wave_ax.set_xlabel("seconds")
        nfft = min(256, max(16, audio.shape[0] // 4))
        with warnings.catch_warnings():  # a clip shorter than one FFT window still plots
            warnings.simplefilter("ignore", UserWarning)
            spec_ax.specgram(
                audio + 1e-9, NFFT=nfft, Fs=sample_rate, noverlap=nfft // 2, cmap="magma"
            )
        spec_ax.set_title(f"{title}: spectrogram")
        spec_ax.set_xlabel("seconds")
        spec_ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
