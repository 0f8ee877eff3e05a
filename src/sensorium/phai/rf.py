"""Synthetic radio signals on NumPy and SciPy: modulation families, channels and emitters.

Every generator is vectorised over signals: it returns complex baseband signals (N, T) of
unit mean power. A signal passes, in order, through its emitter's hardware (IQ imbalance,
DC offset, amplifier compression, phase noise, carrier offset and drift) and then the
channel (multipath, carrier phase, a random amplitude, white noise at a chosen SNR).

torchsig, the field's generator, asks for torchaudio, which has no build for the torch this
project uses; this module stands in for it with the families and impairments that matter
for pretraining and probing.

Shapes: N signals, T samples, K symbols, S samples per symbol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

# --------------------------------------------------------------------------------------------
# modulations
# --------------------------------------------------------------------------------------------


def _normalise(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit mean power."""
    power = np.mean(np.abs(x) ** 2, axis=-1, keepdims=True)
    return x / np.sqrt(np.maximum(power, 1e-20))


def rrc_taps(beta: float, sps_: int, span: int = 8) -> np.ndarray:
    """Root-raised-cosine pulse (span * sps_ + 1 taps), unit energy."""
    t = np.arange(-span * sps_ / 2, span * sps_ / 2 + 1) / sps_
    taps = np.empty_like(t)
    for i, ti in enumerate(t):
        if abs(ti) < 1e-9:
            taps[i] = 1 - beta + 4 * beta / np.pi
        elif beta > 0 and abs(abs(4 * beta * ti) - 1) < 1e-9:
            taps[i] = (beta / np.sqrt(2)) * (
                (1 + 2 / np.pi) * np.sin(np.pi / (4 * beta))
                + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta))
            )
        else:
            num = np.sin(np.pi * ti * (1 - beta)) + 4 * beta * ti * np.cos(np.pi * ti * (1 + beta))
            taps[i] = num / (np.pi * ti * (1 - (4 * beta * ti) ** 2))
    return taps / np.sqrt(np.sum(taps**2))


def _psk(m: int) -> np.ndarray:
    return np.exp(2j * np.pi * np.arange(m) / m + (1j * np.pi / 4 if m == 4 else 0))


def _qam(m: int) -> np.ndarray:
    side = round(np.sqrt(m))
    levels = np.arange(side) * 2 - (side - 1)
    return (levels[:, None] + 1j * levels[None, :]).ravel()


CONSTELLATIONS = {
    "bpsk": _psk(2),
    "qpsk": _psk(4),
    "8psk": _psk(8),
    "16qam": _qam(16),
    "64qam": _qam(64),
    "4ask": np.array([-3.0, -1.0, 1.0, 3.0], dtype=complex),
    "ook": np.array([0.0, 1.0], dtype=complex),
}


def _linear(name: str) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    points = CONSTELLATIONS[name]

    def make(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
        s = int(rng.choice([2, 4, 8]))
        taps = rrc_taps(float(rng.uniform(0.2, 0.5)), s)
        k = length // s + len(taps) // s + 2
        symbols = points[rng.integers(0, len(points), size=(n, k))]  # (N, K)
        up = np.zeros((n, k * s), dtype=complex)
        up[:, ::s] = symbols  # (N, K * S)
        shaped = sps.fftconvolve(up, taps[None, :], axes=1)
        start = len(taps)
        return _normalise(shaped[:, start : start + length])

    return make


def _fsk(levels: int, gaussian: bool) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    def make(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
        s = int(rng.choice([4, 8, 16]))
        k = length // s + 2
        data = rng.integers(0, levels, size=(n, k)) * 2 - (levels - 1)  # (N, K)
        freq = np.repeat(data.astype(float), s, axis=1)[:, :length]  # (N, T)
        if gaussian:
            width = s * 0.5
            t = np.arange(-2 * s, 2 * s + 1)
            pulse = np.exp(-0.5 * (t / width) ** 2)
            freq = sps.fftconvolve(freq, (pulse / pulse.sum())[None, :], mode="same", axes=1)
        h = rng.uniform(0.5, 1.0)
        phase = np.pi * h * np.cumsum(freq, axis=1) / s
        return np.exp(1j * phase)

    return make


def _message(n: int, length: int, rng: np.random.Generator, band: float) -> np.ndarray:
    """Smooth real messages (N, T) with power below the normalised frequency `band`."""
    noise = rng.standard_normal((n, length + 64))
    b, a = sps.butter(4, band)
    msg = sps.lfilter(b, a, noise, axis=1)[:, 64:]
    return msg / np.maximum(np.abs(msg).max(axis=1, keepdims=True), 1e-12)


def _am_dsb(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    depth = rng.uniform(0.3, 0.9, size=(n, 1))
    return _normalise((1 + depth * _message(n, length, rng, 0.05)).astype(complex))


def _am_ssb(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    msg = _message(n, length, rng, 0.08)
    upper = rng.random((n, 1)) < 0.5
    analytic = sps.hilbert(msg, axis=1)
    return _normalise(np.where(upper, analytic, np.conj(analytic)))


def _fm(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    deviation = rng.uniform(0.02, 0.1, size=(n, 1))
    return np.exp(2j * np.pi * np.cumsum(deviation * _message(n, length, rng, 0.03), axis=1))


def _ofdm(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    carriers = int(rng.choice([32, 64, 128]))
    prefix = carriers // 4
    used = np.ones(carriers, bool)
    used[0] = False  # no DC carrier
    used[carriers // 2 - carriers // 8 : carriers // 2 + carriers // 8] = False  # guard band
    points = CONSTELLATIONS[str(rng.choice(["qpsk", "16qam"]))]
    blocks = length // (carriers + prefix) + 2
    grid = points[rng.integers(0, len(points), size=(n, blocks, carriers))] * used
    symbols = np.fft.ifft(grid, axis=2)  # (N, blocks, carriers)
    with_prefix = np.concatenate([symbols[:, :, -prefix:], symbols], axis=2)
    flat = with_prefix.reshape(n, -1)  # (N, blocks * (carriers + prefix))
    start = int(rng.integers(0, carriers + prefix))
    return _normalise(flat[:, start : start + length])


def _lfm(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    period = rng.integers(length // 8, length, size=(n, 1))
    t = (np.arange(length)[None, :] + rng.integers(0, length, size=(n, 1))) % period
    sweep = rng.uniform(0.1, 0.8, size=(n, 1)) * np.where(rng.random((n, 1)) < 0.5, 1, -1)
    start = -sweep / 2
    return np.exp(2j * np.pi * (start * t + 0.5 * sweep * t**2 / period))


def _tone(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    f = rng.uniform(-0.25, 0.25, size=(n, 1))
    return np.exp(2j * np.pi * f * np.arange(length)[None, :])


MODULATIONS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    **{name: _linear(name) for name in CONSTELLATIONS},
    "2fsk": _fsk(2, gaussian=False),
    "4fsk": _fsk(4, gaussian=False),
    "gfsk": _fsk(2, gaussian=True),
    "am-dsb": _am_dsb,
    "am-ssb": _am_ssb,
    "fm": _fm,
    "ofdm": _ofdm,
    "lfm": _lfm,
    "tone": _tone,
}


def modulate(names: list[str] | np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """One signal (N, T) per entry of `names`, each of the named family, unit power."""
    names = np.asarray(names)
    out = np.empty((len(names), length), dtype=np.complex128)
    for name in np.unique(names):
        rows = np.flatnonzero(names == name)
        # several small draws per family, so per-call choices (samples per symbol, roll-off)
        # vary inside one batch
        for chunk in np.array_split(rows, min(len(rows), 4)):
            out[chunk] = MODULATIONS[str(name)](len(chunk), length, rng)
    return out


# --------------------------------------------------------------------------------------------
# emitters and channels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emitters:
    """Fixed hardware impairments of E virtual transmitters; every field is (E,)."""

    gain_imbalance: np.ndarray  # I/Q amplitude ratio minus 1
    phase_imbalance: np.ndarray  # radians
    dc_offset: np.ndarray  # complex, relative to the signal's RMS
    saturation: np.ndarray  # amplifier output limit, relative to RMS (Rapp model)
    smoothness: np.ndarray  # Rapp model's p
    am_pm: np.ndarray  # radians of phase per unit power
    phase_noise: np.ndarray  # std of the phase random walk per sample, radians
    frequency_offset: np.ndarray  # cycles per sample
    drift: np.ndarray  # change of frequency offset per sample

    def __len__(self) -> int:
        return len(self.gain_imbalance)


def make_emitters(count: int, seed: int) -> Emitters:
    """`count` emitters whose impairments are drawn from `seed`: different seeds give
    different emitters, so emitters for probing can be kept unseen in pretraining."""
    rng = np.random.default_rng([seed, 7919])
    return Emitters(
        gain_imbalance=rng.uniform(-0.15, 0.15, count),
        phase_imbalance=np.deg2rad(rng.uniform(-10, 10, count)),
        dc_offset=rng.normal(0, 0.05, count) + 1j * rng.normal(0, 0.05, count),
        saturation=rng.uniform(1.2, 3.0, count),
        smoothness=rng.uniform(1.0, 4.0, count),
        am_pm=np.deg2rad(rng.uniform(-8, 8, count)),
        phase_noise=10 ** rng.uniform(-3.5, -2, count),
        frequency_offset=rng.uniform(-0.01, 0.01, count),
        drift=rng.uniform(-2e-6, 2e-6, count),
    )


def apply_emitter(
    x: np.ndarray, emitters: Emitters, which: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Signals (N, T) through the hardware of emitters `which` (N,)."""
    col = {name: getattr(emitters, name)[which][:, None] for name in emitters.__dataclass_fields__}
    n, length = x.shape
    # IQ imbalance: y = mu * x + nu * conj(x)
    g = 1 + col["gain_imbalance"]
    phi = col["phase_imbalance"]
    mu = (1 + g * np.exp(-1j * phi)) / 2
    nu = (1 - g * np.exp(1j * phi)) / 2
    y = mu * x + nu * np.conj(x) + col["dc_offset"]
    # amplifier: Rapp AM/AM compression and AM/PM conversion
    r = np.abs(y)
    p = col["smoothness"]
    gain = 1 / (1 + (r / col["saturation"]) ** (2 * p)) ** (1 / (2 * p))
    y = y * gain * np.exp(1j * col["am_pm"] * r**2)
    # oscillator: phase noise, carrier offset and its drift
    t = np.arange(length)[None, :]
    walk = np.cumsum(rng.standard_normal((n, length)) * col["phase_noise"], axis=1)
    phase = 2 * np.pi * (col["frequency_offset"] * t + 0.5 * col["drift"] * t**2) + walk
    return y * np.exp(1j * phase)


def apply_channel(
    x: np.ndarray,
    snr_db: np.ndarray,
    rng: np.random.Generator,
    multipath: bool = True,
) -> np.ndarray:
    """Signals (N, T) through multipath, a random carrier phase and amplitude, and white
    noise at `snr_db` (N,) dB."""
    n, length = x.shape
    y = x.copy()
    if multipath:
        delays = (1, 2, 3)
        strengths = rng.uniform(0, 0.4, size=(n, len(delays)))
        for delay, strength in zip(delays, strengths.T, strict=True):
            tap = strength[:, None] * np.exp(2j * np.pi * rng.random((n, 1)))
            y[:, delay:] += tap * x[:, :-delay]
    y = _normalise(y) * np.exp(2j * np.pi * rng.random((n, 1)))
    noise_std = np.sqrt(10 ** (-np.asarray(snr_db, float) / 10) / 2)[:, None]
    noise = noise_std * (rng.standard_normal((n, length)) + 1j * rng.standard_normal((n, length)))
    amplitude = 10 ** rng.uniform(-1, 1, size=(n, 1))
    return amplitude * (y + noise)


@dataclass(frozen=True)
class RFBatch:
    """Signals and what made them."""

    signals: np.ndarray  # (N, T) complex64
    modulation: np.ndarray  # (N,) index into the modulation list used
    emitter: np.ndarray  # (N,) index into the emitters used
    snr_db: np.ndarray  # (N,)


def random_rf(
    n: int,
    length: int,
    rng: np.random.Generator,
    emitters: Emitters,
    modulations: tuple[str, ...] = tuple(MODULATIONS),
    snr_range: tuple[float, float] = (-2.0, 20.0),
) -> RFBatch:
    """`n` signals of random modulation family, emitter and SNR."""
    modulation = rng.integers(0, len(modulations), n)
    emitter = rng.integers(0, len(emitters), n)
    snr = rng.uniform(*snr_range, n)
    x = modulate(np.asarray(modulations)[modulation], length, rng)
    x = apply_emitter(x, emitters, emitter, rng)
    x = apply_channel(x, snr, rng)
    return RFBatch(x.astype(np.complex64), modulation, emitter, snr)
