"""`sensorium phai pretrain | probe | embed`."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sensorium.common.cli_options import add_run_options, add_system
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_run_dir, check_writable

logger = logging.getLogger(__name__)

WEIGHTS = Path(__file__).parent / "weights"
SHIPPED = {
    "shipped": WEIGHTS / "principle_encoder.pt",
    "contrastive": WEIGHTS / "contrastive_encoder.pt",
}


def register(systems: argparse._SubParsersAction) -> None:
    add_system(
        systems,
        "phai",
        "principle-driven signal encoder: pretrain on RF, probe frozen features across modalities",
        [_add_pretrain, _add_probe, _add_embed],
    )


def checkpoint_path(name: str) -> Path:
    """A checkpoint path, or one of the shipped encoders by name ("shipped", "contrastive")."""
    return SHIPPED.get(name, Path(name))


def _floats(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc


# --------------------------------------------------------------------------------------------
# pretrain
# --------------------------------------------------------------------------------------------
def _add_pretrain(verbs) -> None:
    from sensorium.phai.encoder import EncoderConfig
    from sensorium.phai.pretrain import PretrainSettings
    from sensorium.phai.principles import ALL_LOSSES, PRINCIPLE_LOSSES

    d = PretrainSettings(out="")
    m = EncoderConfig()
    p = verbs.add_parser(
        "pretrain",
        help="pretrain the encoder on synthetic RF signals only",
        description="Draw synthetic RF signals (many modulation families, emitters, channels "
        "and SNRs) and pretrain the encoder with the chosen losses. Runs under torchrun.",
    )
    add_run_options(p, d.steps, d.batch_size, d.lr, d.eval_every)
    p.add_argument(
        "--losses",
        default=",".join(PRINCIPLE_LOSSES),
        help=f"comma-separated, from {', '.join(ALL_LOSSES)}; 'contrastive' alone is the "
        "plain-contrastive baseline",
    )
    p.add_argument(
        "--train-signals", type=int, default=d.signals, help="RF signals drawn for training"
    )
    p.add_argument("--emitters", type=int, default=d.emitters)
    p.add_argument("--snr", type=_floats, nargs=2, default=(d.snr_low, d.snr_high), metavar="DB")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--window", type=int, default=m.length, help="encoder window, samples")
    p.add_argument("--embed-dim", type=int, default=m.embed_dim)
    p.add_argument("--hidden", type=int, default=m.hidden)
    p.add_argument(
        "--time-channels", default=",".join(map(str, m.time_channels)), help="per conv layer"
    )
    p.add_argument("--freq-channels", default=",".join(map(str, m.freq_channels)))
    p.add_argument("--freq-features", type=int, default=m.freq_features)
    p.set_defaults(run=_pretrain)


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise SensoriumError(f"{what} {text!r}; expected comma-separated integers") from exc
    if not values or min(values) < 1:
        raise SensoriumError(f"{what} {text!r}; expected integers >= 1")
    return values


def _pretrain(args) -> int:
    from sensorium.common.training_run import (
        RUN_OUTPUTS,
        saved_settings,
        training_run,
        write_settings,
    )
    from sensorium.phai.encoder import EncoderConfig
    from sensorium.phai.pretrain import EncoderPretrainer, PretrainSettings
    from sensorium.phai.principles import LossWeights

    model = EncoderConfig(
        length=args.window,
        embed_dim=args.embed_dim,
        hidden=args.hidden,
        time_channels=_int_list(args.time_channels, "--time-channels"),
        freq_channels=_int_list(args.freq_channels, "--freq-channels"),
        freq_features=args.freq_features,
    )
    losses = LossWeights.only([s.strip() for s in args.losses.split(",") if s.strip()])
    settings = PretrainSettings(
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        signals=args.train_signals,
        emitters=args.emitters,
        snr_low=args.snr[0],
        snr_high=args.snr[1],
        eval_every=args.eval_every,
        seed=args.seed,
        losses=losses,
        model=model,
    )
    if args.resume:
        saved = saved_settings(Path(args.out))
        try:
            settings = replace(
                settings,
                signals=saved["signals"],
                emitters=saved["emitters"],
                snr_low=saved["snr_low"],
                snr_high=saved["snr_high"],
                seed=saved["seed"],
                losses=LossWeights(**saved["losses"]),
                model=EncoderConfig.from_dict(saved["model"]),
            )
        except (KeyError, TypeError) as exc:
            raise SensoriumError(f"cannot resume: settings.json is damaged ({exc!r})") from exc
    with training_run(args, clear=RUN_OUTPUTS) as ctx:
        trainer = EncoderPretrainer(settings, ctx, resume=args.resume)
        write_settings(Path(args.out), settings, ctx)
        summary = trainer.train()
        if ctx.is_main:
            print(
                f"pretrained {summary['steps']} steps in {summary['seconds']:.0f} s; "
                f"validation loss {summary['val_loss']:.3f}; "
                f"encoder: {Path(args.out) / 'encoder.pt'}"
            )
    return 0


# --------------------------------------------------------------------------------------------
# probe
# --------------------------------------------------------------------------------------------
BASELINES = ("random", "contrastive", "spectrum", "raw")


def _add_probe(verbs) -> None:
    from sensorium.phai.tasks import TASKS

    p = verbs.add_parser(
        "probe",
        help="linear probes of a frozen encoder and the baselines on every task",
        description="Build the probe tasks, embed them with the frozen encoder CHECKPOINT "
        "('shipped' for the encoder in the package) and the baselines, fit a logistic "
        "regression per task and feature kind, and write results.csv, summary.json, table.md "
        "and accuracy.png.",
    )
    p.add_argument("checkpoint", help="encoder checkpoint (.pt) or 'shipped'")
    p.add_argument("--tasks", default="all", help=f"'all' or some of: {', '.join(TASKS)}")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="comma-separated, from random, contrastive, spectrum, raw; 'none' for none",
    )
    p.add_argument(
        "--contrastive",
        default="contrastive",
        help="the plain-contrastive encoder: a checkpoint, or 'contrastive' for the shipped one",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiplies examples per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    p.set_defaults(run=_probe)


def _parse_baselines(text: str) -> list[str]:
    if text.strip() == "none":
        return []
    names = [s.strip() for s in text.split(",")]
    unknown = [n for n in names if n not in BASELINES]
    if unknown or len(set(names)) < len(names):
        raise SensoriumError(
            f"baselines {text!r}; expected each of {', '.join(BASELINES)} at most once, "
            "comma-separated, or 'none'"
        )
    return names


def _probe(args) -> int:
    import torch
    from tqdm import tqdm

    from sensorium.common.distributed import resolve_device
    from sensorium.phai.encoder import PrincipleEncoder, parameter_count
    from sensorium.phai.pretrain import load_encoder
    from sensorium.phai.probe import encoder_features, probe_task, raw_features, spectrum_features
    from sensorium.phai.report import markdown_table, write_report
    from sensorium.phai.tasks import build_task, parse_tasks

    setup_logging()
    names = parse_tasks(args.tasks)
    baselines = _parse_baselines(args.baselines)
    if not 0 < args.scale <= 10:
        raise SensoriumError(f"--scale {args.scale!r} must be in (0, 10]")
    if not 0 <= args.seed < 2**32:
        raise SensoriumError(f"--seed {args.seed} must be from 0 to {2**32 - 1}")
    device = str(resolve_device(args.device))
    encoder, data = load_encoder(checkpoint_path(args.checkpoint), device)
    featurizers = {"principle": encoder_features(encoder, device=device)}
    if "contrastive" in baselines:
        other, _ = load_encoder(checkpoint_path(args.contrastive), device)
        if other.config != encoder.config:
            raise SensoriumError(
                f"contrastive encoder {args.contrastive!r} has other settings than "
                f"{args.checkpoint!r}; the baseline must share the architecture"
            )
        featurizers["contrastive"] = encoder_features(other, device=device)
    if "random" in baselines:
        torch.manual_seed(args.seed)
        featurizers["random"] = encoder_features(PrincipleEncoder(encoder.config), device=device)
    if "spectrum" in baselines:
        featurizers["spectrum"] = spectrum_features
    if "raw" in baselines:
        featurizers["raw"] = raw_features
    out = check_run_dir(Path(args.out), args.force, resumable=False)
    setup_logging(out / "probe.log")
    started = time.perf_counter()
    results, sources = [], {}
    for name in tqdm(names, desc="probe tasks", unit="task"):
        task = build_task(name, encoder.config.length, args.seed, args.scale)
        sources[name] = task.source
        results += probe_task(task, featurizers, args.seed, progress=True)
    extra = {
        "checkpoint": str(args.checkpoint),
        "encoder_parameters": parameter_count(encoder),
        "pretraining_losses": [
            k for k, v in data.get("losses", {}).items() if k != "temperature" and v
        ],
        "seconds": time.perf_counter() - started,
        "sources": sources,
    }
    write_report(results, out, extra)
    print(markdown_table(results), end="")
    print(f"results: {out / 'table.md'}, {out / 'accuracy.png'}")
    return 0


# --------------------------------------------------------------------------------------------
# embed
# --------------------------------------------------------------------------------------------
def _add_embed(verbs) -> None:
    p = verbs.add_parser(
        "embed",
        help="embed your own signals (WAV/FLAC/OGG audio, NumPy arrays) with a frozen encoder",
        description="Each signal is cut into the encoder's windows and its embedding is the "
        "mean over them. .npy: a 1-D array (real, or complex I/Q), a (2, N) array of I and Q, "
        "or an (M, N) array of M signals. Audio is mixed to mono and resampled to 8 kHz.",
    )
    p.add_argument("files", nargs="+", help="signal files")
    p.add_argument("--out", required=True, help="embeddings .npy; names go beside it as .json")
    p.add_argument("--checkpoint", default="shipped", help="encoder checkpoint or 'shipped'")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_embed)


def _embed(args) -> int:
    from sensorium.common.distributed import resolve_device
    from sensorium.phai.pretrain import load_encoder
    from sensorium.phai.probe import encoder_features
    from sensorium.phai.signals import read_signal_file, windows

    setup_logging()
    out = Path(args.out)
    if out.suffix != ".npy":
        raise SensoriumError(f"--out {str(out)!r} must end in .npy")
    check_writable(out, args.force)
    check_writable(out.with_suffix(".json"), args.force)
    device = str(resolve_device(args.device))
    encoder, _ = load_encoder(checkpoint_path(args.checkpoint), device)
    length = encoder.config.length
    signals = [item for f in args.files for item in read_signal_file(Path(f))]
    embed = encoder_features(encoder, device=device)
    rows, names, counts = [], [], []
    for name, signal in signals:
        w = windows(signal, length, f"signal {name!r}")  # (W, 2, T)
        rows.append(embed(w[None])[0])
        names.append(name)
        counts.append(len(w))
    embeddings = np.stack(rows)  # (signals, D + 1)
    np.save(out, embeddings)
    meta = {
        "signals": names,
        "windows": counts,
        "checkpoint": str(args.checkpoint),
        "window": length,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"embedded {len(names)} signals as {embeddings.shape} into {out}")
    return 0
