"""Whole continual runs on a tiny benchmark in the CDDB layout: every method, resume, the
frozen-feature cache against the plain forward, evaluate, torchrun and bad input."""

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

from sensorium.lorax.harness import frozen_feature_cache, to_input
from sensorium.lorax.methods import METHODS, LoraSettings, build_net
from sensorium.lorax.run import restore_run
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.lorax.test_methods import tiny_backbone

TASKS = ["stripes", "checks", "dots"]
TINY_BACKBONE = Path(__file__).parent / "tiny_backbone.py"


def _image(rng: np.random.Generator, task: int, fake: bool) -> np.ndarray:
    """A 12x12 noisy colour patch; fakes of task t carry a faint pattern of period t + 2."""
    base = rng.integers(60, 200, size=3)
    img = base + rng.normal(0, 12, size=(12, 12, 3))
    if fake:
        period = task + 2
        img += 40 * ((np.arange(12)[:, None] + np.arange(12)[None, :]) % period == 0)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_benchmark(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for t, task in enumerate(TASKS):
        for split in ("train", "val"):
            for folder, fake in (("0_real", False), ("1_fake", True)):
                out = root / task / split / folder
                out.mkdir(parents=True)
                for i in range(per_class):
                    Image.fromarray(_image(rng, t, fake)).save(out / f"{i}.png")
    return root


@pytest.fixture
def benchmark(tmp_path) -> Path:
    return make_benchmark(tmp_path / "bench")


def train_args(data: Path, out: Path, method: str, order: str = ",".join(TASKS)) -> list:
    return [
        "lorax", "train", data, "--out", out, "--method", method, "--order", order,
        "--epochs", "2", "--batch-size", "8", "--memory", "8", "--lora-rank", "2",
        "--backbone", f"{TINY_BACKBONE}:tiny_vit", "--image-size", "8", "--seed", "3",
        "--device", "cpu",
    ]  # fmt: skip


def test_frozen_feature_cache_equals_plain_forward():
    net = build_net("lorax", tiny_backbone(), LoraSettings(rank=2))
    net.begin_task()
    net.begin_task()
    images = np.random.default_rng(0).integers(0, 256, size=(7, 8, 8, 3), dtype=np.uint8)
    cache = frozen_feature_cache(net, images, batch=3, device="cpu")
    assert cache.shape == (2, 7, 16)
    net.eval()
    with torch.no_grad():
        x = to_input(images)
        torch.testing.assert_close(cache[0], net.frozen_features(x))
        torch.testing.assert_close(cache[1], net.frozen_features(x.flip(-1)))
        torch.testing.assert_close(net(x, cache[0])[0], net(x)[0])
    assert net.training is False
    single = build_net("finetune", tiny_backbone(), LoraSettings())
    single.begin_task()
    assert frozen_feature_cache(single, images, batch=3, device="cpu") is None


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_and_reports(tmp_path, benchmark, method, capsys):
    run = tmp_path / method
    code, out, err = run_cli(train_args(benchmark, run, method), capsys)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["order"] == TASKS
    for key in ("average_incremental_accuracy", "final_average_accuracy", "backward_transfer"):
        assert np.isfinite(metrics[key])
    assert 0 <= metrics["final_average_accuracy"] <= 100
    rows = (run / "accuracy_matrix.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + len(TASKS) and rows[1].count(",") == len(TASKS)
    assert rows[2].split(",")[1] == ""  # task 2 not seen after task 1
    assert (run / "accuracy.png").stat().st_size > 1000
    assert method in out and "average incremental accuracy" in out
    _, net, memory, _ = restore_run(run / "checkpoint.pt")
    assert net.classes == 2 * len(TASKS)
    uses_memory = method in ("lorax", "expandable", "replay", "linear")
    assert len(memory) == (8 // 6 * 6 if uses_memory else 0)
    per_task = metrics["extractor_parameters_per_task"]
    if method == "lorax":
        assert 0 < per_task[0] == per_task[-1] < 0.2 * metrics["backbone_parameters"]
    if method == "linear":
        assert per_task == [0, 0, 0]


def test_lorax_keeps_old_adapters_and_resume_equals_one_go(tmp_path, benchmark, capsys):
    straight = tmp_path / "straight"
    assert run_cli(train_args(benchmark, straight, "lorax"), capsys)[0] == 0
    parted = tmp_path / "parted"
    assert run_cli(train_args(benchmark, parted, "lorax", "stripes,checks"), capsys)[0] == 0
    first = torch.load(parted / "checkpoint.pt", weights_only=True)["model"]
    code, _, err = run_cli([*train_args(benchmark, parted, "lorax"), "--resume"], capsys)
    assert code == 0, err
    last = torch.load(parted / "checkpoint.pt", weights_only=True)["model"]
    old = [k for k in first if ".task0." in k or ".task1." in k]
    assert old and all(torch.equal(first[k], last[k]) for k in old)
    one_go = torch.load(straight / "checkpoint.pt", weights_only=True)
    resumed = torch.load(parted / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(one_go["model"][k], resumed["model"][k]) for k in one_go["model"])
    torch.testing.assert_close(one_go["R"], resumed["R"], equal_nan=True)
    # Evaluate the finished run on the same data: the last column of its matrix.
    code, _, err = run_cli(["lorax", "evaluate", parted, benchmark], capsys)
    assert code == 0, err
    evaluation = json.loads((parted / "evaluation.json").read_text())
    expected = 100 * resumed["R"][:, -1].numpy()
    got = [row["attribution_accuracy"] for row in evaluation["tasks"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    code, _, err = run_cli(["lorax", "evaluate", parted, benchmark], capsys)
    assert_one_line_error(code, err, "already exists", "--force")


def test_bad_runs(tmp_path, benchmark, capsys):
    run = tmp_path / "run"
    assert run_cli(train_args(benchmark, run, "finetune", "stripes"), capsys)[0] == 0
    code, _, err = run_cli([*train_args(benchmark, run, "lorax"), "--resume"], capsys)
    assert_one_line_error(code, err, "holds a 'finetune' run", "not 'lorax'")
    code, _, err = run_cli([*train_args(benchmark, run, "finetune", "checks"), "--resume"], capsys)
    assert_one_line_error(code, err, "must start with")
    code, _, err = run_cli(train_args(benchmark, tmp_path / "r2", "lorax", "stripes,nope"), capsys)
    assert_one_line_error(code, err, "nope")
    assert not (tmp_path / "r2").exists()
    code, _, err = run_cli(["lorax", "evaluate", tmp_path / "missing", benchmark], capsys)
    assert_one_line_error(code, err, "does not exist")
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"kind": "wavenet", "format_version": 1}, other / "checkpoint.pt")
    code, _, err = run_cli(["lorax", "evaluate", other, benchmark], capsys)
    assert_one_line_error(code, err, "'wavenet'", "'lorax-run'")
    args = train_args(benchmark, tmp_path / "r3", "lorax", "stripes")
    code, _, err = run_cli([*args, "--lora-targets", r".*\.nothing"], capsys)
    assert_one_line_error(code, err, "match no layer")
    code, _, err = run_cli([*args[:-2], "--epochs", "0"], capsys)
    assert_one_line_error(code, err, "epochs 0")
    for option, value, message in [
        ("--lora-scale", "nan", "LoRA scale"),
        ("--aux-weight", "nan", "aux_weight"),
        ("--weight-decay", "-1", "weight_decay"),
        ("--warmup-epochs", "nan", "warmup_epochs"),
        ("--lr", "inf", "learning rate"),
    ]:
        code, _, err = run_cli([*args, option, value], capsys)
        assert_one_line_error(code, err, message)
    assert not (tmp_path / "r3").exists()
    vit = [
        "lorax",
        "train",
        benchmark,
        "--out",
        tmp_path / "r4",
        "--order",
        "stripes",
        "--image-size",
        "224",
    ]
    code, _, err = run_cli(vit, capsys)
    assert_one_line_error(code, err, "--image-size 224", "user backbone")
    broken = tmp_path / "broken.py"
    broken.write_text("def net():\n    raise RuntimeError('no')\n")
    code, _, err = run_cli([*args, "--backbone", f"{broken}:net"], capsys)
    assert_one_line_error(code, err, "calling net() failed")
    broken.write_text("def net(:\n")
    code, _, err = run_cli([*args, "--backbone", f"{broken}:net"], capsys)
    assert_one_line_error(code, err, "fails to load", "SyntaxError")


def test_a_forced_run_that_fails_leaves_the_old_run_alone(tmp_path, benchmark, capsys):
    run = tmp_path / "run"
    assert run_cli(train_args(benchmark, run, "expandable", "stripes"), capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    args = [*train_args(benchmark, run, "finetune", "stripes,nope"), "--force"]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "nope")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "train.log"} == {
        k: v for k, v in before.items() if k != "train.log"
    }


@pytest.mark.slow
def test_training_under_torchrun_with_two_processes(tmp_path, benchmark):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(a) for a in train_args(benchmark, run, "lorax", "stripes,checks")]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "sensorium", *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["order"] == ["stripes", "checks"]
    assert len(metrics["tasks"]) == 2
