"""A detector simulated on real ground-truth tracks: pre-NMS candidate boxes with the faults
real detectors have, seeded.

For every ground-truth box of every frame the simulated detector
- misses it during bursts (a two-state chain: a miss starts with `miss_start`, lasts on
  average 1 / `miss_stop` frames), as under occlusion or motion blur;
- otherwise emits `duplicates` boxes around it, jittered in proportion to its size;
- scores them from the track's own base level plus noise correlated in time (AR(1));
and every frame also gets short-lived false positives (Poisson count, low scores, lasting a
few frames), while `ghost_tracks` false tracks persist through the whole video with moderate
scores: the case where linking through time can hurt.

The real tracks come from the MOTChallenge ground truth shipped in the `motmetrics` wheel
(TUD-Campus, TUD-Stadtmitte: real pedestrians, annotations without images).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.formats import Video, read_mot

TUD_SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
FRAME_SIZE = (640.0, 480.0)  # width, height of the TUD sequences


MAX_NOISE_LEVEL = 10.0  # noise levels above this only exhaust memory


@dataclass(frozen=True)
class DetectorNoise:
    """How the simulated detector errs. `level` scales jitter, score noise and clutter."""

    duplicates: int = 6
    jitter: float = 0.05  # std of box edges, as a fraction of the box's width / height
    duplicate_jitter: float = 0.08
    miss_start: float = 0.05
    miss_stop: float = 0.4
    score_base: float = 0.6  # mean of a track's base score
    score_spread: float = 0.15  # std of track base scores around it
    score_noise: float = 0.2  # std of the AR(1) score noise
    score_rho: float = 0.8  # its correlation from one frame to the next
    false_per_frame: float = 6.0  # new short-lived false positives per frame (Poisson mean)
    false_life: float = 2.0  # frames they last, on average
    false_score: float = 0.35  # their scores are uniform in [0, false_score]
    ghost_tracks: int = 2
    ghost_score: float = 0.4

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and value >= 0):
                raise SensoriumError(f"detector noise {name}={value!r} must be a number >= 0")
        for name in ("miss_start", "miss_stop", "score_rho"):
            if getattr(self, name) > 1:
                raise SensoriumError(f"detector noise {name} must lie in [0, 1]")
        if self.duplicates < 1:
            raise SensoriumError("detector noise duplicates must be >= 1")

    def scaled(self, level: float) -> DetectorNoise:
        """A noisier (level > 1) or cleaner (level < 1) detector; level lies in [0, 10]
        (at 10 there are some 60 false boxes a frame, and above that memory, not the
        detector, becomes the limit)."""
        if not 0 <= level <= MAX_NOISE_LEVEL:
            raise SensoriumError(f"detector noise level {level}; expected 0 to {MAX_NOISE_LEVEL}")
        return DetectorNoise(
            self.duplicates,
            self.jitter * level,
            self.duplicate_jitter * level,
            min(1.0, self.miss_start * level),
            self.miss_stop,
            self.score_base,
            self.score_spread,
            self.score_noise * level,
            self.score_rho,
            self.false_per_frame * level,
            self.false_life,
            self.false_score,
            self.ghost_tracks,
            self.ghost_score,
        )


def tud_ground_truth(name: str) -> Video:
    """Ground-truth boxes of a TUD sequence from the motmetrics wheel."""
    if name not in TUD_SEQUENCES:
        raise SensoriumError(
            f"unknown sequence {name!r}; expected one of {', '.join(TUD_SEQUENCES)}"
        )
    try:
        import motmetrics
    except ImportError as exc:
        raise SensoriumError(
            "the TUD tracks come with the motmetrics package; pip install it"
        ) from exc
    path = Path(motmetrics.__file__).parent / "data" / name / "gt.txt"
    video = read_mot(path, ground_truth=True)
    video.name = name
    return video


def _clip(boxes: np.ndarray) -> np.ndarray:
    width, height = FRAME_SIZE
    boxes = boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0])
    boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1])
    return boxes


def _jitter(rng: np.random.Generator, box: np.ndarray, fraction: float, count: int) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0.0, fraction, size=(count, 4)) * np.array([w, h, w, h])
    return box[None, :] + noise


def simulate_detections(truth: Video, noise: DetectorNoise, seed: int) -> Video:
    """Pre-NMS candidates (one class) for every frame of a ground-truth video.

    The truth's `track_ids` tie each box to its track's score level and miss bursts; where it
    has none, a box's index in its frame stands in for its track.
    """
    rng = np.random.default_rng(seed)
    base: dict[int, float] = {}
    drift: dict[int, float] = {}
    missing: dict[int, bool] = {}
    width, height = FRAME_SIZE
    ghosts = []
    for _ in range(noise.ghost_tracks):
        w, h = rng.uniform(30, 80), rng.uniform(60, 160)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        ghosts.append([np.array([x, y, x + w, y + h]), rng.normal(0, 2, size=2)])
    alive_false: list[tuple[np.ndarray, float, int]] = []  # box, score, frames left
    video = Video(truth.name)
    for t, boxes in enumerate(truth.boxes):
        ids = truth.track_ids[t] if truth.track_ids else np.arange(len(boxes))
        out_boxes, out_scores = [], []
        for box, track in zip(boxes, ids, strict=True):
            track = int(track)
            if track not in base:
                base[track] = float(
                    np.clip(rng.normal(noise.score_base, noise.score_spread), 0.05, 0.95)
                )
                drift[track] = 0.0
                missing[track] = False
            drift[track] = noise.score_rho * drift[track] + rng.normal(0.0, noise.score_noise)
            if missing[track]:
                missing[track] = rng.random() >= noise.miss_stop
            else:
                missing[track] = rng.random() < noise.miss_start
            if missing[track]:
                continue
            centre = _jitter(rng, box, noise.jitter, 1)[0]
            out_boxes.append(_jitter(rng, centre, noise.duplicate_jitter, noise.duplicates))
            level = base[track] + drift[track]
            out_scores.append(np.clip(level + rng.normal(0.0, 0.05, noise.duplicates), 0.001, 1.0))
        for _ in range(rng.poisson(noise.false_per_frame)):
            w, h = rng.uniform(20, 90), rng.uniform(40, 200)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            life = 1 + rng.poisson(max(noise.false_life - 1, 0))
            alive_false.append(
                (np.array([x, y, x + w, y + h]), rng.uniform(0, noise.false_score), life)
            )
        kept_false = []
        for box, score, life in alive_false:
            out_boxes.append(_jitter(rng, box, noise.jitter, 2))
            out_scores.append(np.clip(score + rng.normal(0, 0.03, 2), 0.001, 1.0))
            if life > 1:
                kept_false.append((box + rng.normal(0, 2, 4), score, life - 1))
        alive_false = kept_false
        for ghost in ghosts:
            ghost[0] = ghost[0] + np.concatenate([ghost[1], ghost[1]])
            out_boxes.append(
                _jitter(rng, ghost[0], noise.duplicate_jitter, noise.duplicates // 2 + 1)
            )
            out_scores.append(
                np.clip(
                    noise.ghost_score + rng.normal(0, 0.08, noise.duplicates // 2 + 1), 0.001, 1
                )
            )
        frame_boxes = _clip(np.concatenate(out_boxes)) if out_boxes else np.zeros((0, 4))
        frame_scores = np.concatenate(out_scores) if out_scores else np.zeros(0)
        video.boxes.append(frame_boxes)
        video.scores.append(frame_scores)
        video.labels.append(np.zeros(len(frame_scores), dtype=np.int64))
        video.frame_ids.append(truth.frame_ids[t])
        video.image_ids.append(None)
    return video


def synthetic_tracks(frames: int, objects: int, seed: int) -> Video:
    """Pedestrian-sized boxes moving at constant velocity through a 640x480 frame."""
    rng = np.random.default_rng(seed)
    width, height = FRAME_SIZE
    size = np.stack([rng.uniform(30, 90, objects), rng.uniform(80, 220, objects)], axis=1)
    start = rng.uniform([0, 0], [width, height], size=(objects, 2)) - size / 2
    velocity = rng.normal(0, 3, size=(objects, 2))
    video = Video("synthetic")
    for t in range(frames):
        corner = start + velocity * t
        corner[:, 0] = np.mod(corner[:, 0], width - size[:, 0])  # wrap round, stay in frame
        corner[:, 1] = np.clip(corner[:, 1], 0, height - size[:, 1])
        video.boxes.append(np.concatenate([corner, corner + size], axis=1))
        video.scores.append(np.ones(objects))
        video.labels.append(np.zeros(objects, dtype=np.int64))
        video.frame_ids.append(t + 1)
        video.image_ids.append(None)
    return video
