"""The RF generator, the encoder's symmetries, the principle losses and the signal rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.phai import rf
from sensorium.phai.encoder import EncoderConfig, PrincipleEncoder, parameter_count
from sensorium.phai.principles import (
    ALL_LOSSES,
    LossWeights,
    PretrainHeads,
    as_channels,
    as_complex,
    pretraining_losses,
    shift_frequency,
    spectrum_target,
)
from sensorium.phai.signals import analytic, read_signal_file, windows
from tests.conftest import write_tone

TINY = EncoderConfig(
    length=256, time_channels=(8, 8), stft_bins=32, stft_hop=16, freq_channels=(4,),
    freq_features=16, hidden=32, embed_dim=16,
)  # fmt: skip


# ------------------------------------------------------------------------------------------
# RF
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(rf.MODULATIONS))
def test_every_modulation_has_unit_power(name):
    x = rf.modulate([name] * 5, 512, np.random.default_rng(0))
    assert x.shape == (5, 512) and np.all(np.isfinite(x))
    np.testing.assert_allclose(np.mean(np.abs(x) ** 2, axis=1), 1.0, rtol=1e-6)


def test_root_raised_cosine_pair_has_no_intersymbol_interference():
    sps_, beta = 4, 0.35
    taps = rf.rrc_taps(beta, sps_, span=16)
    pulse = np.convolve(taps, taps)  # raised cosine
    centre = len(pulse) // 2
    at_symbols = pulse[centre % sps_ :: sps_]
    peak = np.argmax(np.abs(at_symbols))
    others = np.delete(at_symbols, peak)
    assert np.max(np.abs(others)) < 0.01 * at_symbols[peak]


def test_emitter_without_impairments_changes_nothing():
    n = 3
    zeros = np.zeros(n)
    ideal = rf.Emitters(
        gain_imbalance=zeros, phase_imbalance=zeros, dc_offset=zeros.astype(complex),
        saturation=np.full(n, 1e9), smoothness=np.ones(n), am_pm=zeros, phase_noise=zeros,
        frequency_offset=zeros, drift=zeros,
    )  # fmt: skip
    x = rf.modulate(["qpsk", "ofdm", "fm"], 256, np.random.default_rng(1))
    y = rf.apply_emitter(x, ideal, np.arange(n), np.random.default_rng(2))
    np.testing.assert_allclose(y, x, atol=1e-9)


def test_emitters_differ_by_seed_and_leave_a_fingerprint():
    a, b = rf.make_emitters(4, 0), rf.make_emitters(4, 1)
    assert not np.allclose(a.gain_imbalance, b.gain_imbalance)
    np.testing.assert_array_equal(a.gain_imbalance, rf.make_emitters(4, 0).gain_imbalance)
    x = rf.modulate(["qpsk"] * 2, 256, np.random.default_rng(3))
    y = rf.apply_emitter(x, a, np.array([0, 1]), np.random.default_rng(4))
    assert not np.allclose(y, x)


def test_channel_noise_matches_the_requested_snr():
    rng = np.random.default_rng(5)
    x = np.ones((400, 2048), complex)
    snr = np.full(400, 10.0)
    y = rf.apply_channel(x, snr, rng, multipath=False)
    scale = np.abs(np.mean(y, axis=1))  # the constant signal survives as the mean
    noise = y - np.mean(y, axis=1, keepdims=True)
    measured = 10 * np.log10(scale**2 / np.mean(np.abs(noise) ** 2, axis=1))
    assert abs(np.median(measured) - 10.0) < 0.3


# ------------------------------------------------------------------------------------------
# encoder and losses
# ------------------------------------------------------------------------------------------
def test_default_encoder_has_about_two_million_parameters():
    count = parameter_count(PrincipleEncoder(EncoderConfig()))
    assert 1.8e6 < count < 2.3e6


def test_amplitude_scaling_moves_only_the_log_rms_entry():
    torch.manual_seed(0)
    encoder = PrincipleEncoder(TINY).eval()
    x = torch.randn(3, 2, 256, dtype=torch.float64)
    encoder = encoder.double()
    with torch.no_grad():
        a, b = encoder(x), encoder(7.0 * x)
    torch.testing.assert_close(b[:, :-1], a[:, :-1])
    torch.testing.assert_close(b[:, -1] - a[:, -1], torch.full((3,), math.log(7.0), dtype=a.dtype))


def test_encoder_refuses_the_wrong_shape():
    encoder = PrincipleEncoder(TINY)
    with pytest.raises(SensoriumError, match="expected"):
        encoder(torch.randn(2, 2, 100))


def test_spectrum_target_obeys_parseval():
    x = torch.randn(4, 2, 256, dtype=torch.float64)
    target = spectrum_target(x, 32)
    torch.testing.assert_close(target.sum(-1), x.pow(2).sum(1).mean(-1))


def test_a_shift_of_one_band_rolls_the_spectrum_by_one():
    x = torch.randn(2, 2, 256, dtype=torch.float64)
    shifted = as_channels(shift_frequency(as_complex(x), torch.tensor([1.0, -2.0]), 32))
    before, after = spectrum_target(x, 32), spectrum_target(shifted, 32)
    torch.testing.assert_close(after[0], torch.roll(before[0], 1))
    torch.testing.assert_close(after[1], torch.roll(before[1], -2))


def test_loss_weights_switch_losses_and_refuse_bad_values():
    assert LossWeights.only(["contrastive"]).active() == ["contrastive"]
    with pytest.raises(SensoriumError, match="unknown loss"):
        LossWeights.only(["fourier", "magic"])
    with pytest.raises(SensoriumError, match="no loss chosen"):
        LossWeights.only([])
    with pytest.raises(SensoriumError, match="every loss is switched off"):
        LossWeights(**dict.fromkeys(ALL_LOSSES, 0.0))
    with pytest.raises(SensoriumError, match="finite"):
        LossWeights(fourier=float("nan"))


def test_losses_train_the_encoder():
    torch.manual_seed(0)
    encoder = PrincipleEncoder(TINY)
    heads = PretrainHeads(encoder.dim, 32)
    batch = rf.random_rf(32, 256, np.random.default_rng(0), rf.make_emitters(4, 0))
    x = torch.from_numpy(np.stack([batch.signals.real, batch.signals.imag], 1))
    weights = LossWeights()
    losses = pretraining_losses(encoder, heads, x, weights)
    assert set(losses) == {*weights.active(), "total"} and torch.isfinite(losses["total"])
    params = [*encoder.parameters(), *heads.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    first = None
    for _ in range(40):
        losses = pretraining_losses(encoder, heads, x, LossWeights.only(["fourier", "parseval"]))
        first = first if first is not None else losses["total"].item()
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    assert losses["total"].item() < 0.5 * first


def test_contrastive_baseline_uses_the_contrastive_loss_alone():
    torch.manual_seed(0)
    encoder = PrincipleEncoder(TINY)
    heads = PretrainHeads(encoder.dim, 32)
    x = torch.randn(8, 2, 256)
    losses = pretraining_losses(encoder, heads, x, LossWeights.only(["contrastive"]))
    torch.testing.assert_close(losses["total"], losses["contrastive"])
    assert set(losses) == {"contrastive", "total"}


# ------------------------------------------------------------------------------------------
# signal rules and files
# ------------------------------------------------------------------------------------------
def test_real_signals_become_their_analytic_signal():
    x = np.cos(2 * np.pi * 8 * np.arange(256) / 256) + 3.0
    z = analytic(x)
    np.testing.assert_allclose(z.real, x - 3.0, atol=1e-9)
    np.testing.assert_allclose(z.imag, np.sin(2 * np.pi * 8 * np.arange(256) / 256), atol=1e-9)


def test_windows_cut_long_signals_and_refuse_short_or_non_finite_ones():
    w = windows(np.arange(700, dtype=float), 256)
    assert w.shape == (2, 2, 256) and w.dtype == np.float32
    c = windows(np.exp(1j * np.arange(512)), 256)
    np.testing.assert_allclose(c[1, 0], np.cos(np.arange(256, 512)), atol=1e-5)
    with pytest.raises(SensoriumError, match="shorter than the encoder's window"):
        windows(np.zeros(100), 256)
    with pytest.raises(SensoriumError, match="NaN or infinite"):
        windows(np.full(300, np.nan), 256)


def test_signal_files_of_every_kind(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.5, 16000, 440)
    (name, wave), = read_signal_file(wav)  # fmt: skip
    assert name == str(wav) and len(wave) == 4000  # resampled to 8 kHz
    np.save(tmp_path / "iq.npy", np.stack([np.ones(300), np.zeros(300)]))
    (_, iq), = read_signal_file(tmp_path / "iq.npy")  # fmt: skip
    assert np.iscomplexobj(iq) and len(iq) == 300
    np.save(tmp_path / "many.npy", np.zeros((3, 400)))
    assert read_signal_file(tmp_path / "many.npy")[-1][0] == f"{tmp_path / 'many.npy'}[2]"
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(SensoriumError, match="cannot read NumPy file"):
        read_signal_file(tmp_path / "bad.npy")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SensoriumError, match="unknown kind"):
        read_signal_file(tmp_path / "notes.txt")
    with pytest.raises(SensoriumError, match="does not exist"):
        read_signal_file(tmp_path / "missing.wav")


def test_half_precision_copy_embeds_like_the_original(tmp_path):
    from sensorium.common.checkpoints import save_checkpoint
    from sensorium.phai.encoder import CHECKPOINT_KIND
    from sensorium.phai.pretrain import half_precision_copy, load_encoder

    torch.manual_seed(0)
    encoder = PrincipleEncoder(TINY)
    save_checkpoint(
        tmp_path / "full.pt",
        CHECKPOINT_KIND,
        {"config": TINY.to_dict(), "model": encoder.state_dict()},
    )
    half_precision_copy(tmp_path / "full.pt", tmp_path / "half.pt")
    assert (tmp_path / "half.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    full, _ = load_encoder(tmp_path / "full.pt")
    half, _ = load_encoder(tmp_path / "half.pt")
    x = torch.randn(4, 2, 256)
    with torch.no_grad():
        a, b = full(x), half(x)
    assert b.dtype == torch.float32
    torch.testing.assert_close(b, a, atol=2e-2, rtol=2e-2)
