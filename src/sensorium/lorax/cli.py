"""`sensorium lorax build-data | train | evaluate | pretrain-backbone`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from sensorium.common.cli_options import add_run_folder_options, add_system
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_run_dir, check_writable

logger = logging.getLogger(__name__)


def register(systems: argparse._SubParsersAction) -> None:
    add_system(
        systems,
        "lorax",
        "LoRAX continual synthetic-image attribution, with its baselines",
        [_add_build_data, _add_train, _add_evaluate, _add_pretrain],
    )


# --------------------------------------------------------------------------------------------
# build-data
# --------------------------------------------------------------------------------------------
def _add_build_data(verbs) -> None:
    from sensorium.lorax.build_data import BuildSettings

    defaults = BuildSettings()
    p = verbs.add_parser(
        "build-data",
        help="build the offline benchmark (CDDB layout) from packaged real images and "
        "generators trained here",
        description="Write TASK/{train,val}/[SUBCLASS/]{0_real,1_fake}/IMAGE folders and a "
        "benchmark.json with the easy, hard and long orders.",
    )
    p.add_argument("--out", required=True, help="folder to build into")
    p.add_argument("--train-per-class", type=int, default=defaults.train_per_class)
    p.add_argument("--val-per-class", type=int, default=defaults.val_per_class)
    p.add_argument("--generator-steps", type=int, default=defaults.generator_steps)
    p.add_argument(
        "--tasks", default=None, help="build only these tasks (comma-separated); default: all"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="build into a non-empty folder")
    p.set_defaults(run=_build_data)


def _build_data(args) -> int:
    from sensorium.lorax.build_data import BuildSettings, build_offline_benchmark

    setup_logging()
    settings = BuildSettings(
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        generator_steps=args.generator_steps,
        seed=args.seed,
    )
    only = None if args.tasks is None else [t.strip() for t in args.tasks.split(",") if t.strip()]
    out = build_offline_benchmark(
        Path(args.out), settings, progress=True, force=args.force, only=only
    )
    print(f"built the offline benchmark in {out} (orders in {out / 'benchmark.json'})")
    return 0


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def _add_backbone_options(p) -> None:
    p.add_argument(
        "--backbone",
        default="vit",
        help="vit (the ViT shipped with sensorium, 32x32 inputs), timm:MODEL_NAME (timm "
        "installed), FILE.py:FUNCTION or package.module:FUNCTION returning a network that maps "
        "(B, 3, S, S) images in [-1, 1] to (B, D) features",
    )
    p.add_argument("--backbone-weights", default=None, help="state dict for a user backbone")
    p.add_argument("--image-size", type=int, default=None, help="input side S of a user backbone")


def _add_train(verbs) -> None:
    from sensorium.lorax.harness import ContinualSettings
    from sensorium.lorax.methods import METHODS, LoraSettings

    d, lora = ContinualSettings(), LoraSettings()
    p = verbs.add_parser(
        "train",
        help="learn the tasks of an order one after another with LoRAX or a baseline",
        description="DATA is a folder in the CDDB layout (TASK/{train,val}/[SUBCLASS/]"
        "{0_real,1_fake}/IMAGE), e.g. one built by `sensorium lorax build-data`. Writes to "
        "RUN_DIR: accuracy_matrix.csv, binary_accuracy_matrix.csv, metrics.json, "
        "accuracy.png, train.log and checkpoint.pt, after every task. Under `torchrun "
        "--nproc_per_node=N` the same command trains with DistributedDataParallel.",
    )
    p.add_argument("data", help="benchmark folder in the CDDB layout")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument(
        "--order",
        default="easy",
        help="easy, hard, long (the folder's benchmark.json, or CDDB's orders) or task folder "
        "names separated by commas",
    )
    p.add_argument("--method", default=d.method, choices=METHODS)
    p.add_argument("--epochs", type=int, default=d.epochs, help="per task")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="per step and process")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--memory", type=int, default=d.memory, help="exemplar images in all")
    p.add_argument("--aux-weight", type=float, default=d.aux_weight, help="auxiliary head loss")
    p.add_argument("--lora-rank", type=int, default=lora.rank)
    p.add_argument("--lora-scale", type=float, default=lora.scale, help="lora_alpha / rank")
    p.add_argument("--lora-dropout", type=float, default=lora.dropout)
    p.add_argument(
        "--lora-targets",
        default=lora.targets,
        help="regular expression matching whole module names of the backbone",
    )
    _add_backbone_options(p)
    add_run_folder_options(
        p,
        "continue the run in --out after its last finished task, with its settings; "
        "an --order that extends the run's order adds new tasks",
    )
    p.set_defaults(run=_train)


def _train(args) -> int:
    from sensorium.common.training_run import training_run
    from sensorium.lorax.harness import ContinualSettings
    from sensorium.lorax.methods import LoraSettings
    from sensorium.lorax.run import run_sequence

    settings = ContinualSettings(
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        memory=args.memory,
        aux_weight=args.aux_weight,
        seed=args.seed,
        lora=LoraSettings(
            rank=args.lora_rank,
            scale=args.lora_scale,
            dropout=args.lora_dropout,
            targets=args.lora_targets,
        ),
    )
    backbone = {"spec": args.backbone, "weights": args.backbone_weights}
    if args.image_size is not None:
        backbone["image_size"] = args.image_size
    with training_run(args) as ctx:
        metrics = run_sequence(
            Path(args.data), args.order, settings, backbone, Path(args.out), ctx, resume=args.resume
        )
        if ctx.is_main:
            print(_headline(metrics))
            print(f"results in {args.out}: accuracy_matrix.csv, metrics.json, accuracy.png")
    return 0


def _headline(m: dict) -> str:
    return (
        f"{m['method']} over {len(m['order'])} tasks: average incremental accuracy "
        f"{m['average_incremental_accuracy']:.2f}%, final {m['final_average_accuracy']:.2f}%, "
        f"backward transfer {m['backward_transfer']:+.2f}, real/fake "
        f"{m['final_binary_accuracy']:.2f}%; {m['extractor_share_of_backbone_percent']:.2f}% "
        "of the backbone's parameters trained per task"
    )


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------
def _add_evaluate(verbs) -> None:
    p = verbs.add_parser(
        "evaluate",
        help="score a run's final model on every task it learned",
        description="Reads the tasks the run in RUN_DIR learned from DATA (the same or another "
        "folder in the CDDB layout), prints attribution and real/fake accuracy per task and "
        "writes them as JSON.",
    )
    p.add_argument("run_dir", help="a `sensorium lorax train` run folder")
    p.add_argument("data", help="benchmark folder in the CDDB layout")
    p.add_argument("--out", default=None, help="JSON file; default RUN_DIR/evaluation.json")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.set_defaults(run=_evaluate)


def _evaluate(args) -> int:
    from sensorium.common.distributed import resolve_device
    from sensorium.lorax.data import read_tasks
    from sensorium.lorax.harness import evaluate_tasks
    from sensorium.lorax.run import restore_run

    setup_logging()
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise SensoriumError(f"run folder {str(run_dir)!r} does not exist")
    out = check_writable(Path(args.out or run_dir / "evaluation.json"), args.force)
    data, net, _, _ = restore_run(run_dir / "checkpoint.pt")
    device = resolve_device(args.device)
    tasks = read_tasks(Path(args.data), list(data["order"]), data["backbone"]["image_size"])
    net.to(device)
    attribution, binary = evaluate_tasks(net, tasks, data["settings"]["eval_batch"], device)
    rows = [
        {"task": t.name, "attribution_accuracy": 100 * a, "binary_accuracy": 100 * b}
        for t, a, b in zip(tasks, attribution, binary, strict=True)
    ]
    result = {
        "method": data["settings"]["method"],
        "data": str(args.data),
        "tasks": rows,
        "mean_attribution_accuracy": 100 * float(np.mean(attribution)),
        "mean_binary_accuracy": 100 * float(np.mean(binary)),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'task':<28} {'attribution %':>13} {'real/fake %':>11}")
    for row in rows:
        print(
            f"{row['task']:<28} {row['attribution_accuracy']:>13.2f} "
            f"{row['binary_accuracy']:>11.2f}"
        )
    print(
        f"{'mean':<28} {result['mean_attribution_accuracy']:>13.2f} "
        f"{result['mean_binary_accuracy']:>11.2f}\nwrote {out}"
    )
    return 0


# --------------------------------------------------------------------------------------------
# pretrain-backbone
# --------------------------------------------------------------------------------------------
def _add_pretrain(verbs) -> None:
    from sensorium.lorax.pretrain import PretrainSettings

    d = PretrainSettings()
    p = verbs.add_parser(
        "pretrain-backbone",
        help="pretrain the ViT backbone on held-out real images and generators (how the "
        "shipped one was made)",
    )
    p.add_argument("--out", required=True, help="run folder; the backbone is OUT/backbone.pt")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    p.set_defaults(run=_pretrain)


def _pretrain(args) -> int:
    from sensorium.lorax.backbone import ViTConfig, save_backbone
    from sensorium.lorax.build_data import BuildSettings, build_pretraining_set
    from sensorium.lorax.pretrain import PretrainSettings, pretrain_backbone

    if args.steps < 1 or args.batch_size < 1:
        raise SensoriumError("--steps and --batch-size must be 1 or more")
    run_dir = check_run_dir(Path(args.out), args.force)
    setup_logging(run_dir / "pretrain.log")
    images, labels = build_pretraining_set(BuildSettings(seed=args.seed), seed=args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    held = order[: max(1, len(images) // 10)]
    train = order[len(held) :]
    settings = PretrainSettings(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed
    )
    config = ViTConfig()
    vit, record = pretrain_backbone(
        images[train], labels[train], config, settings, held_out=(images[held], labels[held])
    )
    save_backbone(vit, run_dir / "backbone.pt", record)
    (run_dir / "pretrain.json").write_text(
        json.dumps({"config": config.to_dict(), **record}, indent=2) + "\n"
    )
    print(
        f"pretrained in {record['seconds']:.0f} s: held-out source accuracy "
        f"{100 * record['held_out_source_accuracy']:.1f}%, rotation "
        f"{100 * record['held_out_rotation_accuracy']:.1f}%; backbone: {run_dir / 'backbone.pt'}"
    )
    return 0
