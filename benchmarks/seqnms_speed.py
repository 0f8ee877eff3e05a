"""The fast Seq-NMS against the plain reference, in one process, on this machine.

Videos are simulated detections (the `sensorium.seqnms.simulate` detector: duplicates, bursty
misses, false positives, ghost tracks) on pedestrian-sized boxes moving at constant velocity,
one class, sized to about 50, 180 and 280 candidate boxes per frame, at 100 and 300 frames.
The reference (`tests/seqnms/reference.py`: every round recomputes the whole dynamic
programme) runs once per configuration, the fast implementation `--repeats` times (median);
both give the same output, which the run checks.

    python benchmarks/seqnms_speed.py --json seqnms.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.seqnms.reference

from tests.seqnms.reference import reference_seq_nms

from sensorium.seqnms.algorithm import SeqNmsSettings, seq_nms
from sensorium.seqnms.simulate import (
    DetectorNoise,
    simulate_detections,
    synthetic_tracks,
)

# Boxes per frame -> (objects, duplicates per detected object, false positives per frame).
SIZES = {50: (6, 6, 5), 180: (12, 12, 12), 280: (15, 15, 20)}


def video(frames: int, boxes: int, seed: int):
    objects, duplicates, false = SIZES[boxes]
    truth = synthetic_tracks(frames, objects, seed)
    noise = DetectorNoise(duplicates=duplicates, false_per_frame=false)
    return simulate_detections(truth, noise, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="100,300")
    parser.add_argument("--boxes", default=",".join(str(b) for b in SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    settings = SeqNmsSettings()

    print(f"{'frames':>6} {'boxes/frame':>11} {'reference ms/frame':>18} {'fast ms/frame':>13} "
          f"{'speedup':>8}")  # fmt: skip
    records = []
    for frames in [int(v) for v in args.frames.split(",")]:
        for boxes in [int(v) for v in args.boxes.split(",")]:
            det = video(frames, boxes, seed=0)
            inputs = (det.boxes, det.scores, det.labels)
            seq_nms(*inputs, settings=settings)  # compile
            fast_runs = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                fast = seq_nms(*inputs, settings=settings)
                fast_runs.append((time.perf_counter() - started) / frames * 1000)
            started = time.perf_counter()
            reference = reference_seq_nms(*inputs, 0.5, 0.3, "avg", settings.score_floor)
            reference_ms = (time.perf_counter() - started) / frames * 1000
            same = all(
                r.keep.tolist() == sorted(want) for r, want in zip(fast, reference, strict=True)
            )
            fast_ms = statistics.median(fast_runs)
            record = {
                "frames": frames,
                "boxes_per_frame": det.num_boxes / frames,
                "reference_ms_per_frame": reference_ms,
                "fast_ms_per_frame": fast_ms,
                "speedup": reference_ms / fast_ms,
                "fast_runs_ms_per_frame": fast_runs,
                "same_output": same,
            }
            records.append(record)
            print(
                f"{frames:>6} {record['boxes_per_frame']:>11.0f} {reference_ms:>18.1f} "
                f"{fast_ms:>13.3f} {reference_ms / fast_ms:>7.0f}x" + ("" if same else "  DIFFERS"),
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": settings.__dict__, "records": records}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
