"""The cached samplers against the naive full-pass reference."""

from __future__ import annotations

import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.wavenet_samplers import (
    EagerCachedSampler,
    FusedCachedSampler,
    NaiveSampler,
    make_sampler,
)
from tests.fastgen.helpers import conditioning, small_wavenet

CONDITIONINGS = {
    "none": {},
    "global": {"global_classes": 3},
    "local": {"local_channels": 5},
    "both": {"global_classes": 3, "local_channels": 5},
}


@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("cond", list(CONDITIONINGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cached_step_logits_equal_full_pass(kernel_size, cond, dtype):
    """Teacher-forced: prime on a prefix, step through the rest, compare every position."""
    model = small_wavenet(kernel_size, dtype=dtype, **CONDITIONINGS[cond])
    B, T, P = 3, 60, 17
    x = torch.randint(
        0, model.config.quantization, (B, T), generator=torch.Generator().manual_seed(1)
    )
    gid, local = conditioning(model, B)
    full = model(x, gid, local)  # (B, Q, T)

    sampler = EagerCachedSampler(model)
    frame_bias = model.frame_bias(gid, local, B)
    with torch.no_grad():
        stepped = [sampler.prime(x[:, :P], frame_bias)]
        for t in range(P, T):
            frame = (
                0
                if frame_bias is None or frame_bias.shape[1] == 1
                else int(model.frame_index(torch.tensor(t), frame_bias.shape[1]))
            )
            bias = None if frame_bias is None else frame_bias[:, frame]
            stepped.append(sampler.step(x[:, t], t, bias))
    stepped = torch.stack(stepped, dim=2)  # (B, Q, T - P + 1)
    # float32: the full pass sums each conv in another order than the step's matrix products;
    # logits of size ~10 then differ by a few ulps per layer, well under 1e-4. float64: 1e-10.
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(stepped, full[:, :, P - 1 :], atol=tol, rtol=tol)


@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("cond", list(CONDITIONINGS))
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("primed", [False, True])
def test_samplers_draw_identical_samples_in_float64(kernel_size, cond, batch, primed):
    model = small_wavenet(kernel_size, **CONDITIONINGS[cond])
    gid, local = conditioning(model, batch)
    prime = None
    if primed:
        prime = torch.randint(0, 32, (batch, 25), generator=torch.Generator().manual_seed(3))
    outputs = {}
    for seed in (0, 1, 2):
        for sampler_cls in (NaiveSampler, EagerCachedSampler, FusedCachedSampler):
            out = sampler_cls(model).generate(
                120, batch=batch, seed=seed, prime=prime, global_id=gid, local=local
            )
            outputs[seed, sampler_cls.__name__] = out
        naive = outputs[seed, "NaiveSampler"]
        assert torch.equal(outputs[seed, "EagerCachedSampler"], naive)
        assert torch.equal(outputs[seed, "FusedCachedSampler"], naive)
    # Different seeds give different samples: the comparison above is not vacuous.
    assert not torch.equal(outputs[0, "NaiveSampler"], outputs[1, "NaiveSampler"])


@pytest.mark.parametrize("temperature", [0.0, 0.6, 1.7])
def test_temperatures_agree_between_samplers(temperature):
    model = small_wavenet(3, global_classes=3)
    gid, _ = conditioning(model, 2)
    naive = NaiveSampler(model).generate(
        80, batch=2, seed=4, temperature=temperature, global_id=gid
    )
    fused = FusedCachedSampler(model).generate(
        80, batch=2, seed=4, temperature=temperature, global_id=gid
    )
    assert torch.equal(naive, fused)


def test_greedy_is_deterministic_and_temperature_spreads_samples():
    model = small_wavenet()
    sampler = FusedCachedSampler(model)
    greedy_a = sampler.generate(200, seed=0, temperature=0.0)
    greedy_b = sampler.generate(200, seed=99, temperature=0.0)
    assert torch.equal(greedy_a, greedy_b)
    hot = sampler.generate(200, seed=0, temperature=2.0)
    assert hot.unique().numel() > greedy_a.unique().numel()


def test_float32_fused_matches_eager_cached():
    """Same arithmetic in the same order up to vectorisation: identical draws in float32 too."""
    model = small_wavenet(2, local_channels=5, dtype=torch.float32)
    _, local = conditioning(model, 2)
    eager = EagerCachedSampler(model).generate(150, batch=2, seed=5, local=local)
    fused = FusedCachedSampler(model).generate(150, batch=2, seed=5, local=local)
    # Draws could differ only if a uniform landed within float32 rounding of a class boundary.
    assert (eager == fused).float().mean() > 0.95


def test_state_is_allocated_once_and_reset_between_runs():
    model = small_wavenet()
    sampler = FusedCachedSampler(model)
    first = sampler.generate(50, batch=2, seed=7)
    buffer = sampler.state.data_ptr()
    second = sampler.generate(50, batch=2, seed=7)
    assert sampler.state.data_ptr() == buffer
    assert torch.equal(first, second)
    sampler.generate(10, batch=3, seed=7)
    assert sampler.state.shape[0] == 3


def test_queue_lengths_cover_each_dilation():
    model = small_wavenet(3)
    sampler = EagerCachedSampler(model)
    assert sampler.queue_lengths == [2 * d for d in model.config.dilations]
    assert sampler.state is None
    sampler.reset(2)
    assert sampler.state.shape == (2, sum(sampler.queue_lengths), 8)


def test_receptive_field_is_exact():
    model = small_wavenet(3)
    rf = model.config.receptive_field
    assert rf == 2 * 2 * (1 + 2 + 4 + 8) + 1
    T = rf + 10
    x = torch.randint(0, 32, (1, T), generator=torch.Generator().manual_seed(0))
    base = model(x)[0, :, -1]
    outside = x.clone()
    outside[0, T - rf - 1] = (outside[0, T - rf - 1] + 5) % 32
    torch.testing.assert_close(model(outside)[0, :, -1], base, atol=0, rtol=0)
    edge = x.clone()
    edge[0, T - rf] = (edge[0, T - rf] + 5) % 32
    assert not torch.allclose(model(edge)[0, :, -1], base)


def test_bad_requests_are_refused():
    model = small_wavenet(global_classes=2)
    sampler = make_sampler("cached", model)
    gid = torch.tensor([0])
    with pytest.raises(SensoriumError, match="must be >= 1"):
        sampler.generate(0, global_id=gid)
    with pytest.raises(SensoriumError, match="batch"):
        sampler.generate(5, batch=0, global_id=gid)
    with pytest.raises(SensoriumError, match="temperature"):
        sampler.generate(5, temperature=-1.0, global_id=gid)
    with pytest.raises(SensoriumError, match="global id"):
        sampler.generate(5)
    with pytest.raises(SensoriumError, match="out of range"):
        sampler.generate(5, global_id=torch.tensor([2]))
    with pytest.raises(SensoriumError, match="prime classes"):
        sampler.generate(5, global_id=gid, prime=torch.tensor([40]))
    with pytest.raises(SensoriumError, match="unknown sampler"):
        make_sampler("fast", model)
