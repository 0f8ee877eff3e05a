"""Seq-NMS over one video: link boxes through time, pick the best-scoring sequences, rescore.

Shape letters: T frames, N_t boxes in frame t, M boxes of one class in the whole video.

Per class, over every candidate box of every frame:

1. link a box in frame t to a box in frame t + 1 where their IoU >= `link_iou`;
2. find the path of linked boxes in consecutive frames with the highest sum of scores
   (a path may start and end in any frame; a box with no live links is a path of one);
3. give every box on it the path's average (or maximum) score and keep it;
4. drop every other live box of those frames whose IoU with the path's box there is
   >= `suppress_iou`; dropped boxes never come back;
5. repeat until every box is either kept or dropped.

Step 2 is a forward dynamic programme: best[m] = score[m] + max(best of m's live linked boxes
in the previous frame, or 0 if it has none). After a path is removed only the frames from the
path's first frame onward can change, and past its last frame only while the values keep
changing, so each round recomputes just that stretch. The rounds run compiled (Numba).

Ties, everywhere the same: the best path is the one with the largest sum; among equal sums the
one that ends in the earliest frame, then at the lowest box index; a box extends the linked box
of the previous frame with the largest best value, the lowest index among equals.

IoU is intersection over union of boxes (x1, y1, x2, y2) in continuous coordinates (no +1
pixel), 0 where the union is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sensorium.common.errors import SensoriumError

RESCORE = ("avg", "max")


@dataclass(frozen=True)
class SeqNmsSettings:
    """Thresholds of Seq-NMS; the defaults are the paper's."""

    link_iou: float = 0.5
    suppress_iou: float = 0.3
    rescore: str = "avg"
    # Boxes scoring below this are not candidates at all (detectors emit many near-zero ones).
    score_floor: float = 0.001

    def __post_init__(self) -> None:
        for name in ("link_iou", "suppress_iou"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise SensoriumError(f"Seq-NMS {name}={value!r} must lie in (0, 1]")
        if self.rescore not in RESCORE:
            raise SensoriumError(f"rescore {self.rescore!r}; expected one of {', '.join(RESCORE)}")
        if not self.score_floor >= 0.0:
            raise SensoriumError(f"score floor {self.score_floor!r} must be >= 0")


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (K, 4): (N, K) float64."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def link_graph(boxes: list[np.ndarray], link_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """For boxes (N_t, 4) per frame, numbered frame by frame, each box's linked boxes in the
    previous frame as CSR arrays: predecessors of box m are idx[ptr[m]:ptr[m + 1]], ascending."""
    counts = [len(b) for b in boxes]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ptr = np.zeros(offsets[-1] + 1, dtype=np.int64)
    chunks = [np.zeros(0, dtype=np.int64)]
    for t in range(1, len(boxes)):
        if counts[t] == 0 or counts[t - 1] == 0:
            continue
        linked = pairwise_iou(boxes[t], boxes[t - 1]) >= link_iou  # (N_t, N_{t-1})
        ptr[offsets[t] + 1 : offsets[t + 1] + 1] = linked.sum(axis=1)
        chunks.append(np.nonzero(linked)[1] + offsets[t - 1])  # row-major: by box, ascending
    np.cumsum(ptr, out=ptr)
    return ptr, np.concatenate(chunks).astype(np.int64)


@njit(cache=True)
def _iou(boxes: np.ndarray, a: int, b: int) -> float:
    w = min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0])
    h = min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1])
    inter = max(w, 0.0) * max(h, 0.0)
    area_a = (boxes[a, 2] - boxes[a, 0]) * (boxes[a, 3] - boxes[a, 1])
    area_b = (boxes[b, 2] - boxes[b, 0]) * (boxes[b, 3] - boxes[b, 1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@njit(cache=True)
def _frame_dp(t, offsets, scores, alive, ptr, idx, best, back, frame_best, frame_arg) -> bool:
    """Recompute best and back for the live boxes of frame t; True if anything changed."""
    changed = False
    top, arg = -np.inf, -1
    for m in range(offsets[t], offsets[t + 1]):
        if not alive[m]:
            continue
        extend, via = 0.0, -1
        for k in range(ptr[m], ptr[m + 1]):
            p = idx[k]
            if alive[p] and (via < 0 or best[p] > extend):
                extend, via = best[p], p
        value = scores[m] + extend
        if value != best[m] or via != back[m]:
            changed = True
        best[m], back[m] = value, via
        if value > top:
            top, arg = value, m
    frame_best[t], frame_arg[t] = top, arg
    return changed


@njit(cache=True)
def _select(boxes, scores, frames, offsets, ptr, idx, suppress_iou, rescore_max):
    """All rounds of Seq-NMS for one class. Returns new scores (M,), NaN where dropped."""
    M = scores.shape[0]
    T = offsets.shape[0] - 1
    alive = np.ones(M, dtype=np.bool_)
    best = np.full(M, np.nan)
    back = np.full(M, -2, dtype=np.int64)
    frame_best = np.full(T, -np.inf)
    frame_arg = np.full(T, -1, dtype=np.int64)
    out = np.full(M, np.nan)
    path = np.empty(T, dtype=np.int64)
    for t in range(T):
        _frame_dp(t, offsets, scores, alive, ptr, idx, best, back, frame_best, frame_arg)
    remaining = M
    while remaining > 0:
        end_frame = 0
        for t in range(1, T):  # strict >: the earliest frame among equal sums
            if frame_best[t] > frame_best[end_frame]:
                end_frame = t
        m = frame_arg[end_frame]
        length = 0
        while m >= 0:  # back-track to the path's first box
            path[length] = m
            length += 1
            m = back[m]
        total, top = 0.0, -np.inf
        for k in range(length - 1, -1, -1):  # first frame first: the sum the DP made
            total += scores[path[k]]
            top = max(top, scores[path[k]])
        value = top if rescore_max else total / length
        for k in range(length):
            kept = path[k]
            out[kept] = value
            alive[kept] = False
            remaining -= 1
            t = frames[kept]
            for other in range(offsets[t], offsets[t + 1]):
                if alive[other] and _iou(boxes, kept, other) >= suppress_iou:
                    alive[other] = False
                    remaining -= 1
        first, last = frames[path[length - 1]], frames[path[0]]
        for t in range(first, T):
            changed = _frame_dp(t, offsets, scores, alive, ptr, idx, best, back, frame_best,
                                frame_arg)  # fmt: skip
            if t > last and not changed:
                break
    return out


@dataclass
class FrameResult:
    """What Seq-NMS keeps of one frame: indices into that frame's input boxes, ascending, and
    their new scores."""

    keep: np.ndarray  # (K,) int64
    scores: np.ndarray  # (K,) float64


def seq_nms(
    boxes: list,
    scores: list,
    labels: list | None = None,
    settings: SeqNmsSettings | None = None,
) -> list[FrameResult]:
    """Seq-NMS over one video.

    Args:
        boxes: per frame, (N_t, 4) boxes as x1, y1, x2, y2 (any consistent unit, e.g. pixels);
            NumPy arrays or torch tensors; a frame may have no boxes.
        scores: per frame, (N_t,) scores >= 0 (pre-NMS detection scores).
        labels: per frame, (N_t,) integer classes; None for one class. Classes never link to
            or suppress each other.
        settings: thresholds and rescoring; the paper's defaults if None.

    Returns:
        Per frame, the kept boxes' indices (ascending) and new scores. Boxes below the score
        floor and boxes suppressed by a path are not kept. Ties are broken as the module
        docstring says.
    """
    settings = settings or SeqNmsSettings()
    frames = _as_video(boxes, scores, labels)
    kept = [([], []) for _ in frames]
    classes = np.unique(np.concatenate([f[2] for f in frames])) if frames else []
    for cls in classes:
        # The class's candidates, frame by frame, and where each sits in its frame's input.
        chosen = [np.nonzero((f[2] == cls) & (f[1] >= settings.score_floor))[0] for f in frames]
        class_boxes = [f[0][c] for f, c in zip(frames, chosen, strict=True)]
        if sum(len(c) for c in chosen) == 0:
            continue
        ptr, idx = link_graph(class_boxes, settings.link_iou)
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in chosen])]).astype(np.int64)
        frame_of = np.repeat(np.arange(len(frames)), np.diff(offsets)).astype(np.int64)
        new = _select(
            np.ascontiguousarray(np.concatenate(class_boxes)),
            np.concatenate([f[1][c] for f, c in zip(frames, chosen, strict=True)]),
            frame_of,
            offsets,
            ptr,
            idx,
            float(settings.suppress_iou),
            settings.rescore == "max",
        )
        for t, c in enumerate(chosen):
            part = new[offsets[t] : offsets[t + 1]]
            mask = ~np.isnan(part)
            kept[t][0].append(c[mask])
            kept[t][1].append(part[mask])
    results = []
    for index, value in kept:
        index = np.concatenate(index) if index else np.zeros(0, dtype=np.int64)
        value = np.concatenate(value) if value else np.zeros(0)
        order = np.argsort(index, kind="stable")
        results.append(FrameResult(index[order].astype(np.int64), value[order]))
    return results


def _as_video(boxes, scores, labels) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Check and convert per-frame inputs to float64 boxes (N, 4), scores (N,), labels (N,)."""
    if len(boxes) != len(scores) or (labels is not None and len(labels) != len(boxes)):
        raise SensoriumError(
            f"{len(boxes)} frames of boxes, {len(scores)} of scores"
            + ("" if labels is None else f", {len(labels)} of labels")
            + "; expected the same number"
        )
    frames = []
    for t, (b, s) in enumerate(zip(boxes, scores, strict=True)):
        b = _numpy(b, np.float64)
        if b.size == 0:
            b = np.zeros((0, 4))
        if b.ndim != 2 or b.shape[1] != 4:
            raise SensoriumError(f"frame {t}: boxes of shape {b.shape}; expected (N, 4)")
        s = _numpy(s, np.float64).reshape(-1)
        lab = (
            np.zeros(len(s), dtype=np.int64)
            if labels is None
            else _numpy(labels[t], np.int64).reshape(-1)
        )
        if not len(b) == len(s) == len(lab):
            raise SensoriumError(
                f"frame {t}: {len(b)} boxes, {len(s)} scores, {len(lab)} labels; expected equal"
            )
        if not np.isfinite(b).all():
            raise SensoriumError(f"frame {t}: a box coordinate is NaN or infinite")
        if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise SensoriumError(
                f"frame {t}: a box has x2 < x1 or y2 < y1; expected x1, y1, x2, y2"
            )
        if not (np.isfinite(s) & (s >= 0)).all():
            raise SensoriumError(f"frame {t}: a score is negative, NaN or infinite")
        frames.append((b, s, lab))
    return frames


def _numpy(value, dtype=None) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)
