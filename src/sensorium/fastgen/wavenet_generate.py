"""Generation from a trained WaveNet checkpoint: settings, inputs from files, audio out.

Shape letters: B streams, T samples, C mel channels, F frames.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sensorium.common.errors import SensoriumError
from sensorium.common.seeding import seed_everything
from sensorium.data.audio import load_audio
from sensorium.fastgen.features import MelSettings, log_mel
from sensorium.fastgen.mulaw import mulaw_decode, mulaw_encode
from sensorium.fastgen.sampling import check_temperature
from sensorium.fastgen.wavenet import WaveNet
from sensorium.fastgen.wavenet_samplers import SAMPLERS, Progress, make_sampler

logger = logging.getLogger(__name__)

SHIPPED_WAVENET = Path(__file__).parent / "weights" / "wavenet_speech.pt"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class GenerateSettings:
    """One generation request. `seconds` may be None when local features set the length."""

    seconds: float | None = 2.0
    batch: int = 1
    seed: int = 0
    temperature: float = 1.0
    sampler: str = "cached"
    dtype: str = "float32"
    prime: str | None = None
    prime_seconds: float = 1.0
    global_id: int | None = None
    local: str | None = None

    def __post_init__(self) -> None:
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise SensoriumError(f"seconds {self.seconds!r} must be a number > 0")
        if not isinstance(self.batch, int) or self.batch < 1:
            raise SensoriumError(f"batch {self.batch!r} must be an integer >= 1")
        check_temperature(self.temperature)
        if self.sampler not in SAMPLERS:
            raise SensoriumError(
                f"unknown sampler {self.sampler!r}; expected one of {', '.join(SAMPLERS)}"
            )
        if self.dtype not in DTYPES:
            raise SensoriumError(f"dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}")
        if not (self.prime_seconds > 0 and math.isfinite(self.prime_seconds)):
            raise SensoriumError(f"prime seconds {self.prime_seconds!r} must be a number > 0")


def local_features(path: Path, model: WaveNet, mel: dict | None) -> torch.Tensor:
    """Conditioning frames (C, F) from a recording (its log-mel) or a saved array (.npy)."""
    path = Path(path)
    cfg = model.config
    if path.suffix.lower() == ".npy":
        try:
            frames = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise SensoriumError(
                f"could not read features {str(path)!r}: it is not a NumPy array file "
                f"(np.save) of numbers ({type(exc).__name__})"
            ) from exc
        if frames.ndim != 2 or frames.shape[0] != cfg.local_channels or frames.shape[1] == 0:
            raise SensoriumError(
                f"features in {str(path)!r} have shape {frames.shape}; "
                f"expected ({cfg.local_channels}, frames) with at least one frame"
            )
        if not np.issubdtype(frames.dtype, np.number):
            raise SensoriumError(f"features in {str(path)!r} are {frames.dtype}, not numbers")
        return torch.from_numpy(frames.astype(np.float32))
    if mel is None:
        raise SensoriumError("this checkpoint records no mel settings; give features as .npy")
    settings = MelSettings(**mel)
    return torch.from_numpy(log_mel(load_audio(path, settings.sample_rate), settings))


def generate_audio(
    model: WaveNet,
    checkpoint: dict,
    settings: GenerateSettings,
    progress: Progress | None = None,
) -> tuple[np.ndarray, dict]:
    """Run one generation request.

    Returns the audio (B, T) float32 in [-1, 1] (the prime, if any, first) and a summary with
    the sampler used, sample counts and samples per second.
    """
    cfg = model.config
    dtype = DTYPES[settings.dtype]
    model = model.to(dtype)
    seed_everything(settings.seed)
    B = settings.batch

    prime = None
    if settings.prime is not None:
        audio = load_audio(Path(settings.prime), cfg.sample_rate)
        if audio.shape[0] < settings.prime_seconds * cfg.sample_rate:
            logger.warning(
                "the prime %s is %.2f s long, shorter than --prime-seconds %.2f: all of it is used",
                settings.prime,
                audio.shape[0] / cfg.sample_rate,
                settings.prime_seconds,
            )
        audio = audio[: round(settings.prime_seconds * cfg.sample_rate)]
        prime = mulaw_encode(torch.from_numpy(audio), cfg.quantization)

    local = None
    if settings.local is not None:
        frames = local_features(Path(settings.local), model, checkpoint.get("mel"))
        local = frames[None].expand(B, -1, -1).to(dtype)
    elif cfg.local_channels:
        raise SensoriumError(
            "this model is conditioned on log-mel frames: give a recording or a .npy "
            "of frames with --local"
        )

    prime_len = 1 if prime is None else prime.shape[0]
    if settings.seconds is not None:
        num_samples = round(settings.seconds * cfg.sample_rate)
    elif local is not None:
        num_samples = local.shape[2] * cfg.local_hop - prime_len
    else:
        raise SensoriumError("say how long to generate with --seconds")
    if num_samples < 1:
        raise SensoriumError(
            f"nothing to generate: {num_samples} samples after a prime of {prime_len}"
        )
    covered = None if local is None else local.shape[2] * cfg.local_hop  # samples with frames
    if covered is not None and prime_len + num_samples > covered:
        logger.warning(
            "generating %.2f s past the end of the conditioning features (%.2f s): the last "
            "frame is repeated there",
            (prime_len + num_samples - covered) / cfg.sample_rate,
            covered / cfg.sample_rate,
        )

    global_id = None
    if settings.global_id is not None:
        global_id = torch.full((B,), settings.global_id, dtype=torch.long)

    sampler = make_sampler(settings.sampler, model)
    started = time.perf_counter()
    classes = sampler.generate(
        num_samples,
        batch=B,
        seed=settings.seed,
        temperature=settings.temperature,
        prime=prime,
        global_id=global_id,
        local=local,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    audio = mulaw_decode(classes.cpu(), cfg.quantization).numpy()
    if prime is None:
        audio = audio[:, 1:]  # drop the silent start sample
    summary = {
        "sampler": type(sampler).__name__,
        "samples_per_stream": num_samples,
        "streams": B,
        "seconds": seconds,
        "samples_per_second": num_samples * B / seconds,
    }
    logger.info(
        "%s: %d x %d samples in %.2f s (%.0f samples/s)",
        summary["sampler"],
        B,
        num_samples,
        seconds,
        summary["samples_per_second"],
    )
    return audio, summary
