"""`sensorium pixelcnn train | generate` end to end on small data, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sensorium.common.checkpoints import save_checkpoint
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.data.test_images import images, write_idx

TINY_MODEL = ["--filters", "4", "--resnets", "1", "--mixtures", "2", "--batch-size", "4",
              "--eval-images", "8"]  # fmt: skip


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """An MNIST-style folder of 40 training and 10 test images of 8x10."""
    root = tmp_path / "mnist-style"
    write_idx(root / "train-images-idx3-ubyte.gz", images(40, 8, 10), gz=True)
    write_idx(root / "t10k-images-idx3-ubyte.gz", images(10, 8, 10, seed=1), gz=True)
    return root


@pytest.fixture
def trained_run(tmp_path, image_dir, capsys) -> Path:
    run = tmp_path / "run"
    code, out, _ = run_cli(
        ["pixelcnn", "train", image_dir, "--out", run, "--steps", 3, "--eval-every", 2,
         *TINY_MODEL],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    return run


def test_train_writes_checkpoints_settings_and_metrics(trained_run):
    for name in ("checkpoint.pt", "model.pt", "settings.json", "metrics.csv", "train.log"):
        assert (trained_run / name).is_file(), name
    settings = json.loads((trained_run / "settings.json").read_text())
    assert (settings["model"]["height"], settings["model"]["width"]) == (8, 10)
    rows = (trained_run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0] == "step,train_bits,test_bits,seconds"
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3"]
    # Uniform noise images: a fresh model scores near (or above) 8 bits per dimension.
    assert 6.0 < float(rows[1].split(",")[2]) < 20.0
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["test_images"] == 10


def test_resume_continues_from_the_saved_step(trained_run, image_dir, capsys):
    args = ["pixelcnn", "train", image_dir, "--out", trained_run, *TINY_MODEL]
    code, _, err = run_cli([*args, "--steps", 3], capsys)
    assert_one_line_error(code, err, "not empty", "--resume")
    # The model and data settings come from the run folder: they need not be repeated.
    resume = ["pixelcnn", "train", "--out", trained_run, "--steps", 5, "--eval-every", 2]
    code, _, _ = run_cli([*resume, "--resume"], capsys)
    assert code == 0
    rows = [r.split(",") for r in (trained_run / "metrics.csv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == ["2", "3", "4", "5"]
    seconds = [float(r[3]) for r in rows]
    assert seconds == sorted(seconds)  # training time carries on across the resume
    settings = json.loads((trained_run / "settings.json").read_text())
    assert settings["model"]["filters"] == 4 and settings["steps"] == 5


def test_generate_writes_grid_and_array_identically_for_both_samplers(
    trained_run, tmp_path, capsys
):
    outputs = {}
    for sampler in ("cached", "naive"):
        out = tmp_path / sampler / "grid.png"
        code, printed, _ = run_cli(
            ["pixelcnn", "generate", trained_run / "model.pt", "--out", out, "--n", 3,
             "--batch", 2, "--sampler", sampler, "--dtype", "float64", "--seed", 4],
            capsys,
        )  # fmt: skip
        assert code == 0 and "images/s" in printed
        outputs[sampler] = np.load(out.with_suffix(".npy"))
        assert outputs[sampler].shape == (3, 1, 8, 10) and outputs[sampler].dtype == np.uint8
        assert Image.open(out).size[0] > 10 * 3
    assert np.array_equal(outputs["cached"], outputs["naive"])
    code, _, err = run_cli(
        ["pixelcnn", "generate", trained_run / "model.pt", "--out", tmp_path / "cached" /
         "grid.png"],
        capsys,
    )  # fmt: skip
    assert_one_line_error(code, err, "already exists", "--force")


@pytest.mark.slow
def test_training_under_torchrun_with_two_processes(tmp_path, image_dir):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "sensorium", "pixelcnn", "train", str(image_dir), "--out", str(run), "--steps", "2",
        "--eval-every", "2", *TINY_MODEL,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2


def test_bad_training_data(tmp_path, capsys):
    cases = {
        "missing": tmp_path / "nowhere",
        "no images": tmp_path / "empty",
    }
    cases["no images"].mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(images(1, 8, 8)[0]).save(mixed / "a.png")
    Image.fromarray(images(1, 6, 8)[0]).save(mixed / "b.png")
    cases["differ in size"] = mixed
    bad_magic = tmp_path / "bad-idx3-ubyte"
    bad_magic.write_bytes(b"\x08\x03\x00\x00" + bytes(100))
    cases["magic number"] = bad_magic
    truncated = tmp_path / "short-idx3-ubyte"
    truncated.write_bytes(write_idx(tmp_path / "x-idx3-ubyte", images(3)).read_bytes()[:-5])
    cases["truncated"] = truncated
    for needle, data in cases.items():
        code, _, err = run_cli(
            ["pixelcnn", "train", data, "--out", tmp_path / "out" / needle, *TINY_MODEL], capsys
        )
        assert_one_line_error(code, err, "does not exist" if needle == "missing" else needle)


def test_bad_generation_requests(trained_run, tmp_path, capsys):
    model = trained_run / "model.pt"
    out = tmp_path / "g.png"
    code, _, err = run_cli(["pixelcnn", "generate", model, "--out", out, "--n", 0], capsys)
    assert_one_line_error(code, err, "image count 0")
    code, _, err = run_cli(["pixelcnn", "generate", model, "--out", tmp_path / "g.jpg"], capsys)
    assert_one_line_error(code, err, ".png")
    code, _, err = run_cli(["pixelcnn", "generate", tmp_path / "none.pt", "--out", out], capsys)
    assert_one_line_error(code, err, "does not exist")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x80\x02 not a checkpoint")
    code, _, err = run_cli(["pixelcnn", "generate", damaged, "--out", out], capsys)
    assert_one_line_error(code, err, "could not be read")
    wavenet = tmp_path / "wavenet.pt"
    save_checkpoint(wavenet, "wavenet", {"config": {}, "model": {}})
    code, _, err = run_cli(["pixelcnn", "generate", wavenet, "--out", out], capsys)
    assert_one_line_error(code, err, "'wavenet' model", "'pixelcnn' model")
    code, _, err = run_cli(["wavenet", "generate", model, "--out", tmp_path / "a.wav"], capsys)
    assert_one_line_error(code, err, "'pixelcnn' model", "'wavenet' model")
    broken = tmp_path / "broken.pt"
    data = torch.load(model, weights_only=True)
    data["model"] = {k: v for k, v in list(data["model"].items())[:3]}
    torch.save(data, broken)
    code, _, err = run_cli(["pixelcnn", "generate", broken, "--out", out], capsys)
    assert_one_line_error(code, err, "damaged")
    assert not out.exists()
