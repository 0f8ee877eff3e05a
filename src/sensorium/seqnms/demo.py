"""A real detector on a real video: OpenCV's HOG people detector on a street scene, its raw
windows through per-frame NMS and through Seq-NMS, and a contact sheet to compare them.

The default video is `vtest.avi` from the Debian package opencv-doc (795 frames, 768x576, 10
fps, pedestrians). The detector is OpenCV's built-in HOG + linear SVM people detector
(opencv-python-headless below 5); its windows are taken before OpenCV groups them
(groupThreshold 0), so they are the pre-NMS candidates Seq-NMS is meant for. A window's SVM
margin m > 0 becomes the score tanh(m) in [0, 1).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.algorithm import SeqNmsSettings
from sensorium.seqnms.evaluation import per_frame_nms, rescore_video
from sensorium.seqnms.formats import Video, write_mot

logger = logging.getLogger(__name__)

DEFAULT_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VIDEO_PACKAGE = "opencv-doc"


def hog_detections(path: Path, frames: int) -> tuple[Video, list[np.ndarray]]:
    """Raw HOG people windows of the first `frames` frames, and those frames (H, W, 3) RGB."""
    try:
        import cv2
    except ImportError as exc:
        raise SensoriumError("the demo needs opencv-python-headless < 5 (pip install it)") from exc
    if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        raise SensoriumError(
            f"OpenCV {cv2.__version__} has no HOG people detector (removed in OpenCV 5); "
            "install opencv-python-headless < 5"
        )
    if not Path(path).is_file():
        hint = f" (install the Debian package {VIDEO_PACKAGE})" if path == DEFAULT_VIDEO else ""
        raise SensoriumError(f"video {str(path)!r} does not exist{hint}")
    capture = cv2.VideoCapture(str(path))
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    video, images = Video(Path(path).stem), []
    try:
        for t in tqdm(range(frames), desc="HOG detector", unit="frame", delay=0.5):
            ok, frame = capture.read()
            if not ok:
                break
            rects, margins = hog.detectMultiScale(
                frame, hitThreshold=0, winStride=(8, 8), padding=(8, 8), scale=1.05,
                groupThreshold=0,
            )  # fmt: skip
            rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)  # x, y, w, h
            margins = np.asarray(margins, dtype=np.float64).reshape(-1)
            video.boxes.append(np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], 1))
            video.scores.append(np.tanh(np.clip(margins, 0, None)))
            video.labels.append(np.zeros(len(margins), dtype=np.int64))
            video.frame_ids.append(t + 1)
            video.image_ids.append(None)
            images.append(frame[:, :, ::-1])  # BGR to RGB
    finally:
        capture.release()
    if not images:
        raise SensoriumError(f"could not read any frame of {str(path)!r}: is it a video?")
    return video, images


def contact_sheet(
    path: Path,
    images: list[np.ndarray],
    versions: list[tuple[str, Video]],
    count: int = 6,
    min_score: float = 0.2,
) -> None:
    """`count` frames spread over the clip, one column per version of their boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    picks = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)
    size = (5 * len(versions), 3.9 * len(picks))
    fig, axes = plt.subplots(len(picks), len(versions), figsize=size, squeeze=False)
    for row, t in enumerate(picks):
        for col, (title, video) in enumerate(versions):
            ax = axes[row][col]
            ax.imshow(images[t])
            boxes, scores = video.boxes[t], video.scores[t]
            shown = scores >= min_score
            for (x1, y1, x2, y2), score in zip(boxes[shown], scores[shown], strict=True):
                colour = plt.cm.viridis(float(score))
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.6, ec=colour))
                ax.text(x1, y1 - 3, f"{score:.2f}", color=colour, fontsize=7)
            ax.set_title(f"{title}, frame {video.frame_ids[t]}: {shown.sum()} boxes", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"boxes scoring {min_score} or more; colour: score (yellow high)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_demo(video_path: Path | None, out: Path, frames: int, settings: SeqNmsSettings) -> dict:
    """Detector, per-frame NMS, Seq-NMS, det.txt files and the contact sheet, in `out`."""
    if not isinstance(frames, int) or frames < 1:
        raise SensoriumError(f"frames {frames!r} must be an integer >= 1")
    video_path = Path(video_path or DEFAULT_VIDEO)
    candidates, images = hog_detections(video_path, frames)
    baseline = per_frame_nms(candidates, settings.suppress_iou, settings.score_floor)
    rescored = rescore_video(candidates, settings)
    out.mkdir(parents=True, exist_ok=True)
    write_mot(out / "candidates.txt", candidates)
    write_mot(out / "per-frame-nms.txt", baseline)
    write_mot(out / "seqnms.txt", rescored)
    contact_sheet(
        out / "contact-sheet.png",
        images,
        [("per-frame NMS", baseline), (f"Seq-NMS ({settings.rescore})", rescored)],
    )
    return {
        "video": str(video_path),
        "frames": candidates.num_frames,
        "candidates": candidates.num_boxes,
        "per_frame_nms": baseline.num_boxes,
        "seqnms": rescored.num_boxes,
    }
