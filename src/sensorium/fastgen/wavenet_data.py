"""A folder of recordings as WaveNet training material: mu-law clips, features, crops.

Shape letters: B batch, T crop length in samples, C mel channels, F frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sensorium.common.errors import SensoriumError
from sensorium.data.audio import find_audio_files, load_audio
from sensorium.fastgen.features import MelSettings, log_mel
from sensorium.fastgen.mulaw import mulaw_encode

logger = logging.getLogger(__name__)


@dataclass
class Clip:
    """One recording: classes (T,), optional mel frames (C, F), its global id."""

    path: Path
    classes: torch.Tensor
    mel: torch.Tensor | None
    global_id: int


class AudioCorpus:
    """Recordings read from a folder, split into training and validation clips by file.

    Global ids, when asked for, are the names of the folders directly below the data folder
    (one id per speaker folder, say); files lying directly in the data folder get id 0.
    """

    def __init__(
        self,
        root: Path,
        sample_rate: int,
        quantization: int,
        mel: MelSettings | None,
        min_length: int,
        val_fraction: float,
        seed: int,
        global_from_folders: bool = False,
        show_progress: bool = True,
    ) -> None:
        if not 0.0 <= val_fraction < 1.0:
            raise SensoriumError(f"validation fraction {val_fraction!r} must be in [0, 1)")
        root = Path(root)
        files = find_audio_files(root)
        self.global_names: list[str] = []
        if global_from_folders:
            self.global_names = sorted(
                {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
            ) or ["."]
        clips: list[Clip] = []
        too_short = 0
        for path in tqdm(files, desc="reading audio", unit="file", disable=not show_progress):
            audio = load_audio(path, sample_rate)
            if audio.shape[0] < min_length:
                too_short += 1
                continue
            frames = torch.from_numpy(log_mel(audio, mel)) if mel is not None else None
            gid = 0
            if global_from_folders:
                parts = path.relative_to(root).parts
                gid = self.global_names.index(parts[0]) if len(parts) > 1 else 0
            classes = mulaw_encode(torch.from_numpy(audio), quantization)
            clips.append(Clip(path, classes, frames, gid))
        if too_short:
            logger.warning(
                "skipped %d of %d files shorter than a training crop of %d samples",
                too_short,
                len(files),
                min_length,
            )
        if not clips:
            raise SensoriumError(
                f"all {len(files)} audio files in {str(root)!r} are shorter than a training "
                f"crop of {min_length} samples ({min_length / sample_rate:.2f} s); "
                "use a shorter --crop"
            )
        order = np.random.default_rng(seed).permutation(len(clips))
        n_val = round(val_fraction * len(clips))
        if val_fraction > 0 and len(clips) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, len(clips) - 1)
        self.val = [clips[i] for i in order[:n_val]]
        self.train = [clips[i] for i in order[n_val:]]
        total = sum(c.classes.shape[0] for c in clips) / sample_rate
        logger.info(
            "%d clips (%.1f s): %d for training, %d for validation",
            len(clips),
            total,
            len(self.train),
            len(self.val),
        )


def crop_batch(
    clips: list[Clip],
    batch: int,
    length: int,
    hop: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Random crops of `length` + 1 samples starting on frame boundaries.

    Returns classes (B, T + 1), mel frames (B, C, T // hop + 2) or None, and global ids (B,).
    Clips are chosen in proportion to their length.
    """
    lengths = np.array([c.classes.shape[0] for c in clips], dtype=np.float64)
    picks = rng.choice(len(clips), size=batch, p=lengths / lengths.sum())
    xs, mels, ids = [], [], []
    for i in picks:
        clip = clips[i]
        last_start = (clip.classes.shape[0] - length - 1) // hop
        start = int(rng.integers(0, last_start + 1)) * hop
        xs.append(clip.classes[start : start + length + 1])
        if clip.mel is not None:
            mels.append(frames_for(clip.mel, start, length + 1, hop))
        ids.append(clip.global_id)
    mel = torch.stack(mels) if mels else None
    return torch.stack(xs), mel, torch.tensor(ids, dtype=torch.long)


def frames_for(mel: torch.Tensor, start: int, length: int, hop: int) -> torch.Tensor:
    """The frames (C, F) covering samples start .. start + length of a clip; start % hop == 0.

    Pads by repeating the last frame where the clip's frames run out.
    """
    first = start // hop
    count = length // hop + 2
    frames = mel[:, first : first + count]
    if frames.shape[1] < count:
        pad = frames[:, -1:].expand(-1, count - frames.shape[1])
        frames = torch.cat([frames, pad], dim=1)
    return frames


def validation_crops(
    clips: list[Clip], length: int, hop: int, max_crops: int
) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """Fixed, evenly spaced crops of the validation clips, as batches of one."""
    crops = []
    for clip in clips:
        usable = clip.classes.shape[0] - length - 1
        for start in range(0, usable + 1, length):
            start = start // hop * hop
            x = clip.classes[start : start + length + 1][None]
            mel = (
                frames_for(clip.mel, start, length + 1, hop)[None] if clip.mel is not None else None
            )
            crops.append((x, mel, torch.tensor([clip.global_id])))
    if len(crops) > max_crops:
        keep = np.linspace(0, len(crops) - 1, max_crops).round().astype(int)
        crops = [crops[i] for i in keep]
    return crops
