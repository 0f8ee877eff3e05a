"""`sensorium seqnms rescore | evaluate | simulate | demo`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from sensorium.common.cli_options import add_system
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_writable
from sensorium.seqnms.algorithm import RESCORE, SeqNmsSettings


def register(systems: argparse._SubParsersAction) -> None:
    add_system(
        systems,
        "seqnms",
        "Seq-NMS: rescore video detections through time",
        [_add_rescore, _add_evaluate, _add_simulate, _add_demo],
    )


def _add_settings(p) -> None:
    defaults = SeqNmsSettings()
    p.add_argument("--link-iou", type=float, default=defaults.link_iou,
                   help="link boxes of consecutive frames at IoU >= this")  # fmt: skip
    p.add_argument("--suppress-iou", type=float, default=defaults.suppress_iou,
                   help="drop boxes overlapping a selected path's box at IoU >= this")  # fmt: skip
    p.add_argument("--rescore", default=defaults.rescore, choices=RESCORE)
    p.add_argument("--score-floor", type=float, default=defaults.score_floor,
                   help="boxes scoring below this are not candidates")  # fmt: skip


def _settings(args) -> SeqNmsSettings:
    return SeqNmsSettings(args.link_iou, args.suppress_iou, args.rescore, args.score_floor)


DETECTIONS_HELP = (
    "a MOTChallenge det.txt, a folder of MOTChallenge sequences (SEQUENCE/det/det.txt), or a "
    "COCO results JSON (with --annotations)"
)


# --------------------------------------------------------------------------------------------
# rescore
# --------------------------------------------------------------------------------------------
def _add_rescore(verbs) -> None:
    p = verbs.add_parser(
        "rescore",
        help="Seq-NMS on detection files: MOTChallenge det.txt or COCO-style JSON",
        description="Rescore pre-NMS detections with Seq-NMS and write the kept boxes in the "
        "input's format: a det.txt, a folder of sequences, or a COCO results JSON. The "
        "settings used are written beside the output.",
    )
    p.add_argument("detections", help=DETECTIONS_HELP)
    p.add_argument("--out", required=True, help="output file (or folder, for a folder input)")
    p.add_argument(
        "--annotations",
        default=None,
        help="COCO-style annotation file with videos and images (video_id, frame_id)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes over many videos")
    _add_settings(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_rescore)


def _rescore(args) -> int:
    from sensorium.seqnms.batch import (
        output_paths,
        read_detections,
        rescore_all,
        settings_path,
        write_detections,
    )

    setup_logging()
    settings = _settings(args)
    detections = read_detections(Path(args.detections), _path(args.annotations))
    paths = output_paths(detections, Path(args.out))
    record = settings_path(detections, Path(args.out))
    for path in [*paths, record]:
        check_writable(path, args.force)
    with tqdm(total=len(detections.videos), desc="Seq-NMS", unit="video", delay=0.5) as bar:
        videos = rescore_all(detections.videos, settings, args.workers, bar.update)
    write_detections(detections, videos, paths)
    record.write_text(json.dumps({"detections": args.detections, **asdict(settings)}, indent=2))
    before = sum(v.num_boxes for v in detections.videos)
    after = sum(v.num_boxes for v in videos)
    frames = sum(v.num_frames for v in videos)
    print(
        f"{len(videos)} videos, {frames} frames: {before} candidate boxes, {after} kept "
        f"({after / max(frames, 1):.1f} a frame); wrote {args.out}"
    )
    return 0


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------
def _add_evaluate(verbs) -> None:
    p = verbs.add_parser(
        "evaluate",
        help="COCO AP, AP50 and ImageNet VID AP of per-frame NMS and Seq-NMS side by side",
    )
    p.add_argument("detections", help="pre-NMS detections: " + DETECTIONS_HELP)
    p.add_argument("--gt", required=True,
                   help="ground truth: a MOTChallenge gt.txt, a folder of sequences "
                   "(SEQUENCE/gt/gt.txt), or the COCO-style annotation file")  # fmt: skip
    p.add_argument("--nms-iou", type=float, default=0.3, help="IoU of the per-frame NMS baseline")
    _add_settings(p)
    p.add_argument("--both", action="store_true", help="score Seq-NMS with avg and max rescoring")
    p.add_argument("--json", default=None, help="also write the table here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json")
    p.set_defaults(run=_evaluate)


def _evaluate(args) -> int:
    from sensorium.seqnms.batch import read_detections
    from sensorium.seqnms.evaluation import compare
    from sensorium.seqnms.formats import coco_ground_truth, read_coco_videos, read_mot

    setup_logging()
    if args.json:
        check_writable(Path(args.json), args.force)
    if not 0 < args.nms_iou <= 1:
        raise SensoriumError(f"--nms-iou {args.nms_iou} must lie in (0, 1]")
    gt = Path(args.gt)
    if not gt.exists():
        raise SensoriumError(f"ground truth {str(gt)!r} does not exist")
    if gt.suffix.lower() == ".json":
        detections = read_detections(Path(args.detections), gt)
        truth = coco_ground_truth(read_coco_videos(gt))
    else:
        detections = read_detections(Path(args.detections))
        files = sorted(gt.glob("*/gt/gt.txt")) if gt.is_dir() else [gt]
        if not files:
            raise SensoriumError(f"folder {str(gt)!r} holds no SEQUENCE/gt/gt.txt")
        truth = [read_mot(f, ground_truth=True) for f in files]
        if detections.kind == "mot-file" and len(truth) == 1:
            truth[0].name = detections.videos[0].name  # one file against one file
    rescore = RESCORE if args.both else (args.rescore,)
    rows = compare(detections.videos, truth, _settings(args), args.nms_iou, rescore)
    print(f"{'method':<16} {'COCO AP':>8} {'AP50':>7} {'VID AP':>7} {'boxes/frame':>12}")
    for row in rows:
        print(
            f"{row['method']:<16} {row['ap']:>8.3f} {row['ap50']:>7.3f} {row['vid_ap']:>7.3f} "
            f"{row['boxes_per_frame']:>12.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------
def _add_simulate(verbs) -> None:
    from sensorium.seqnms.simulate import TUD_SEQUENCES

    p = verbs.add_parser(
        "simulate",
        help="simulated pre-NMS detections on real pedestrian tracks (TUD, from motmetrics)",
        description="Writes OUT/SEQUENCE/det/det.txt (simulated detections) and "
        "OUT/SEQUENCE/gt/gt.txt (the real ground truth), ready for `seqnms evaluate OUT --gt OUT`.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sequence", action="append", choices=TUD_SEQUENCES,
                   help="repeatable; default: both")  # fmt: skip
    p.add_argument(
        "--noise", type=float, default=1.0, help="detector noise level, 0 to 10 (1: default)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(run=_simulate)


def _simulate(args) -> int:
    from sensorium.seqnms.formats import write_mot
    from sensorium.seqnms.simulate import (
        MAX_NOISE_LEVEL,
        TUD_SEQUENCES,
        DetectorNoise,
        simulate_detections,
        tud_ground_truth,
    )

    setup_logging()
    if not 0 <= args.noise <= MAX_NOISE_LEVEL:
        raise SensoriumError(f"--noise {args.noise}; expected 0 to {MAX_NOISE_LEVEL:g}")
    out = Path(args.out)
    for name in args.sequence or TUD_SEQUENCES:
        det, gt = out / name / "det" / "det.txt", out / name / "gt" / "gt.txt"
        for path in (det, gt):
            check_writable(path, args.force)
        truth = tud_ground_truth(name)
        detections = simulate_detections(truth, DetectorNoise().scaled(args.noise), args.seed)
        write_mot(det, detections)
        write_mot(gt, truth)
        print(f"{name}: {truth.num_frames} frames, {truth.num_boxes} true boxes, "
              f"{detections.num_boxes} candidates; wrote {det} and {gt}")  # fmt: skip
    return 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------
def _add_demo(verbs) -> None:
    p = verbs.add_parser(
        "demo",
        help="OpenCV's HOG people detector on a real street video, per-frame NMS vs Seq-NMS",
    )
    p.add_argument("--out", default="seqnms-demo", help="output folder")
    p.add_argument("--video", default=None, help="a video file; default: vtest.avi (opencv-doc)")
    p.add_argument("--frames", type=int, default=60, help="frames to run the detector on")
    _add_settings(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_demo)


def _demo(args) -> int:
    from sensorium.seqnms.demo import run_demo

    setup_logging()
    out = Path(args.out)
    for name in ("contact-sheet.png", "candidates.txt", "seqnms.txt", "per-frame-nms.txt"):
        check_writable(out / name, args.force)
    summary = run_demo(_path(args.video), out, args.frames, _settings(args))
    print(
        f"{summary['frames']} frames of {summary['video']}: {summary['candidates']} HOG "
        f"candidates; per-frame NMS kept {summary['per_frame_nms']}, Seq-NMS "
        f"{summary['seqnms']}; wrote {out / 'contact-sheet.png'}"
    )
    return 0


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)
