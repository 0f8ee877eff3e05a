"""Video detections in the formats people have: MOTChallenge text files and COCO-style JSON.

Boxes are held as x1, y1, x2, y2 in pixels; the files hold x, y, width, height.

- MOTChallenge `det.txt` / `gt.txt`: one row per box, `frame, id, x, y, w, h, conf, ...`,
  frames numbered from 1 and every frame up to the last one present (frames without rows
  are empty). One class. In `gt.txt` a row with conf 0 is not a target; MOT16-style rows
  of nine fields (class, then visibility, after conf) keep class 1 (pedestrian) only, while
  MOT15-style rows of ten end in world coordinates.
- COCO-style, video-aware: an annotation file with `videos`, `images` (each with `video_id`
  and `frame_id`), `categories` and, for ground truth, `annotations`; detections as a COCO
  results list `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]`. A video's
  frames are its images in `frame_id` order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorium.common.errors import SensoriumError


@dataclass
class Video:
    """One video's boxes frame by frame: (N_t, 4) x1, y1, x2, y2, scores (N_t,), labels (N_t,).

    `frame_ids` are the source's frame numbers; `image_ids` the COCO image ids (None for MOT);
    `track_ids` the MOTChallenge identity of every box where the file has them (ground truth).
    """

    name: str
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    frame_ids: list[int] = field(default_factory=list)
    image_ids: list[int | None] = field(default_factory=list)
    track_ids: list[np.ndarray] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.boxes)

    @property
    def num_boxes(self) -> int:
        return sum(len(s) for s in self.scores)


# Frames are kept as a list from 1 to the last: a bound keeps a typo from filling memory.
MAX_FRAMES = 10_000_000


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def _bad(path: Path, where: str, problem: str) -> SensoriumError:
    return SensoriumError(f"{str(path)!r}{where}: {problem}")


# --------------------------------------------------------------------------------------------
# MOTChallenge
# --------------------------------------------------------------------------------------------
def read_mot(path: Path, ground_truth: bool = False) -> Video:
    """A MOTChallenge det.txt (or gt.txt with `ground_truth`) as one video of one class."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SensoriumError(f"could not read {str(path)!r}: {exc}") from exc
    rows = []
    last_frame = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f" line {number}"
        try:
            values = [float(v) for v in line.replace(" ", "").split(",")]
        except ValueError:
            raise _bad(path, where, f"{line[:60]!r} is not comma-separated numbers") from None
        if len(values) < 7:
            raise _bad(path, where, f"{len(values)} fields; MOTChallenge rows have at least 7")
        frame, _, x, y, w, h, conf = values[:7]
        if not all(math.isfinite(v) for v in values[:7]):
            raise _bad(path, where, "a value is NaN or infinite")
        if frame < 1 or frame != int(frame):
            raise _bad(path, where, f"frame {frame:g}; frames are whole numbers from 1")
        if frame > MAX_FRAMES:
            raise _bad(path, where, f"frame {frame:g}: more than {MAX_FRAMES:,} frames")
        if frame < last_frame:
            raise _bad(path, where, f"frame {frame:g} after frame {last_frame:g}: out of order")
        if w < 0 or h < 0:
            raise _bad(path, where, f"negative box size {w:g} x {h:g}")
        last_frame = frame
        if ground_truth:
            pedestrian = len(values) != 9 or values[7] == 1
            if conf == 0 or not pedestrian:
                continue
        elif conf < 0:
            raise _bad(
                path,
                where,
                f"negative score {conf:g}; Seq-NMS adds scores up, so they must be >= 0 "
                "(rescale the detector's scores to [0, 1])",
            )
        rows.append((int(frame), x, y, w, h, 1.0 if ground_truth else conf, values[1]))
    if not rows and last_frame == 0:
        raise SensoriumError(f"{str(path)!r} holds no MOTChallenge rows (empty file?)")
    table = np.array(rows, dtype=np.float64).reshape(-1, 7)
    video = Video(path.parent.parent.name if path.parent.name in ("det", "gt") else path.stem)
    frames = table[:, 0].astype(int)
    for frame in range(1, int(last_frame) + 1):
        chosen = table[frames == frame]
        video.boxes.append(_xywh_to_xyxy(chosen[:, 1:5]))
        video.scores.append(chosen[:, 5])
        video.labels.append(np.zeros(len(chosen), dtype=np.int64))
        video.frame_ids.append(frame)
        video.image_ids.append(None)
        video.track_ids.append(chosen[:, 6].astype(np.int64))
    return video


def write_mot(path: Path, video: Video) -> None:
    """Rows `frame, -1, x, y, w, h, score, -1, -1, -1`, by frame, best score first."""
    lines = []
    for frame, boxes, scores in zip(video.frame_ids, video.boxes, video.scores, strict=True):
        for k in np.argsort(-scores, kind="stable"):
            x1, y1, x2, y2 = boxes[k]
            lines.append(
                f"{frame},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{scores[k]:.6f},-1,-1,-1"
            )
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


# --------------------------------------------------------------------------------------------
# COCO-style, video-aware
# --------------------------------------------------------------------------------------------
def _read_json(path: Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SensoriumError(f"could not read {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SensoriumError(f"{str(path)!r} is not valid JSON ({exc})") from exc


@dataclass
class CocoVideos:
    """The video structure of a COCO-style annotation file."""

    path: Path
    videos: dict[int, str]  # video id -> name
    frames: dict[int, list[int]]  # video id -> image ids in frame order
    frame_of: dict[int, tuple[int, int]]  # image id -> (video id, frame_id)
    categories: list[dict]
    annotations: list[dict]


def read_coco_videos(path: Path) -> CocoVideos:
    """Videos, images in frame order, categories and ground truth of an annotation file."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise SensoriumError(f"{str(path)!r} is not a COCO-style annotation file: no 'images' list")
    videos = {int(v["id"]): str(v.get("name", v["id"])) for v in data.get("videos", [])}
    frame_of: dict[int, tuple[int, int]] = {}
    seen: dict[tuple[int, int], int] = {}
    for image in data["images"]:
        if "id" not in image or "video_id" not in image or "frame_id" not in image:
            raise SensoriumError(
                f"{str(path)!r}: image {image.get('id', '?')} lacks id, video_id or frame_id; "
                "Seq-NMS needs to know each image's video and frame"
            )
        key = (int(image["video_id"]), int(image["frame_id"]))
        if key in seen:
            raise SensoriumError(
                f"{str(path)!r}: images {seen[key]} and {image['id']} are both frame {key[1]} "
                f"of video {key[0]}"
            )
        seen[key] = int(image["id"])
        frame_of[int(image["id"])] = key
        videos.setdefault(key[0], str(key[0]))
    frames: dict[int, list[int]] = {v: [] for v in videos}
    for (video, _), image in sorted(seen.items()):
        frames[video].append(image)
    return CocoVideos(
        path,
        videos,
        {v: f for v, f in frames.items() if f},
        frame_of,
        list(data.get("categories", [])),
        list(data.get("annotations", [])),
    )


def _boxes_by_image(path: Path, items, coco: CocoVideos, with_scores: bool):
    """Group COCO boxes by image: image id -> (boxes (N, 4) xyxy, scores (N,), labels (N,))."""
    grouped: dict[int, list[tuple[list[float], float, int]]] = {}
    for n, item in enumerate(items):
        where = f" entry {n}"
        try:
            image, category = int(item["image_id"]), int(item["category_id"])
            x, y, w, h = (float(v) for v in item["bbox"])
            score = float(item["score"]) if with_scores else 1.0
        except (KeyError, TypeError, ValueError):
            raise _bad(
                path, where, "needs image_id, category_id, bbox [x, y, w, h] and score"
            ) from None
        if image not in coco.frame_of:
            raise _bad(path, where, f"image_id {image} is not in {str(coco.path)!r}")
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise _bad(path, where, "a box coordinate is NaN or infinite")
        if w < 0 or h < 0:
            raise _bad(path, where, f"negative box size {w:g} x {h:g}")
        if not (math.isfinite(score) and score >= 0):
            raise _bad(path, where, f"score {score!r}; expected a number >= 0")
        grouped.setdefault(image, []).append(([x, y, w, h], score, category))
    out = {}
    for image, rows in grouped.items():
        out[image] = (
            _xywh_to_xyxy(np.array([r[0] for r in rows], dtype=np.float64)),
            np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.int64),
        )
    return out


def _videos_from(coco: CocoVideos, by_image) -> list[Video]:
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    videos = []
    for video_id, images in coco.frames.items():
        video = Video(coco.videos[video_id])
        for image in images:
            boxes, scores, labels = by_image.get(image, empty)
            video.boxes.append(boxes)
            video.scores.append(scores)
            video.labels.append(labels)
            video.frame_ids.append(coco.frame_of[image][1])
            video.image_ids.append(image)
        videos.append(video)
    return videos


def read_coco_detections(path: Path, coco: CocoVideos) -> list[Video]:
    """COCO results (a list of scored boxes) split into the annotation file's videos."""
    path = Path(path)
    items = _read_json(path)
    if isinstance(items, dict) and "annotations" in items:
        items = items["annotations"]
    if not isinstance(items, list):
        raise SensoriumError(f"{str(path)!r} is not a COCO results list of detections")
    if not items:
        raise SensoriumError(f"{str(path)!r} holds no detections")
    return _videos_from(coco, _boxes_by_image(path, items, coco, with_scores=True))


def coco_ground_truth(coco: CocoVideos) -> list[Video]:
    """The annotation file's own boxes (ground truth) as videos, score 1."""
    items = [a for a in coco.annotations if not a.get("ignore", 0) and not a.get("iscrowd", 0)]
    return _videos_from(coco, _boxes_by_image(coco.path, items, coco, with_scores=False))


def coco_results(videos: list[Video]) -> list[dict]:
    """Videos with COCO image ids back to a COCO results list."""
    results = []
    for video in videos:
        for image, boxes, scores, labels in zip(
            video.image_ids, video.boxes, video.scores, video.labels, strict=True
        ):
            for box, score, label in zip(boxes, scores, labels, strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                results.append(
                    {
                        "image_id": image,
                        "category_id": int(label),
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        "score": round(float(score), 6),
                    }
                )
    return results
