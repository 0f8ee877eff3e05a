"""Seq-NMS written plainly, one round at a time, for the tests and the benchmark to hold the
fast implementation to.

Every round runs the dynamic programme over the whole video on the boxes still live, takes
the best path, rescores it and suppresses what it overlaps; nothing is carried from one round
to the next but which boxes are live. Ties are broken as `sensorium.seqnms.algorithm`
documents. Only NumPy, one frame at a time.
"""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) against boxes b (K, 4), x1, y1, x2, y2: (N, K)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(union)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def reference_seq_nms(boxes, scores, labels, link_iou, suppress_iou, rescore, score_floor):
    """Per frame, {index of a kept box in that frame's input: its new score}.

    boxes, scores, labels: per frame, arrays (N_t, 4), (N_t,), (N_t,).
    """
    T = len(boxes)
    kept = [{} for _ in range(T)]
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
    scores = [np.asarray(s, dtype=np.float64) for s in scores]
    labels = [np.asarray(lab) for lab in labels]
    for cls in np.unique(np.concatenate(labels)) if T else []:
        index = [np.nonzero((labels[t] == cls) & (scores[t] >= score_floor))[0] for t in range(T)]
        box = [boxes[t][index[t]] for t in range(T)]
        score = [scores[t][index[t]] for t in range(T)]
        live = [np.ones(len(index[t]), dtype=bool) for t in range(T)]
        linked = [None] + [iou_matrix(box[t], box[t - 1]) >= link_iou for t in range(1, T)]
        while any(live[t].any() for t in range(T)):
            # best[t][i]: the best sum of a path of live linked boxes ending at box i of frame
            # t; before[t][i]: the box of frame t - 1 it comes through, or -1.
            best, before = [], []
            for t in range(T):
                extend = np.zeros(len(score[t]))
                via = np.full(len(score[t]), -1)
                if t > 0 and len(score[t - 1]):
                    options = linked[t] & live[t - 1][None, :]  # (N_t, N_{t-1})
                    values = np.where(options, best[t - 1][None, :], -np.inf)
                    has = options.any(axis=1)
                    via = np.where(has, values.argmax(axis=1), -1)  # first maximum: lowest index
                    extend = np.where(has, values.max(axis=1, initial=-np.inf), 0.0)
                best.append(np.where(live[t], score[t] + extend, -np.inf))
                before.append(via)
            tops = [b.max(initial=-np.inf) for b in best]
            t = int(np.argmax(tops))  # the earliest frame among equal sums
            i = int(np.argmax(best[t]))  # the lowest index among equal sums
            path = [(t, i)]
            while before[t][i] >= 0:
                t, i = t - 1, int(before[t][i])
                path.append((t, i))
            path.reverse()
            total = 0.0
            for t, i in path:
                total += score[t][i]
            value = max(score[t][i] for t, i in path) if rescore == "max" else total / len(path)
            for t, i in path:
                kept[t][int(index[t][i])] = value
                live[t][i] = False
                live[t] &= iou_matrix(box[t][i : i + 1], box[t])[0] < suppress_iou
    return kept
