"""The WaveNet shipped in the package, on the real speech corpus the set-up installs."""

from __future__ import annotations

import json

import soundfile
import torch

from sensorium.cli import main
from sensorium.data.audio import DEFAULT_SPEECH_DIR, load_audio
from sensorium.fastgen.features import MelSettings, log_mel
from sensorium.fastgen.mulaw import mulaw_encode
from sensorium.fastgen.wavenet_generate import SHIPPED_WAVENET
from sensorium.fastgen.wavenet_train import bits_per_sample, load_wavenet


def test_shipped_model_is_small_and_predicts_held_out_speech():
    assert SHIPPED_WAVENET.stat().st_size < 5_000_000
    model, checkpoint = load_wavenet(SHIPPED_WAVENET)
    assert model.config.local_channels == checkpoint["mel"]["n_mels"]
    recording = DEFAULT_SPEECH_DIR / checkpoint["val_files"][0]
    mel = MelSettings(**checkpoint["mel"])
    audio = load_audio(recording, model.config.sample_rate)
    x = mulaw_encode(torch.from_numpy(audio))[None]
    frames = torch.from_numpy(log_mel(audio, mel))[None]
    with torch.no_grad():
        bits = float(bits_per_sample(model(x[:, :-1], local=frames), x[:, 1:]))
    # A model that learned nothing scores log2(256) = 8 bits per sample; the shipped one
    # scored about 4.6 on its validation crops (docs/wavenet.md).
    assert bits < 5.5


def test_demo_writes_audio_plot_and_speeds(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["wavenet", "demo", "--out", str(out), "--seconds", "0.25",
                 "--naive-samples", "20"])  # fmt: skip
    assert code == 0
    audio, rate = soundfile.read(out / "generated.wav")
    assert rate == 8000 and audio.shape == (2000,)
    assert (out / "generated.png").stat().st_size > 10_000
    speed = json.loads((out / "speed.json").read_text())
    assert speed["cached_samples_per_s"] > 0 and speed["naive_samples_per_s"] > 0
    printed = capsys.readouterr().out
    assert "naive sampler" in printed and "cached sampler" in printed
    assert main(["wavenet", "demo", "--out", str(out)]) == 2  # outputs exist: needs --force
