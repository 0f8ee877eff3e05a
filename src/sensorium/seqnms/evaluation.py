"""What Seq-NMS gains: per-frame NMS against Seq-NMS, scored by COCO AP and ImageNet VID AP.

Shape letters: N boxes of a frame, G ground-truth boxes, D detections.

- COCO AP (IoU 0.5:0.95) and AP50 come from pycocotools, the reference COCO evaluation.
- VID AP follows the ImageNet VID devkit: a detection matches an unmatched ground-truth box
  of its class at IoU >= min(0.5, w h / ((w + 10) (h + 10))) for a ground-truth box of w x h
  pixels (small objects get a looser threshold), detections taken best score first, and AP is
  the area under the precision envelope over all recall points (VOC style); the mean is over
  classes.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.algorithm import SeqNmsSettings, pairwise_iou, seq_nms
from sensorium.seqnms.formats import Video

logger = logging.getLogger(__name__)

VID_PIXEL_TOLERANCE = 10.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index).

    A box is dropped when its IoU with a kept, better box is >= `iou`.
    """
    order = np.argsort(-scores, kind="stable")
    overlap = pairwise_iou(boxes[order], boxes[order])
    keep = np.ones(len(order), dtype=bool)
    for k in range(len(order)):
        if keep[k]:
            keep[k + 1 :] &= overlap[k, k + 1 :] < iou
    return order[keep]


def _subset(video: Video, picks: list[np.ndarray], scores: list[np.ndarray] | None) -> Video:
    return Video(
        video.name,
        [b[p] for b, p in zip(video.boxes, picks, strict=True)],
        [s[p] for s, p in zip(video.scores, picks, strict=True)] if scores is None else scores,
        [lab[p] for lab, p in zip(video.labels, picks, strict=True)],
        list(video.frame_ids),
        list(video.image_ids),
    )


def per_frame_nms(video: Video, iou: float = 0.3, score_floor: float = 0.001) -> Video:
    """The baseline: NMS in every frame and class on its own."""
    picks = []
    for boxes, scores, labels in zip(video.boxes, video.scores, video.labels, strict=True):
        kept = []
        for cls in np.unique(labels):
            idx = np.nonzero((labels == cls) & (scores >= score_floor))[0]
            kept.append(idx[nms(boxes[idx], scores[idx], iou)])
        picks.append(np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64))
    return _subset(video, picks, None)


def rescore_video(video: Video, settings: SeqNmsSettings) -> Video:
    """Seq-NMS over one video: only the kept boxes, with their new scores."""
    results = seq_nms(video.boxes, video.scores, video.labels, settings)
    return _subset(video, [r.keep for r in results], [r.scores for r in results])


# --------------------------------------------------------------------------------------------
# Scoring against ground truth
# --------------------------------------------------------------------------------------------
def _frames(videos: list[Video]) -> dict[tuple[str, int], tuple[np.ndarray, ...]]:
    return {
        (v.name, f): (b, s, lab)
        for v in videos
        for f, b, s, lab in zip(v.frame_ids, v.boxes, v.scores, v.labels, strict=True)
    }


def _paired(detections: list[Video], truth: list[Video]):
    dets, gts = _frames(detections), _frames(truth)
    if not set(dets) & set(gts):
        raise SensoriumError(
            "the detections and the ground truth share no frames: check that they describe "
            "the same videos (names and frame numbers)"
        )
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    keys = sorted(set(gts) | set(dets))
    return keys, [dets.get(k, empty) for k in keys], [gts.get(k, empty) for k in keys]


def coco_ap(detections: list[Video], truth: list[Video]) -> dict[str, float]:
    """COCO AP (0.5:0.95) and AP50 from pycocotools, over all frames of all videos."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    keys, dets, gts = _paired(detections, truth)
    classes = sorted(
        {int(c) for _, _, lab in gts for c in lab} | {int(c) for _, _, lab in dets for c in lab}
    )
    annotations, results = [], []
    for image, ((gb, _, gl), (db, ds, dl)) in enumerate(zip(gts, dets, strict=True), start=1):
        for box, label in zip(gb, gl, strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image, "category_id": int(label),
                 "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for box, score, label in zip(db, ds, dl, strict=True):
            results.append(
                {"image_id": image, "category_id": int(label), "score": float(score),
                 "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]}
            )  # fmt: skip
    if not results:
        return {"ap": 0.0, "ap50": 0.0}
    truth_set = COCO()
    truth_set.dataset = {
        "images": [{"id": i} for i in range(1, len(keys) + 1)],
        "categories": [{"id": c} for c in classes],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth_set.createIndex()
        evaluation = COCOeval(truth_set, truth_set.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"ap": float(evaluation.stats[0]), "ap50": float(evaluation.stats[1])}


def vid_ap(detections: list[Video], truth: list[Video]) -> dict[str, float]:
    """ImageNet VID AP per class and their mean, as the module docstring describes."""
    _, dets, gts = _paired(detections, truth)
    classes = sorted({int(c) for _, _, lab in gts for c in lab})
    per_class = {}
    for cls in classes:
        # Every detection of the class: (score, frame, index); ground truth per frame.
        entries, truth_boxes, total = [], [], 0
        for frame, ((gb, _, gl), (db, ds, dl)) in enumerate(zip(gts, dets, strict=True)):
            truth_boxes.append(gb[gl == cls])
            total += int((gl == cls).sum())
            for k in np.nonzero(dl == cls)[0]:
                entries.append((-float(ds[k]), frame, db[k]))
        entries.sort(key=lambda e: e[:2])
        matched = [np.zeros(len(g), dtype=bool) for g in truth_boxes]
        hits = np.zeros(len(entries))
        for n, (_, frame, box) in enumerate(entries):
            g = truth_boxes[frame]
            if not len(g):
                continue
            w, h = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
            needed = np.minimum(
                0.5, w * h / ((w + VID_PIXEL_TOLERANCE) * (h + VID_PIXEL_TOLERANCE))
            )
            overlap = pairwise_iou(box[None], g)[0]
            overlap[matched[frame] | (overlap < needed)] = -1.0
            best = int(np.argmax(overlap))
            if overlap[best] >= 0:
                matched[frame][best] = True
                hits[n] = 1
        per_class[cls] = _area_under_envelope(hits, total)
    mean = float(np.mean(list(per_class.values()))) if per_class else 0.0
    return {"ap": mean, "per_class": per_class}


def _area_under_envelope(hits: np.ndarray, positives: int) -> float:
    """VOC all-point AP of detections in score order (1 = true positive)."""
    if positives == 0:
        return 0.0
    tp = np.cumsum(hits)
    recall = tp / positives
    precision = tp / np.arange(1, len(hits) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def compare(
    detections: list[Video],
    truth: list[Video],
    settings: SeqNmsSettings,
    nms_iou: float = 0.3,
    rescore: tuple[str, ...] = ("avg",),
) -> list[dict]:
    """COCO AP, AP50 and VID AP for per-frame NMS and for Seq-NMS, one row per method."""
    rows = []
    methods = [("per-frame NMS", lambda v: per_frame_nms(v, nms_iou, settings.score_floor))]
    for mode in rescore:
        chosen = SeqNmsSettings(
            settings.link_iou, settings.suppress_iou, mode, settings.score_floor
        )
        methods.append((f"Seq-NMS ({mode})", lambda v, s=chosen: rescore_video(v, s)))
    for name, method in methods:
        processed = [method(v) for v in detections]
        row = {
            "method": name,
            **coco_ap(processed, truth),
            "vid_ap": vid_ap(processed, truth)["ap"],
        }
        row["boxes_per_frame"] = sum(v.num_boxes for v in processed) / max(
            1, sum(v.num_frames for v in processed)
        )
        rows.append(row)
    return rows
