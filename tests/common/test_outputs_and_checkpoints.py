from __future__ import annotations

import pytest
import torch

from sensorium.common.checkpoints import load_checkpoint, save_checkpoint
from sensorium.common.errors import SensoriumError
from sensorium.common.outputs import check_run_dir, check_writable


def test_existing_output_needs_force(tmp_path):
    path = tmp_path / "out.wav"
    assert check_writable(path, force=False) == path
    path.write_bytes(b"keep me")
    with pytest.raises(SensoriumError, match="--force"):
        check_writable(path, force=False)
    assert path.read_bytes() == b"keep me"
    check_writable(path, force=True)


def test_run_dir_must_be_empty_unless_resuming(tmp_path):
    run = tmp_path / "run"
    check_run_dir(run, force=False)
    (run / "model.pt").write_bytes(b"x")
    with pytest.raises(SensoriumError, match="not empty"):
        check_run_dir(run, force=False)
    check_run_dir(run, force=False, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SensoriumError, match="is a file"):
        check_run_dir(tmp_path / "file", force=True)


def test_checkpoint_kind_and_damage_are_reported(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, "pixelcnn", {"config": {}, "model": {}})
    assert load_checkpoint(path, "pixelcnn")["kind"] == "pixelcnn"
    with pytest.raises(SensoriumError, match="holds a 'pixelcnn' model; expected a 'wavenet'"):
        load_checkpoint(path, "wavenet")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:50])
    with pytest.raises(SensoriumError, match="could not be read"):
        load_checkpoint(damaged, "pixelcnn")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(SensoriumError, match="not a sensorium checkpoint"):
        load_checkpoint(tmp_path / "other.pt", "pixelcnn")
    with pytest.raises(SensoriumError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", "pixelcnn")
