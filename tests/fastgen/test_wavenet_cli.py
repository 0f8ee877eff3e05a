"""`sensorium wavenet train | generate` end to end on small data, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sensorium.common.checkpoints import save_checkpoint
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import write_tone

TINY_MODEL = [
    "--residual-channels", "8", "--gate-channels", "8", "--skip-channels", "8",
    "--layers", "3", "--stacks", "1", "--batch-size", "2", "--crop", "400",
]  # fmt: skip


@pytest.fixture
def trained_run(tmp_path, audio_dir, capsys) -> Path:
    run = tmp_path / "run"
    code, out, _ = run_cli(
        ["wavenet", "train", audio_dir, "--out", run, "--steps", 3, "--eval-every", 2,
         "--conditioning", "mel+folders", *TINY_MODEL],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    return run


def test_train_writes_checkpoints_settings_and_metrics(trained_run, capsys):
    for name in ("checkpoint.pt", "model.pt", "settings.json", "metrics.csv", "train.log"):
        assert (trained_run / name).is_file(), name
    settings = json.loads((trained_run / "settings.json").read_text())
    assert settings["model"]["global_classes"] == 2  # alice, bob
    assert settings["model"]["local_channels"] == 40
    rows = (trained_run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0] == "step,train_bits,val_bits,seconds"
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3"]
    # Random init starts near log2(256) = 8 bits per sample.
    assert 4.0 < float(rows[1].split(",")[1]) < 9.0


def test_resume_continues_from_the_saved_step(trained_run, audio_dir, capsys):
    code, _, err = run_cli(
        ["wavenet", "train", audio_dir, "--out", trained_run, "--steps", 3, *TINY_MODEL], capsys
    )
    assert_one_line_error(code, err, "not empty", "--resume")
    code, _, _ = run_cli(
        ["wavenet", "train", audio_dir, "--out", trained_run, "--steps", 5, "--eval-every", 2,
         "--conditioning", "mel+folders", "--resume", *TINY_MODEL],
        capsys,
    )  # fmt: skip
    assert code == 0
    steps = [r.split(",")[0] for r in (trained_run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["2", "3", "4", "5"]


def test_generate_writes_audio_and_plot_for_every_stream(trained_run, audio_dir, tmp_path, capsys):
    out = tmp_path / "gen" / "speech.wav"
    args = ["wavenet", "generate", trained_run / "model.pt", "--out", out, "--seconds", 0.05,
            "--batch", 2, "--global-id", 1, "--local", audio_dir / "alice" / "a1.wav"]  # fmt: skip
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    for name in ("speech_0.wav", "speech_1.wav", "speech.png"):
        assert (out.parent / name).is_file()
    data, rate = soundfile.read(out.parent / "speech_0.wav")
    assert rate == 8000 and data.shape == (400,)
    assert "samples/s" in stdout
    # The same command again must not overwrite without --force.
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "already exists", "--force")
    code, _, _ = run_cli([*args, "--force"], capsys)
    assert code == 0


def test_generate_continues_a_prime_in_float64_identically(
    trained_run, audio_dir, tmp_path, capsys
):
    outs = {}
    for sampler in ("naive", "cached"):
        out = tmp_path / f"{sampler}.wav"
        code, _, err = run_cli(
            ["wavenet", "generate", trained_run / "model.pt", "--out", out, "--seconds", 0.02,
             "--prime", audio_dir / "bob" / "b2.wav", "--prime-seconds", 0.05, "--global-id", 0,
             "--local", audio_dir / "bob" / "b2.wav", "--dtype", "float64", "--sampler", sampler,
             "--no-plot", "--seed", 3],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        outs[sampler] = out.read_bytes()
    assert outs["naive"] == outs["cached"]


@pytest.mark.slow
def test_training_under_torchrun_with_two_processes(tmp_path, audio_dir):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "sensorium", "wavenet", "train", str(audio_dir), "--out", str(run),
         "--steps", "2", "--eval-every", "2", *TINY_MODEL],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert (run / "model.pt").is_file()


# ------------------------------------------------------------------------------------------
# Bad input: one line, exit status 2, nothing overwritten
# ------------------------------------------------------------------------------------------
def test_bad_training_data(tmp_path, audio_dir, capsys):
    train = ["wavenet", "train", "--steps", "1", *TINY_MODEL]
    code, _, err = run_cli([*train[:2], tmp_path / "nope", "--out", tmp_path / "r1", *train[2:]],
                           capsys)  # fmt: skip
    assert_one_line_error(code, err, "does not exist")

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "notes.txt").write_text("no audio here")
    code, _, err = run_cli([*train[:2], empty_dir, "--out", tmp_path / "r2", *train[2:]], capsys)
    assert_one_line_error(code, err, "holds no audio files")

    code, _, err = run_cli(
        [*train[:2], empty_dir / "notes.txt", "--out", tmp_path / "r3", *train[2:]], capsys
    )
    assert_one_line_error(code, err, "is not an audio file")

    corrupt = tmp_path / "corrupt"
    write_tone(corrupt / "good.wav", 0.5, 8000, 200)
    (corrupt / "bad.wav").write_bytes(os.urandom(2000))
    code, _, err = run_cli([*train[:2], corrupt, "--out", tmp_path / "r4", *train[2:]], capsys)
    assert_one_line_error(code, err, "bad.wav", "could not read")

    empty_file = tmp_path / "zero"
    empty_file.mkdir()
    (empty_file / "zero.wav").write_bytes(b"")
    code, _, err = run_cli([*train[:2], empty_file, "--out", tmp_path / "r5", *train[2:]], capsys)
    assert_one_line_error(code, err, "zero.wav")

    code, _, err = run_cli(
        [*train[:2], audio_dir, "--out", tmp_path / "r6", *train[2:], "--crop", "100000"], capsys
    )
    assert_one_line_error(code, err, "shorter than a training crop")

    code, _, err = run_cli([*train[:2], audio_dir, "--out", tmp_path / "r7", "--steps", "0"],
                           capsys)  # fmt: skip
    assert_one_line_error(code, err, "steps=0")
    # A failed run leaves no run folder of its own behind.
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 8))

    code, _, err = run_cli([*train[:2], audio_dir, "--out", tmp_path / "r8", "--resume"], capsys)
    assert_one_line_error(code, err, "nothing to resume")
    assert not (tmp_path / "r8").exists()


def test_missing_gpu_is_one_line(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    model = trained_run / "model.pt"
    code, _, err = run_cli(["wavenet", "generate", model, "--out", tmp_path / "g.wav",
                            "--device", "cuda"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "no usable CUDA GPU")
    code, _, err = run_cli(["wavenet", "train", tmp_path, "--out", tmp_path / "t",
                            "--device", "cuda"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "no usable CUDA GPU")


def test_bad_generation_requests(trained_run, audio_dir, tmp_path, capsys):
    model = trained_run / "model.pt"
    ok = ["--global-id", "0", "--local", audio_dir / "alice" / "a1.wav", "--no-plot"]
    gen = ["wavenet", "generate", model, "--out", tmp_path / "o.wav", *ok]
    for flags, needle in [
        (["--seconds", "-1"], "seconds -1.0 must be a number > 0"),
        (["--seconds", "inf"], "seconds inf must be a number > 0"),
        (["--batch", "0"], "batch 0"),
        (["--temperature", "-0.5"], "temperature -0.5"),
        (["--global-id", "7"], "out of range"),
        (["--prime", tmp_path / "missing.wav"], "does not exist"),
    ]:
        code, _, err = run_cli([*gen, *flags], capsys)
        assert_one_line_error(code, err, needle)

    no_local = ["wavenet", "generate", model, "--out", tmp_path / "o.wav", "--global-id", "0"]
    code, _, err = run_cli(no_local, capsys)
    assert_one_line_error(code, err, "--local")

    code, _, err = run_cli(["wavenet", "generate", tmp_path / "none.pt", "--out",
                            tmp_path / "o.wav"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "does not exist")

    other = tmp_path / "other.pt"
    save_checkpoint(other, "pixelcnn", {"config": {}, "model": {}})
    code, _, err = run_cli(["wavenet", "generate", other, "--out", tmp_path / "o.wav"], capsys)
    assert_one_line_error(code, err, "'pixelcnn' model")

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(model.read_bytes()[:1000])
    code, _, err = run_cli(["wavenet", "generate", damaged, "--out", tmp_path / "o.wav"], capsys)
    assert_one_line_error(code, err, "could not be read")

    junk = tmp_path / "junk.npy"
    junk.write_text("not an array")
    empty_frames = tmp_path / "empty.npy"
    np.save(empty_frames, np.zeros((40, 0), dtype=np.float32))
    for features, needle in [(junk, "not a NumPy array"), (empty_frames, "at least one frame")]:
        code, _, err = run_cli([*gen, "--local", features], capsys)
        assert_one_line_error(code, err, needle)

    code, _, err = run_cli(["wavenet", "demo", "--out", tmp_path / "d", "--seconds", "-1"], capsys)
    assert_one_line_error(code, err, "--seconds -1.0")

    not_audio = tmp_path / "text.wav"
    not_audio.write_text("this is not audio")
    code, _, err = run_cli([*gen, "--prime", not_audio], capsys)
    assert_one_line_error(code, err, "text.wav")

    existing = tmp_path / "keep.wav"
    existing.write_bytes(b"precious")
    code, _, err = run_cli(["wavenet", "generate", model, "--out", existing, *ok], capsys)
    assert_one_line_error(code, err, "already exists")
    assert existing.read_bytes() == b"precious"


def test_training_refuses_an_infinite_rate_and_a_runaway_receptive_field(
    tmp_path, audio_dir, capsys
):
    base = ["wavenet", "train", audio_dir, "--steps", "1", *TINY_MODEL]
    code, _, err = run_cli([*base, "--out", tmp_path / "a", "--lr", "inf"], capsys)
    assert_one_line_error(code, err, "learning rate inf")
    code, _, err = run_cli([*base, "--out", tmp_path / "b", "--layers", "40"], capsys)
    assert_one_line_error(code, err, "receptive field", "more than 1,048,576")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
