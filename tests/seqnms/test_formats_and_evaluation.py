"""Reading and writing detection files, the baseline NMS, and the AP figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sensorium.common.errors import SensoriumError
from sensorium.seqnms.algorithm import SeqNmsSettings
from sensorium.seqnms.evaluation import coco_ap, compare, nms, per_frame_nms, vid_ap
from sensorium.seqnms.formats import (
    Video,
    coco_ground_truth,
    coco_results,
    read_coco_detections,
    read_coco_videos,
    read_mot,
    write_mot,
)
from sensorium.seqnms.simulate import DetectorNoise, simulate_detections, tud_ground_truth


def one_frame_video(boxes, scores, name="v") -> Video:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return Video(name, [boxes], [np.asarray(scores, float)], [np.zeros(len(boxes), int)], [1],
                 [None])  # fmt: skip


def test_mot_round_trip(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n3,-1,0,0,5,5,0.5,-1,-1,-1\n")
    video = read_mot(path)
    assert video.num_frames == 3 and [len(s) for s in video.scores] == [1, 0, 1]
    np.testing.assert_allclose(video.boxes[0], [[10, 20, 40, 60]])
    out = tmp_path / "out.txt"
    write_mot(out, video)
    again = read_mot(out)
    for a, b in zip(video.boxes, again.boxes, strict=True):
        np.testing.assert_allclose(a, b)


def test_mot_ground_truth_keeps_targets_only(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,1,0,0,10,10,1,1,1.0\n"  # MOT16 row: a pedestrian
        "1,2,20,0,10,10,0,1,1.0\n"  # conf 0: not a target
        "1,3,40,0,10,10,1,7,1.0\n"  # class 7: not a pedestrian
    )
    assert read_mot(path, ground_truth=True).track_ids[0].tolist() == [1]
    mot15 = tmp_path / "mot15.txt"
    mot15.write_text("1,4,0,0,10,10,1,4.48,5.50,0\n")  # ten fields: world coordinates
    assert read_mot(mot15, ground_truth=True).num_boxes == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "holds no MOTChallenge rows"),
        ("1,-1,0,0,5,5\n", "at least 7"),
        ("1,-1,0,0,five,5,0.9\n", "not comma-separated numbers"),
        ("1,-1,0,0,-5,5,0.9\n", "negative box size"),
        ("1,-1,0,0,5,5,nan\n", "NaN"),
        ("1,-1,0,0,5,5,-0.2\n", "negative score"),
        ("2,-1,0,0,5,5,0.2\n1,-1,0,0,5,5,0.2\n", "out of order"),
        ("0,-1,0,0,5,5,0.2\n", "frames are whole numbers from 1"),
    ],
)
def test_bad_mot_files_name_the_file_and_line(tmp_path, text, needle):
    path = tmp_path / "det.txt"
    path.write_text(text)
    with pytest.raises(SensoriumError, match=needle) as error:
        read_mot(path)
    assert "det.txt" in str(error.value)


def coco_files(tmp_path):
    annotations = {
        "videos": [{"id": 1, "name": "street"}, {"id": 2, "name": "park"}],
        "images": [
            {"id": 10, "video_id": 1, "frame_id": 1},
            {"id": 11, "video_id": 1, "frame_id": 0},
            {"id": 20, "video_id": 2, "frame_id": 0},
        ],
        "categories": [{"id": 3, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 3, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [1, 0, 10, 10]},
        ],
    }
    results = [
        {"image_id": 11, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.8},
        {"image_id": 10, "category_id": 3, "bbox": [1, 0, 10, 10], "score": 0.4},
        {"image_id": 20, "category_id": 3, "bbox": [5, 5, 10, 10], "score": 0.1},
    ]
    ann, res = tmp_path / "ann.json", tmp_path / "res.json"
    ann.write_text(json.dumps(annotations))
    res.write_text(json.dumps(results))
    return ann, res


def test_coco_videos_come_in_frame_order_and_round_trip(tmp_path):
    ann, res = coco_files(tmp_path)
    coco = read_coco_videos(ann)
    videos = read_coco_detections(res, coco)
    assert [v.name for v in videos] == ["street", "park"]
    assert videos[0].image_ids == [11, 10]  # frame 0 first
    np.testing.assert_allclose(videos[0].scores[0], [0.8])
    back = coco_results(videos)
    assert {r["image_id"] for r in back} == {10, 11, 20}
    assert coco_ground_truth(coco)[0].num_boxes == 2


@pytest.mark.parametrize(
    ("results", "needle"),
    [
        ("[", "not valid JSON"),
        ("[]", "holds no detections"),
        ('{"a": 1}', "not a COCO results list"),
        ('[{"image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.5}]', "image_id 99"),
        (
            '[{"image_id": 10, "category_id": 3, "bbox": [0, 0, -1, 1], "score": 0.5}]',
            "negative box",
        ),
        ('[{"image_id": 10, "category_id": 3, "bbox": [0, 0, 1, 1], "score": -1}]', "score -1"),
        ('[{"image_id": 10, "bbox": [0, 0, 1, 1], "score": 0.5}]', "needs image_id"),
    ],
)
def test_bad_coco_results_are_reported(tmp_path, results, needle):
    ann, res = coco_files(tmp_path)
    res.write_text(results)
    with pytest.raises(SensoriumError, match=needle):
        read_coco_detections(res, read_coco_videos(ann))


def test_bad_coco_annotations_are_reported(tmp_path):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "frame_id": 0}]}))
    with pytest.raises(SensoriumError, match="video_id"):
        read_coco_videos(ann)
    twice = [{"id": 1, "video_id": 1, "frame_id": 0}, {"id": 2, "video_id": 1, "frame_id": 0}]
    ann.write_text(json.dumps({"images": twice}))
    with pytest.raises(SensoriumError, match="both frame 0"):
        read_coco_videos(ann)
    ann.write_text(json.dumps([1, 2]))
    with pytest.raises(SensoriumError, match="no 'images' list"):
        read_coco_videos(ann)


def test_nms_keeps_the_best_of_each_cluster():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10.0]])
    scores = np.array([0.5, 0.9, 0.3, 0.5])
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    video = per_frame_nms(one_frame_video(boxes, scores))
    assert video.scores[0].tolist() == [0.9, 0.3]


def test_ap_is_one_for_perfect_detections_and_falls_with_false_ones():
    truth = one_frame_video([[0, 0, 50, 50], [100, 100, 150, 150]], [1, 1])
    perfect = one_frame_video([[0, 0, 50, 50], [100, 100, 150, 150]], [0.9, 0.8])
    assert vid_ap([perfect], [truth])["ap"] == pytest.approx(1.0)
    assert coco_ap([perfect], [truth])["ap50"] == pytest.approx(1.0)
    # A confident false box ranked first: precision 1/2 at the first true box, then 2/3; the
    # envelope takes the best precision at any higher recall, 2/3, for both halves.
    worse = one_frame_video([[300, 300, 350, 350], [0, 0, 50, 50], [100, 100, 150, 150]],
                            [0.95, 0.9, 0.8])  # fmt: skip
    assert vid_ap([worse], [truth])["ap"] == pytest.approx(2 / 3)


def test_vid_ap_loosens_the_threshold_for_small_objects():
    truth = one_frame_video([[0, 0, 10, 10]], [1])  # 10x10: threshold 100 / 400 = 0.25
    shifted = one_frame_video([[4, 0, 14, 10]], [0.9])  # IoU 6 / 14 = 0.43 < 0.5
    assert vid_ap([shifted], [truth])["ap"] == pytest.approx(1.0)
    assert coco_ap([shifted], [truth])["ap50"] == pytest.approx(0.0)


def test_seqnms_helps_a_noisy_simulated_detector_on_real_tracks():
    truth = tud_ground_truth("TUD-Campus")
    assert (truth.num_frames, truth.num_boxes) == (71, 359)
    detections = simulate_detections(truth, DetectorNoise().scaled(2.0), seed=0)
    assert 40 < detections.num_boxes / detections.num_frames < 150
    rows = compare([detections], [truth], SeqNmsSettings(), rescore=("avg", "max"))
    baseline, avg, top = rows
    assert avg["ap50"] > baseline["ap50"] + 0.02 and top["ap50"] > baseline["ap50"] + 0.02
    # Both suppress duplicates: a handful of boxes a frame remain, not the 80-odd candidates.
    assert baseline["boxes_per_frame"] < 40 and avg["boxes_per_frame"] < 40


def test_simulation_is_seeded():
    truth = tud_ground_truth("TUD-Stadtmitte")
    a = simulate_detections(truth, DetectorNoise(), seed=3)
    b = simulate_detections(truth, DetectorNoise(), seed=3)
    c = simulate_detections(truth, DetectorNoise(), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.scores, b.scores, strict=True))
    assert not all(
        len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a.scores, c.scores, strict=True)
    )
