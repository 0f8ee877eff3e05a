"""What Seq-NMS gains over per-frame NMS on real pedestrian tracks with a simulated detector.

For TUD-Campus and TUD-Stadtmitte (real MOTChallenge ground truth from the motmetrics wheel)
and each detector noise level, simulated pre-NMS detections (`sensorium.seqnms.simulate`,
several seeds) go through per-frame NMS (IoU 0.3) and Seq-NMS (link 0.5, suppress 0.3, avg
and max rescoring); each is scored with COCO AP50 (pycocotools) and ImageNet VID AP. The
table gives the mean and standard deviation over the seeds.

    python benchmarks/seqnms_quality.py --json seqnms-quality.json
"""

from __future__ import annotations

import argparse
import json
import statistics

from sensorium.seqnms.algorithm import RESCORE, SeqNmsSettings
from sensorium.seqnms.evaluation import compare
from sensorium.seqnms.simulate import (
    TUD_SEQUENCES,
    DetectorNoise,
    simulate_detections,
    tud_ground_truth,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="0.5,1,2")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    records = []
    print(f"{'sequence':<15} {'noise':>5} {'method':<15} {'AP50':>13} {'VID AP':>13} "
          f"{'boxes/frame':>11}")  # fmt: skip
    for name in TUD_SEQUENCES:
        truth = tud_ground_truth(name)
        for noise in [float(v) for v in args.noise.split(",")]:
            runs: dict[str, list[dict]] = {}
            for seed in range(args.seeds):
                detections = simulate_detections(truth, DetectorNoise().scaled(noise), seed)
                for row in compare([detections], [truth], SeqNmsSettings(), 0.3, RESCORE):
                    runs.setdefault(row["method"], []).append(row)
            for method, rows in runs.items():
                ap50 = [r["ap50"] for r in rows]
                vid = [r["vid_ap"] for r in rows]
                record = {
                    "sequence": name,
                    "noise": noise,
                    "method": method,
                    "ap50_mean": statistics.mean(ap50),
                    "ap50_std": statistics.stdev(ap50) if len(ap50) > 1 else 0.0,
                    "vid_ap_mean": statistics.mean(vid),
                    "vid_ap_std": statistics.stdev(vid) if len(vid) > 1 else 0.0,
                    "boxes_per_frame": statistics.mean(r["boxes_per_frame"] for r in rows),
                    "seeds": args.seeds,
                }
                records.append(record)
                print(
                    f"{name:<15} {noise:>5g} {method:<15} "
                    f"{record['ap50_mean']:.3f} ± {record['ap50_std']:.3f} "
                    f"{record['vid_ap_mean']:.3f} ± {record['vid_ap_std']:.3f} "
                    f"{record['boxes_per_frame']:>11.1f}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"records": records}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
