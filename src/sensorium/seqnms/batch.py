"""Seq-NMS over many videos: the inputs a user points at, worker processes, the outputs.

An input is one of
- a MOTChallenge `det.txt` (one video);
- a folder of MOTChallenge sequences, each `SEQUENCE/det/det.txt` (one video each);
- a COCO results JSON, split into videos by a video-aware annotation file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.algorithm import SeqNmsSettings
from sensorium.seqnms.evaluation import rescore_video
from sensorium.seqnms.formats import (
    Video,
    coco_results,
    read_coco_detections,
    read_coco_videos,
    read_mot,
    write_mot,
)


@dataclass
class Detections:
    """What was read: its kind ("mot-file", "mot-folder" or "coco"), its videos, and for a
    MOT folder the sequence name of each video."""

    kind: str
    videos: list[Video]
    source: Path


def read_detections(path: Path, annotations: Path | None = None) -> Detections:
    path = Path(path)
    if not path.exists():
        raise SensoriumError(f"detections {str(path)!r} do not exist")
    if path.is_dir():
        files = sorted(path.glob("*/det/det.txt"))
        if not files:
            raise SensoriumError(
                f"folder {str(path)!r} holds no MOTChallenge sequences (SEQUENCE/det/det.txt)"
            )
        return Detections("mot-folder", [read_mot(f) for f in files], path)
    if path.suffix.lower() == ".json":
        if annotations is None:
            raise SensoriumError(
                f"{str(path)!r} is COCO-style: give the video-aware annotation file with "
                "--annotations (images with video_id and frame_id)"
            )
        return Detections("coco", read_coco_detections(path, read_coco_videos(annotations)), path)
    return Detections("mot-file", [read_mot(path)], path)


def output_paths(detections: Detections, out: Path) -> list[Path]:
    """Where each output file goes, so they can all be checked before any work starts."""
    out = Path(out)
    if detections.kind == "mot-folder":
        return [out / v.name / "det" / "det.txt" for v in detections.videos]
    return [out]


def settings_path(detections: Detections, out: Path) -> Path:
    """Where the settings of a run go: in an output folder, or beside an output file."""
    out = Path(out)
    if detections.kind == "mot-folder":
        return out / "seqnms-settings.json"
    return out.with_name(out.stem + ".settings.json")


def _rescore(args: tuple[Video, SeqNmsSettings]) -> Video:
    return rescore_video(*args)


def rescore_all(
    videos: list[Video],
    settings: SeqNmsSettings,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Video]:
    """Seq-NMS on every video, in `workers` processes (1: in this one), in input order."""
    if not isinstance(workers, int) or workers < 1:
        raise SensoriumError(f"workers {workers!r} must be an integer >= 1")
    jobs = [(v, settings) for v in videos]
    workers = min(workers, len(videos), 4 * (os.cpu_count() or 1))  # more would only wait
    if workers == 1 or len(videos) == 1:
        done = []
        for job in jobs:
            done.append(_rescore(job))
            if progress is not None:
                progress(1)
        return done
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = []
        for video in pool.map(_rescore, jobs, chunksize=1):
            done.append(video)
            if progress is not None:
                progress(1)
        return done


def write_detections(detections: Detections, videos: list[Video], paths: list[Path]) -> None:
    if detections.kind == "coco":
        paths[0].write_text(json.dumps(coco_results(videos)) + "\n")
        return
    for video, path in zip(videos, paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mot(path, video)
