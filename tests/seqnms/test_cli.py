"""`sensorium seqnms rescore | evaluate | simulate | demo` end to end, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sensorium.seqnms.formats import read_mot
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.seqnms.test_formats_and_evaluation import coco_files


@pytest.fixture
def simulated(tmp_path, capsys):
    out = tmp_path / "sim"
    code, printed, _ = run_cli(["seqnms", "simulate", "--out", out, "--noise", "1.5"], capsys)
    assert code == 0 and "TUD-Campus" in printed and "TUD-Stadtmitte" in printed
    return out


def test_simulate_then_evaluate_shows_both_methods(simulated, tmp_path, capsys):
    table = tmp_path / "table.json"
    code, printed, _ = run_cli(
        ["seqnms", "evaluate", simulated, "--gt", simulated, "--both", "--json", table], capsys
    )
    assert code == 0
    for method in ("per-frame NMS", "Seq-NMS (avg)", "Seq-NMS (max)"):
        assert method in printed
    rows = json.loads(table.read_text())
    assert [r["method"] for r in rows] == ["per-frame NMS", "Seq-NMS (avg)", "Seq-NMS (max)"]
    assert all(0.0 <= r["ap50"] <= 1.0 and 0.0 <= r["vid_ap"] <= 1.0 for r in rows)


def test_rescore_a_folder_with_workers_and_a_single_file(simulated, tmp_path, capsys):
    out = tmp_path / "rescored"
    code, printed, _ = run_cli(
        ["seqnms", "rescore", simulated, "--out", out, "--workers", 2], capsys
    )
    assert code == 0 and "2 videos" in printed
    candidates = read_mot(simulated / "TUD-Campus" / "det" / "det.txt")
    kept = read_mot(out / "TUD-Campus" / "det" / "det.txt")
    assert kept.num_frames == candidates.num_frames and kept.num_boxes < candidates.num_boxes
    assert json.loads((out / "seqnms-settings.json").read_text())["link_iou"] == 0.5
    single = tmp_path / "one.txt"
    code, _, _ = run_cli(["seqnms", "rescore", simulated / "TUD-Campus" / "det" / "det.txt",
                          "--out", single, "--rescore", "max"], capsys)  # fmt: skip
    assert code == 0 and read_mot(single).num_boxes == kept.num_boxes
    code, _, err = run_cli(["seqnms", "rescore", simulated, "--out", out], capsys)
    assert_one_line_error(code, err, "already exists", "--force")


def test_rescore_coco_results(tmp_path, capsys):
    ann, res = coco_files(tmp_path)
    out = tmp_path / "rescored.json"
    code, _, _ = run_cli(["seqnms", "rescore", res, "--annotations", ann, "--out", out], capsys)
    assert code == 0
    results = json.loads(out.read_text())
    # The two linked boxes of "street" share their average score; "park" keeps its own.
    scores = {r["image_id"]: r["score"] for r in results}
    assert scores[10] == pytest.approx(0.6) and scores[11] == pytest.approx(0.6)
    assert scores[20] == pytest.approx(0.1)
    code, _, err = run_cli(["seqnms", "rescore", res, "--out", tmp_path / "x.json"], capsys)
    assert_one_line_error(code, err, "--annotations")


def test_bad_input_is_one_line(tmp_path, capsys):
    det = tmp_path / "det.txt"
    cases = [
        ("1,-1,0,0,5,5,0.5\n0.5,0,1\n", "at least 7"),
        ("1,-1,5,0,-2,5,0.5\n", "negative box size"),
        ("1,-1,0,0,5,5,nan\n", "NaN"),
        ("", "empty file"),
    ]
    for text, needle in cases:
        det.write_text(text)
        code, _, err = run_cli(["seqnms", "rescore", det, "--out", tmp_path / "o.txt"], capsys)
        assert_one_line_error(code, err, "det.txt", needle)
    code, _, err = run_cli(["seqnms", "rescore", tmp_path / "missing.txt", "--out",
                            tmp_path / "o.txt"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "do not exist")
    det.write_text("1,-1,0,0,5,5,0.5\n")
    code, _, err = run_cli(["seqnms", "rescore", det, "--out", tmp_path / "o.txt",
                            "--link-iou", "1.5"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "link_iou=1.5")
    code, _, err = run_cli(["seqnms", "rescore", det, "--out", tmp_path / "o.txt",
                            "--workers", "0"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "workers 0")
    code, _, err = run_cli(["seqnms", "evaluate", det, "--gt", tmp_path / "none.txt"], capsys)
    assert_one_line_error(code, err, "does not exist")
    other = tmp_path / "gt.txt"
    other.write_text("5,1,100,100,5,5,1,-1,-1,-1\n")
    code, _, err = run_cli(["seqnms", "evaluate", det, "--gt", other], capsys)
    assert code == 0  # same video, other frames: scored (as zero), not an error


def test_demo_runs_the_hog_detector_on_the_real_street_video(tmp_path, capsys):
    out = tmp_path / "demo"
    code, printed, _ = run_cli(["seqnms", "demo", "--out", out, "--frames", 6], capsys)
    assert code == 0 and "HOG candidates" in printed
    sheet = Image.open(out / "contact-sheet.png")
    assert sheet.size[0] > 600 and sheet.size[1] > 1000
    candidates, kept = read_mot(out / "candidates.txt"), read_mot(out / "seqnms.txt")
    assert kept.num_boxes < candidates.num_boxes
    assert np.all([s.max(initial=0) <= 1 for s in kept.scores])
    code, _, err = run_cli(["seqnms", "demo", "--out", out, "--video", tmp_path / "no.avi",
                            "--force"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "does not exist")


@pytest.mark.parametrize("level", ["-1", "nan", "1e6"])
def test_simulate_refuses_noise_out_of_range(tmp_path, capsys, level):
    code, _, err = run_cli(
        ["seqnms", "simulate", "--out", tmp_path / "s", "--noise", level], capsys
    )
    assert_one_line_error(code, err, "--noise", "expected 0 to 10")
    assert not (tmp_path / "s").exists()


def test_a_huge_frame_number_is_refused_not_allocated(tmp_path, capsys):
    det = tmp_path / "det.txt"
    det.write_text("1000000000,-1,10,10,20,20,0.9\n")
    code, _, err = run_cli(["seqnms", "rescore", det, "--out", tmp_path / "r.txt"], capsys)
    assert_one_line_error(code, err, "frame 1e+09", "more than 10,000,000 frames")
