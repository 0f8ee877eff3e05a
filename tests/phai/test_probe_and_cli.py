"""Probe tasks, linear probes, the report, and the command line with its bad-input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sensorium.common.checkpoints import save_checkpoint
from sensorium.phai.probe import (
    ProbeResult,
    group_means,
    linear_probe,
    raw_features,
    spectrum_features,
)
from sensorium.phai.report import markdown_table
from sensorium.phai.tasks import TASKS, build_task, parse_tasks
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.conftest import write_tone

TINY_MODEL = ["--window", "256", "--time-channels", "8,8", "--freq-channels", "4",
              "--freq-features", "16", "--hidden", "32", "--embed-dim", "16"]  # fmt: skip
TINY_RUN = ["--steps", "2", "--eval-every", "2", "--batch-size", "8", "--train-signals", "64",
            *TINY_MODEL]  # fmt: skip


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_builds_balanced_finite_windows(name):
    task = build_task(name, 1024, seed=0, scale=0.03)
    n, w, two, t = task.x.shape
    assert two == 2 and t == 1024 and w >= 1 and n == len(task.y)
    assert task.group in ("physical", "semantic")
    assert np.all(np.isfinite(task.x))
    counts = np.bincount(task.y, minlength=len(task.classes))
    assert counts.min() == counts.max() >= 4
    # no two examples (nearly) the same: a held-out split must not hold copies
    flat = task.x.reshape(n, -1).astype(np.float64)
    flat -= flat.mean(1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    similarity = flat @ flat.T - 2 * np.eye(n)
    assert similarity.max() < 0.995


def test_at_least_ten_tasks_in_both_groups():
    groups = {build_task(n, 1024, 0, 0.03).group for n in ("rf-snr", "digits")}
    assert len(TASKS) >= 10 and groups == {"physical", "semantic"}
    assert parse_tasks("all") == list(TASKS)
    with pytest.raises(ValueError, match="unknown probe task 'nope'"):
        parse_tasks("digits,nope")


def test_linear_probe_reads_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    separable = np.eye(4)[y] * 5 + rng.normal(0, 0.1, (200, 4))
    noise = rng.normal(0, 1, (200, 4))
    fit, test = np.arange(0, 200, 2), np.arange(1, 200, 2)
    top1, top3 = linear_probe(separable, y, fit, test, 0)
    assert top1 == 1.0 and top3 == 1.0
    top1, top3 = linear_probe(noise, y, fit, test, 0)
    assert top1 < 0.5 and top3 >= top1


def test_handcrafted_features_have_their_shapes():
    x = np.random.default_rng(0).normal(size=(5, 3, 2, 1024)).astype(np.float32)
    assert spectrum_features(x).shape == (5, 256)
    assert raw_features(x).shape == (5, 2048)


def test_group_means_and_table():
    results = [
        ProbeResult("a", "physical", "principle", 2, 10, 5, 1.0, 1.0),
        ProbeResult("b", "semantic", "principle", 2, 10, 5, 0.5, 1.0),
        ProbeResult("a", "physical", "raw", 2, 10, 5, 0.2, 1.0),
        ProbeResult("b", "semantic", "raw", 2, 10, 5, 0.4, 1.0),
    ]
    means = group_means(results)
    assert means["principle"]["all"]["top1"] == pytest.approx(0.75)
    assert means["raw"]["physical"]["top1"] == pytest.approx(0.2)
    table = markdown_table(results)
    assert "| a | physical | 2 | 100.0 (100.0) | 20.0 (100.0) |" in table
    assert "**75.0**" in table


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_encoder(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["phai", "pretrain", "--out", run, *TINY_RUN], capsys)
    assert code == 0, err
    return run / "encoder.pt"


def test_pretrain_probe_and_embed(tmp_path, tiny_encoder, capsys):
    run = tiny_encoder.parent
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and "fourier" in summary["losses"]
    assert json.loads((run / "settings.json").read_text())["model"]["length"] == 256

    contrastive = tmp_path / "contrastive"
    code, _, err = run_cli(
        ["phai", "pretrain", "--out", contrastive, "--losses", "contrastive", *TINY_RUN], capsys
    )
    assert code == 0, err
    results = tmp_path / "results"
    code, _, err = run_cli(
        ["phai", "probe", tiny_encoder, "--tasks", "digits,rf-snr", "--scale", "0.05",
         "--contrastive", contrastive / "encoder.pt", "--out", results],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((results / "summary.json").read_text())
    kinds = {r["features"] for r in summary["results"]}
    assert kinds == {"principle", "contrastive", "random", "spectrum", "raw"}
    assert {r["task"] for r in summary["results"]} == {"digits", "rf-snr"}
    assert (results / "accuracy.png").stat().st_size > 1000
    assert "mean, physical" in (results / "table.md").read_text()

    wav = write_tone(tmp_path / "tone.wav", 0.2, 8000, 300)
    np.save(tmp_path / "iq.npy", np.exp(1j * np.arange(600) * 0.1))
    out_file = tmp_path / "emb.npy"
    code, _, err = run_cli(
        ["phai", "embed", wav, tmp_path / "iq.npy", "--checkpoint", tiny_encoder,
         "--out", out_file],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    embeddings = np.load(out_file)
    assert embeddings.shape == (2, 17) and np.all(np.isfinite(embeddings))
    meta = json.loads(out_file.with_suffix(".json").read_text())
    assert meta["signals"] == [str(wav), str(tmp_path / "iq.npy")] and meta["windows"] == [6, 2]
    # nothing overwritten without --force
    code, _, err = run_cli(
        ["phai", "embed", wav, "--checkpoint", tiny_encoder, "--out", out_file], capsys
    )
    assert_one_line_error(code, err, "already exists")
    np.testing.assert_array_equal(np.load(out_file), embeddings)


def test_bad_input_gives_one_line(tmp_path, tiny_encoder, capsys):
    embed = ["phai", "embed", "--checkpoint", tiny_encoder, "--out", tmp_path / "e.npy"]
    np.save(tmp_path / "short.npy", np.zeros(100))
    code, _, err = run_cli([*embed, tmp_path / "short.npy"], capsys)
    assert_one_line_error(code, err, "shorter than the encoder's window of 256")
    np.save(tmp_path / "nan.npy", np.full(600, np.nan))
    code, _, err = run_cli([*embed, tmp_path / "nan.npy"], capsys)
    assert_one_line_error(code, err, "NaN or infinite")
    (tmp_path / "broken.wav").write_bytes(os.urandom(500))
    code, _, err = run_cli([*embed, tmp_path / "broken.wav"], capsys)
    assert_one_line_error(code, err, "broken.wav")
    assert not (tmp_path / "e.npy").exists()

    probe = ["phai", "probe", tiny_encoder, "--out", tmp_path / "p"]
    code, _, err = run_cli([*probe, "--tasks", "digits,weather"], capsys)
    assert_one_line_error(code, err, "unknown probe task 'weather'")
    code, _, err = run_cli([*probe, "--baselines", "clip"], capsys)
    assert_one_line_error(code, err, "baselines 'clip'")

    other = tmp_path / "other.pt"
    save_checkpoint(other, "wavenet", {"config": {}, "model": {}})
    code, _, err = run_cli(["phai", "probe", other, "--out", tmp_path / "p2"], capsys)
    assert_one_line_error(code, err, "holds a 'wavenet' model")
    code, _, err = run_cli([*probe, "--tasks", "digits", "--contrastive", "contrastive"], capsys)
    assert_one_line_error(code, err, "other settings")

    train = ["phai", "pretrain", "--out", tmp_path / "bad", *TINY_RUN]
    code, _, err = run_cli([*train, "--losses", "fourier,vibes"], capsys)
    assert_one_line_error(code, err, "unknown loss 'vibes'")
    code, _, err = run_cli([*train, "--lr", "inf"], capsys)
    assert_one_line_error(code, err, "learning rate")
    code, _, err = run_cli([*train, "--window", "65536", "--train-signals", "40000"], capsys)
    assert_one_line_error(code, err, "GB in memory")
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_pretraining_under_torchrun_with_two_processes(tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "sensorium", "phai", "pretrain", "--out", str(run), *TINY_RUN],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2


def test_resume_continues_with_the_runs_settings(tiny_encoder, capsys):
    run = tiny_encoder.parent
    code, _, err = run_cli(
        ["phai", "pretrain", "--out", run, "--resume", "--steps", "4", "--eval-every", "2",
         "--losses", "contrastive"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4
    assert "fourier" in summary["losses"]  # the run's own losses, not this command's
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 3


def test_more_bad_input_gives_one_line(tmp_path, tiny_encoder, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    np.save(tmp_path / "ok.npy", np.ones(600))
    code, _, err = run_cli(
        ["phai", "embed", tmp_path / "ok.npy", "--checkpoint", tiny_encoder,
         "--out", blocker / "e.npy"],
        capsys,
    )  # fmt: skip
    assert_one_line_error(code, err, "a file, not a folder")
    code, _, err = run_cli(["phai", "pretrain", "--out", blocker / "run", *TINY_RUN], capsys)
    assert_one_line_error(code, err, "a file, not a folder")
    assert blocker.read_text() == "mine"

    embed = ["phai", "embed", "--checkpoint", tiny_encoder, "--out", tmp_path / "e.npy"]
    np.save(tmp_path / "empty.npy", np.zeros((0, 4000)))
    code, _, err = run_cli([*embed, tmp_path / "empty.npy"], capsys)
    assert_one_line_error(code, err, "holds no samples")
    np.save(tmp_path / "huge.npy", np.full(600, 1e300))
    code, _, err = run_cli([*embed, tmp_path / "huge.npy"], capsys)
    assert_one_line_error(code, err, "expected magnitudes up to")
    wav = write_tone(tmp_path / "inf.wav", 0.2, 8000, 300)
    import soundfile

    audio, rate = soundfile.read(wav)
    audio[10] = np.inf
    soundfile.write(str(wav), audio, rate, subtype="FLOAT")
    code, _, err = run_cli([*embed, wav], capsys)
    assert_one_line_error(code, err, "NaN or infinite")

    probe = ["phai", "probe", tiny_encoder, "--out", tmp_path / "p", "--baselines", "none"]
    code, _, err = run_cli([*probe, "--tasks", "digits,digits"], capsys)
    assert_one_line_error(code, err, "more than once")
    code, _, err = run_cli([*probe, "--tasks", "digits", "--seed", "-1"], capsys)
    assert_one_line_error(code, err, "--seed -1")
    code, _, err = run_cli([*probe[:-2], "--tasks", "digits", "--baselines", ""], capsys)
    assert_one_line_error(code, err, "baselines ''")
    assert not (tmp_path / "p").exists()

    train = ["phai", "pretrain", "--out", tmp_path / "bad", *TINY_RUN]
    for extra, needle in [
        (["--window", "1000000"], "from 64 to 65536"),
        (["--snr", "-500", "500"], "within -30..60 dB"),
        (["--losses", ""], "no loss chosen"),
        (["--hidden", "0"], "hidden must be at least 1"),
        (["--train-signals", "0"], "--train-signals 0"),
        (["--train-signals", "3"], "fewer than a batch"),
    ]:
        code, _, err = run_cli([*train, *extra], capsys)
        assert_one_line_error(code, err, needle)
    # resuming a run that has done its steps already
    run = tiny_encoder.parent
    before = (run / "summary.json").read_text()
    code, _, err = run_cli(["phai", "pretrain", "--out", run, "--resume", "--steps", "2"], capsys)
    assert_one_line_error(code, err, "already at step 2")
    assert (run / "summary.json").read_text() == before
