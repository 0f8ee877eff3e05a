"""The fast Seq-NMS against the plain reference, and the behaviour the paper asks for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.algorithm import SeqNmsSettings, pairwise_iou, seq_nms
from tests.seqnms.reference import iou_matrix, reference_seq_nms


def random_video(rng: np.random.Generator, frames: int, classes: int, thresholds=(0.5, 0.3)):
    """Boxes that move a little from frame to frame (so they link), duplicates, strays, empty
    frames, and pairs placed just either side of each IoU threshold."""
    tracks = rng.uniform(0, 80, size=(rng.integers(1, 5), 2))
    boxes, scores, labels = [], [], []
    for _ in range(frames):
        frame = []
        if rng.random() > 0.15:  # some frames have no boxes at all
            for x, y in tracks:
                if rng.random() < 0.8:
                    for _ in range(rng.integers(1, 4)):  # pre-NMS duplicates
                        w, h = rng.uniform(8, 20, size=2)
                        jx, jy = rng.normal(0, 1.5, size=2)
                        frame.append([x + jx, y + jy, x + jx + w, y + jy + h])
            for _ in range(rng.integers(0, 3)):  # strays
                x, y = rng.uniform(0, 90, size=2)
                frame.append([x, y, x + rng.uniform(2, 15), y + rng.uniform(2, 15)])
            for thr in thresholds:  # a pair either side of a threshold, 10 units wide
                x, y = rng.uniform(0, 80, size=2)
                shift = 10 * (1 - thr) / (1 + thr) + rng.choice([-1e-9, 1e-9])
                frame += [[x, y, x + 10, y + 10], [x + shift, y, x + shift + 10, y + 10]]
        tracks = tracks + rng.normal(0, 1.0, size=tracks.shape)
        boxes.append(np.array(frame, dtype=np.float64).reshape(-1, 4))
        scores.append(rng.uniform(0, 1, size=len(frame)).round(rng.choice([2, 6])))
        labels.append(rng.integers(0, classes, size=len(frame)))
    return boxes, scores, labels


def assert_same_as_reference(boxes, scores, labels, settings: SeqNmsSettings) -> int:
    fast = seq_nms(boxes, scores, labels, settings)
    expected = reference_seq_nms(
        boxes,
        scores,
        labels,
        settings.link_iou,
        settings.suppress_iou,
        settings.rescore,
        settings.score_floor,
    )
    for t, (result, want) in enumerate(zip(fast, expected, strict=True)):
        assert result.keep.tolist() == sorted(want), f"frame {t}"
        # Same sums in the same order in both: equal to the last bit, but allow rounding.
        np.testing.assert_allclose(result.scores, [want[i] for i in sorted(want)], rtol=1e-12)
    return sum(len(r.keep) for r in fast)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rescore", ["avg", "max"])
def test_fast_equals_reference_on_random_videos(seed, rescore):
    rng = np.random.default_rng(seed)
    link, suppress = [(0.5, 0.3), (0.3, 0.5), (0.7, 0.2), (0.5, 0.5)][seed % 4]
    settings = SeqNmsSettings(link, suppress, rescore, score_floor=[0.0, 0.05][seed % 2])
    kept = 0
    for _ in range(4):
        video = random_video(
            rng, int(rng.integers(1, 14)), int(rng.integers(1, 4)), (link, suppress)
        )
        kept += assert_same_as_reference(*video, settings)
    assert kept > 10  # the videos are not trivially empty


def test_ties_are_broken_alike():
    """Equal scores everywhere: only the documented tie rules decide."""
    rng = np.random.default_rng(5)
    boxes, _, labels = random_video(rng, 8, 1)
    scores = [np.full(len(b), 0.5) for b in boxes]
    assert_same_as_reference(boxes, scores, labels, SeqNmsSettings())


def test_a_track_is_rescored_and_its_duplicates_dropped():
    box = np.array([[10.0, 10, 30, 30]])
    dup = np.array([[11.0, 10, 31, 30]])  # IoU 0.9 with box: a pre-NMS duplicate
    far = np.array([[60.0, 60, 70, 70]])
    boxes = [box, np.concatenate([box, dup]), np.concatenate([box, far])]
    scores = [np.array([0.9]), np.array([0.3, 0.25]), np.array([0.6, 0.95])]
    avg = seq_nms(boxes, scores)
    assert [r.keep.tolist() for r in avg] == [[0], [0], [0, 1]]
    np.testing.assert_allclose(avg[1].scores, [0.6])  # (0.9 + 0.3 + 0.6) / 3
    np.testing.assert_allclose(avg[2].scores, [0.6, 0.95])  # the lone box keeps its score
    top = seq_nms(boxes, scores, settings=SeqNmsSettings(rescore="max"))
    np.testing.assert_allclose(top[1].scores, [0.9])


def test_a_lone_high_box_does_not_end_the_loop():
    lone = np.array([[0.0, 0, 10, 10]])
    track = np.array([[50.0, 50, 60, 60]])
    boxes = [np.concatenate([lone, track]), track, track]
    scores = [np.array([0.99, 0.2]), np.array([0.2]), np.array([0.2])]
    result = seq_nms(boxes, scores)
    assert result[0].keep.tolist() == [0, 1] and result[2].keep.tolist() == [0]
    np.testing.assert_allclose(result[0].scores, [0.99, 0.2])


def test_classes_never_link_or_suppress_each_other():
    box = np.array([[0.0, 0, 10, 10]])
    boxes = [np.concatenate([box, box])] * 3
    scores = [np.array([0.9, 0.1])] * 3
    labels = [np.array([0, 1])] * 3
    result = seq_nms(boxes, scores, labels)
    assert all(r.keep.tolist() == [0, 1] for r in result)
    np.testing.assert_allclose(result[1].scores, [0.9, 0.1])


def test_kept_boxes_of_a_class_never_overlap_past_the_suppression_threshold():
    rng = np.random.default_rng(1)
    boxes, scores, labels = random_video(rng, 20, 2)
    settings = SeqNmsSettings(suppress_iou=0.3)
    for t, result in enumerate(seq_nms(boxes, scores, labels, settings)):
        kept = boxes[t][result.keep]
        same = labels[t][result.keep][:, None] == labels[t][result.keep][None, :]
        overlap = pairwise_iou(kept, kept)
        np.fill_diagonal(overlap, 0)
        assert not (overlap[same] >= 0.3).any()


def test_empty_frames_single_frames_and_empty_videos():
    assert seq_nms([], []) == []
    empty = seq_nms([np.zeros((0, 4))], [np.zeros(0)])
    assert empty[0].keep.size == 0
    one = seq_nms([np.array([[0.0, 0, 5, 5], [1, 0, 6, 5]])], [np.array([0.4, 0.8])])
    assert one[0].keep.tolist() == [1]  # plain NMS within the frame
    below = seq_nms([np.array([[0.0, 0, 5, 5]])], [np.array([0.0001])])
    assert below[0].keep.size == 0  # under the score floor


def test_torch_tensors_are_accepted():
    boxes = [torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[1.0, 0, 11, 10]])]
    scores = [torch.tensor([0.5]), torch.tensor([0.7])]
    result = seq_nms(boxes, scores, [torch.tensor([3]), torch.tensor([3])])
    np.testing.assert_allclose(result[0].scores, [0.6])


def test_bad_input_is_refused():
    good = np.array([[0.0, 0, 1, 1]])
    cases = [
        (([good], [np.array([0.5, 0.2])]), "1 boxes, 2 scores"),
        (([np.array([[2.0, 0, 1, 1]])], [np.array([0.5])]), "x2 < x1"),
        (([good], [np.array([np.nan])]), "NaN"),
        (([good], [np.array([-0.1])]), "negative"),
        (([np.zeros((1, 5))], [np.array([0.5])]), "expected (N, 4)"),
        (([good, good], [np.array([0.5])]), "same number"),
    ]
    for args, needle in cases:
        with pytest.raises(SensoriumError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            seq_nms(*args)
    with pytest.raises(SensoriumError, match="rescore"):
        SeqNmsSettings(rescore="mean")
    with pytest.raises(SensoriumError, match="link_iou"):
        SeqNmsSettings(link_iou=0.0)


def test_iou_equals_the_reference_and_a_hand_count():
    rng = np.random.default_rng(0)
    corner, size = rng.uniform(0, 10, (20, 2)), rng.uniform(0, 5, (20, 2))
    a = np.concatenate([corner, corner + size], axis=1)  # (20, 4) as x1, y1, x2, y2
    b = a[::-1].copy()
    np.testing.assert_array_equal(pairwise_iou(a, b), iou_matrix(a, b))
    square = np.array([[0.0, 0, 2, 2]])
    shifted = np.array([[1.0, 1, 3, 3], [5, 5, 6, 6], [1, 1, 1, 1]])
    np.testing.assert_allclose(pairwise_iou(square, shifted), [[1 / 7, 0.0, 0.0]])


def test_equal_path_sums_take_the_earlier_end_frame():
    """Two paths of equal sum that conflict: the one ending earlier goes first and suppresses."""

    def box(x):
        return [x, 0.0, x + 10, 10]

    # a2 and b2 overlap at IoU 6/14 (suppressed at 0.3, not linked at 0.5); b3 links b2 only.
    boxes = [np.array([box(0)]), np.array([box(0), box(4)]), np.array([box(4)])]
    scores = [np.array([0.5]), np.array([0.5, 0.5]), np.array([0.5])]
    result = seq_nms(boxes, scores)
    assert [r.keep.tolist() for r in result] == [[0], [0], [0]]  # b2 (frame 1, box 1) dropped
    assert_same_as_reference(boxes, scores, [np.zeros(len(b), int) for b in boxes],
                             SeqNmsSettings())  # fmt: skip


def test_thresholds_are_inclusive():
    # IoU exactly 0.5 (inter 2, union 4) links; exactly 0.3 (inter 3, union 10) suppresses.
    link = [np.array([[0.0, 0, 3, 1]]), np.array([[1.0, 0, 4, 1]])]
    result = seq_nms(link, [np.array([0.2]), np.array([0.8])])
    np.testing.assert_allclose([r.scores[0] for r in result], [0.5, 0.5])
    same_frame = [np.array([[0.0, 0, 6.5, 1], [3.5, 0, 10, 1]])]
    assert pairwise_iou(same_frame[0][:1], same_frame[0][1:])[0, 0] == 0.3
    assert seq_nms(same_frame, [np.array([0.9, 0.4])])[0].keep.tolist() == [0]
