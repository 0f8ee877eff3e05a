"""`sensorium wavenet train | generate | demo`."""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from sensorium.common.cli_options import add_run_options, add_sampling_options, add_system
from sensorium.common.errors import SensoriumError
from sensorium.common.logging import setup_logging
from sensorium.common.outputs import check_writable
from sensorium.data.audio import DEFAULT_SPEECH_DIR, load_audio, save_audio
from sensorium.fastgen.wavenet_samplers import SAMPLERS

logger = logging.getLogger(__name__)


def register(systems: argparse._SubParsersAction) -> None:
    add_system(
        systems,
        "wavenet",
        "WaveNet with fast cached generation",
        [_add_train, _add_generate, _add_demo],
    )


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def _add_train(verbs) -> None:
    p = verbs.add_parser(
        "train",
        help="train on a folder of WAV/FLAC/OGG recordings (runs under torchrun too)",
        description="Train a WaveNet on recordings. Under `torchrun --nproc_per_node=N` the "
        "same command trains with DistributedDataParallel.",
    )
    p.add_argument(
        "data_dir",
        nargs="?",
        default=str(DEFAULT_SPEECH_DIR),
        help=f"folder (or file) of recordings; default: {DEFAULT_SPEECH_DIR}",
    )
    add_run_options(p, steps=2000, batch_size=8, lr=1e-3, eval_every=250)
    p.add_argument("--crop", type=int, default=4000, help="crop length in samples")
    p.add_argument("--val-fraction", type=float, default=0.05, help="files held out")
    p.add_argument(
        "--conditioning",
        default="none",
        choices=("none", "mel", "folders", "mel+folders"),
        help="mel: log-mel frames of the recording (a vocoder); folders: one global id per "
        "folder below DATA_DIR (speakers, say)",
    )
    p.add_argument("--residual-channels", type=int, default=64)
    p.add_argument("--gate-channels", type=int, default=64)
    p.add_argument("--skip-channels", type=int, default=128)
    p.add_argument("--kernel-size", type=int, default=2)
    p.add_argument("--layers", type=int, default=10, help="layers per stack (dilations 1..2^(n-1))")
    p.add_argument("--stacks", type=int, default=2)
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--mel-bins", type=int, default=40)
    p.add_argument("--hop", type=int, default=80, help="samples per mel frame")
    p.set_defaults(run=_train)


def _train(args) -> int:
    from sensorium.common.training_run import (
        RUN_OUTPUTS,
        saved_settings,
        training_run,
        write_settings,
    )
    from sensorium.fastgen.features import MelSettings
    from sensorium.fastgen.wavenet import WaveNetConfig
    from sensorium.fastgen.wavenet_train import TrainSettings, WaveNetTrainer

    model = WaveNetConfig(
        residual_channels=args.residual_channels,
        gate_channels=args.gate_channels,
        skip_channels=args.skip_channels,
        kernel_size=args.kernel_size,
        layers_per_stack=args.layers,
        stacks=args.stacks,
        sample_rate=args.sample_rate,
        local_hop=args.hop,
    )
    mel = MelSettings(sample_rate=args.sample_rate, hop=args.hop, n_mels=args.mel_bins)
    settings = TrainSettings(
        data_dir=str(Path(args.data_dir).resolve()),
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        val_fraction=args.val_fraction,
        eval_every=args.eval_every,
        seed=args.seed,
        conditioning=args.conditioning,
        model=model,
        mel=mel if "mel" in args.conditioning else None,
    )
    if args.resume:  # the model and its data as the run began; the schedule from this command
        saved = saved_settings(Path(args.out))
        try:
            settings = replace(
                settings,
                data_dir=saved["data_dir"],
                conditioning=saved["conditioning"],
                crop=saved["crop"],
                val_fraction=saved["val_fraction"],
                seed=saved["seed"],
                model=WaveNetConfig.from_dict(saved["model"]),
                mel=MelSettings(**saved["mel"]) if saved["mel"] else None,
            )
        except (KeyError, TypeError) as exc:
            raise SensoriumError(
                f"cannot resume: settings.json in {args.out!r} lacks {exc}"
            ) from exc
    with training_run(args, clear=RUN_OUTPUTS) as ctx:
        trainer = WaveNetTrainer(settings, ctx, resume=args.resume)
        write_settings(Path(args.out), settings, ctx)
        summary = trainer.train()
        if ctx.is_main:
            print(
                f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; "
                f"validation {summary['val_bits_per_sample']:.3f} bits/sample; "
                f"model: {Path(args.out) / 'model.pt'}"
            )
    return 0


# --------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------
def _add_generation_options(p, choose_sampler: bool = True) -> None:
    add_sampling_options(
        p,
        SAMPLERS if choose_sampler else None,
        "naive: a full pass per sample; cached: layer queues (compiled on the CPU)",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0: greedy")


def _add_generate(verbs) -> None:
    p = verbs.add_parser(
        "generate",
        help="generate audio from a checkpoint",
        description="Generate audio. With --batch B > 1 the streams are written as B mono "
        "files OUT_0.wav ... OUT_{B-1}.wav.",
    )
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        help="model.pt or checkpoint.pt of a run; default: the speech model shipped with sensorium",
    )
    p.add_argument("--out", required=True, help="output WAV path")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="seconds to generate (default 2, or the length of --local)",
    )
    p.add_argument("--batch", type=int, default=1, help="independent streams")
    p.add_argument("--prime", default=None, help="a recording to continue")
    p.add_argument("--prime-seconds", type=float, default=1.0, help="how much of --prime to use")
    p.add_argument("--global-id", type=int, default=None, help="speaker or class id")
    p.add_argument(
        "--local",
        default=None,
        help="conditioning: a recording (its log-mel) or a .npy of frames (C, F)",
    )
    p.add_argument("--plot", default=None, help="PNG of waveform and spectrogram (default OUT.png)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    _add_generation_options(p)
    p.set_defaults(run=_generate)


def _output_paths(out: Path, batch: int) -> list[Path]:
    if out.suffix.lower() != ".wav":
        raise SensoriumError(f"output {str(out)!r} must end in .wav")
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(batch)]


def _generate(args) -> int:
    from sensorium.fastgen.plots import plot_waveforms
    from sensorium.fastgen.wavenet_generate import SHIPPED_WAVENET, GenerateSettings, generate_audio
    from sensorium.fastgen.wavenet_train import load_wavenet

    setup_logging()
    settings = GenerateSettings(
        seconds=args.seconds if args.seconds is not None or args.local else 2.0,
        batch=args.batch,
        seed=args.seed,
        temperature=args.temperature,
        sampler=args.sampler,
        dtype=args.dtype,
        prime=args.prime,
        prime_seconds=args.prime_seconds,
        global_id=args.global_id,
        local=args.local,
    )
    out = Path(args.out)
    wavs = _output_paths(out, args.batch)
    plot = None if args.no_plot else Path(args.plot or out.with_suffix(".png"))
    for path in [*wavs, *([plot] if plot else [])]:
        check_writable(path, args.force)
    model, checkpoint = load_wavenet(Path(args.checkpoint or SHIPPED_WAVENET), args.device)
    rate = model.config.sample_rate
    with tqdm(
        desc=f"generating ({args.sampler})", unit="sample", unit_scale=True, delay=0.5
    ) as bar:
        audio, summary = generate_audio(model, checkpoint, settings, progress=bar.update)
    for path, stream in zip(wavs, audio, strict=True):
        save_audio(path, stream, rate)
    if plot is not None:
        plot_waveforms(plot, [(p.name, a) for p, a in zip(wavs[:4], audio[:4], strict=True)], rate)
    print(
        f"wrote {', '.join(str(p) for p in wavs)} ({audio.shape[1] / rate:.2f} s each) with the "
        f"{summary['sampler']} at {summary['samples_per_second']:.0f} samples/s"
        + (f"; plot {plot}" if plot else "")
    )
    return 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------
def _add_demo(verbs) -> None:
    p = verbs.add_parser(
        "demo",
        help="the shipped speech model on a real recording: audio, plot, naive vs cached speed",
    )
    p.add_argument("--out", default="wavenet-demo", help="output folder")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument(
        "--naive-samples",
        type=int,
        default=400,
        help="samples the naive sampler generates for its speed",
    )
    _add_generation_options(p, choose_sampler=False)
    p.set_defaults(run=_demo)


def _demo(args) -> int:
    from sensorium.fastgen.plots import plot_waveforms
    from sensorium.fastgen.wavenet_generate import SHIPPED_WAVENET, GenerateSettings, generate_audio
    from sensorium.fastgen.wavenet_train import load_wavenet

    setup_logging()
    out = Path(args.out)
    wav, png, report = out / "generated.wav", out / "generated.png", out / "speed.json"
    for path in (wav, png, report):
        check_writable(path, args.force)
    if args.naive_samples < 1:
        raise SensoriumError(f"--naive-samples {args.naive_samples} must be >= 1")
    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise SensoriumError(f"--seconds {args.seconds} must be a number > 0")
    model, checkpoint = load_wavenet(SHIPPED_WAVENET)
    rate = model.config.sample_rate
    recording = _demo_recording(checkpoint)
    real = load_audio(recording, rate)[: int(args.seconds * rate)]
    base = dict(seed=args.seed, temperature=args.temperature, dtype=args.dtype)
    local = str(recording) if model.config.local_channels else None
    # The recording's own mel frames drive the model: it speaks that sentence again.
    cached = GenerateSettings(seconds=real.shape[0] / rate, sampler="cached", local=local, **base)
    with tqdm(desc="generating (cached)", unit="sample", unit_scale=True, delay=0.5) as bar:
        audio, fast = generate_audio(model, checkpoint, cached, progress=bar.update)
    save_audio(wav, audio[0], rate)
    plot_waveforms(png, [("real recording", real), ("generated (cached sampler)", audio[0])], rate)

    naive = GenerateSettings(
        seconds=args.naive_samples / rate, sampler="naive", local=local, **base
    )
    with tqdm(total=args.naive_samples, desc="timing the naive sampler", unit="sample") as bar:
        _, slow = generate_audio(model, checkpoint, naive, progress=bar.update)
    speed = {
        "model_receptive_field": model.config.receptive_field,
        "cached_samples_per_s": fast["samples_per_second"],
        "naive_samples_per_s": slow["samples_per_second"],
        "speedup": fast["samples_per_second"] / slow["samples_per_second"],
        "recording": str(recording),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    report.write_text(json.dumps(speed, indent=2) + "\n")
    print(f"conditioned on {recording} ({real.shape[0] / rate:.2f} s of real speech)")
    print(f"wrote {wav} and {png}")
    print(
        f"naive sampler:  {speed['naive_samples_per_s']:10.0f} samples/s\n"
        f"cached sampler: {speed['cached_samples_per_s']:10.0f} samples/s "
        f"({speed['speedup']:.0f}x faster; real time at {rate} Hz is {rate} samples/s)"
    )
    return 0


def _demo_recording(checkpoint: dict) -> Path:
    """A real recording the shipped model did not train on: a validation file of its run."""
    for name in checkpoint.get("val_files", []):
        path = DEFAULT_SPEECH_DIR / name
        if path.is_file():
            return path
    raise SensoriumError(
        f"the demo reads real speech from {DEFAULT_SPEECH_DIR}; install the Debian package "
        "asterisk-core-sounds-en-wav (make setup does)"
    )
