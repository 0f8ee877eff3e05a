"""Seq-NMS: video detections rescored through time (Han et al. 2016)."""
