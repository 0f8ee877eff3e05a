"""The fused sampler's two-thread layer split against the reference and the one-thread loop."""

from __future__ import annotations

import copy
import threading
import time

import numpy as np
import pytest
import torch

from sensorium.common.errors import SensoriumError
from sensorium.fastgen import thread_handoff, wavenet_kernel, wavenet_kernel_split
from sensorium.fastgen.wavenet import WaveNet, WaveNetConfig
from sensorium.fastgen.wavenet_samplers import (
    EagerCachedSampler,
    FusedCachedSampler,
    NaiveSampler,
)
from tests.fastgen.helpers import conditioning, small_wavenet

CONDITIONINGS = {"none": {}, "global+local": {"global_classes": 3, "local_channels": 5}}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The naive reference's tiny convolutions gain nothing from threads, and on busy cores
    OpenMP's spin-waiting makes them a hundred times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _generate(sampler, model, batch, seed, steps=80, primed=False, temperature=1.0):
    gid, local = conditioning(model, batch)
    prime = None
    if primed:
        prime = torch.randint(0, 32, (batch, 19), generator=torch.Generator().manual_seed(seed))
    return sampler.generate(
        steps,
        batch=batch,
        seed=seed,
        temperature=temperature,
        prime=prime,
        global_id=gid,
        local=local,
    )


@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("cond", list(CONDITIONINGS))
@pytest.mark.parametrize("batch", [1, 3])
def test_layer_split_draws_the_naive_classes_in_float64(kernel_size, cond, batch):
    model = small_wavenet(kernel_size, **CONDITIONINGS[cond])
    fused = FusedCachedSampler(model, mode="layers")
    outputs = []
    for seed, primed in ((0, False), (1, True), (2, True)):
        naive = _generate(NaiveSampler(model), model, batch, seed, primed=primed)
        split = _generate(fused, model, batch, seed, primed=primed)
        assert torch.equal(split, naive)
        outputs.append(naive)
    # Different seeds draw different classes: the comparison above is not vacuous.
    assert not torch.equal(outputs[1], outputs[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("batch", [1, 3])
def test_layer_split_equals_one_thread_bit_for_bit(dtype, kernel_size, batch):
    """Both modes run the same compiled layer code in the same order: classes and queues agree
    exactly, in float32 as well."""
    model = small_wavenet(kernel_size, dtype=dtype, **CONDITIONINGS["global+local"])
    split = FusedCachedSampler(model, mode="layers")
    single = FusedCachedSampler(model, threads=1, mode="streams")
    for temperature in (0.0, 1.0):
        a = _generate(split, model, batch, seed=4, primed=True, temperature=temperature)
        b = _generate(single, model, batch, seed=4, primed=True, temperature=temperature)
        assert torch.equal(a, b)
        assert torch.equal(split.state, single.state)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_layer_split_queues_match_the_full_pass_in_float32(kernel_size):
    """The float32 queues after generating are the layer inputs that a float64 full pass over
    the generated classes computes."""
    model = small_wavenet(kernel_size, dtype=torch.float32, **CONDITIONINGS["global+local"])
    batch = 2
    sampler = FusedCachedSampler(model, mode="layers")
    out = _generate(sampler, model, batch, seed=5, primed=True)

    reference = EagerCachedSampler(copy.deepcopy(model).double())
    gid, local = conditioning(model, batch)  # as `_generate` drew them
    frame_bias = reference.model.frame_bias(gid, local.double(), batch)
    with torch.no_grad():
        # The last class was drawn but never fed, so the queues end at position T - 2.
        reference.prime(out[:, :-1], frame_bias)
    # Layer inputs are of order 1-10; float32 rounding over 8 layers stays well under 1e-4.
    torch.testing.assert_close(sampler.state.double(), reference.state, atol=1e-4, rtol=1e-4)


def test_layer_split_across_chunks_equals_naive():
    """Each chunk starts and joins the helper thread anew; small chunks exercise the seams."""
    model = small_wavenet(2, global_classes=3)
    fused = FusedCachedSampler(model, mode="layers")
    fused.CHUNK = 7
    naive = _generate(NaiveSampler(model), model, batch=2, seed=6, steps=40)
    assert torch.equal(_generate(fused, model, batch=2, seed=6, steps=40), naive)


def test_auto_mode_considers_the_split_only_for_small_batches_on_two_threads():
    model = small_wavenet()
    two = FusedCachedSampler(model, threads=2)
    small = FusedCachedSampler.LAYER_SPLIT_MAX_BATCH
    assert two.modes_for(small) == ("layers", "streams")
    assert two.modes_for(small + 1) == ("streams",)
    assert FusedCachedSampler(model, threads=1).modes_for(1) == ("streams",)
    assert FusedCachedSampler(model, threads=1, mode="layers").modes_for(64) == ("layers",)
    assert FusedCachedSampler(model, mode="streams").modes_for(1) == ("streams",)


def test_auto_mode_keeps_to_the_faster_mode_and_retimes_the_other():
    sampler = FusedCachedSampler(small_wavenet(), threads=2)
    sampler.RETIME_EVERY, sampler.RETIME_MAX = 2, 8
    modes = ("layers", "streams")
    full, probe = sampler.CHUNK, sampler.PROBE
    # Nothing timed: a short chunk in each mode, the split first.
    assert sampler.next_chunk(1, modes) == ("layers", probe)
    sampler.rates[1, "layers"] = 10_000.0
    assert sampler.next_chunk(1, modes) == ("streams", probe)
    sampler.rates[1, "streams"] = 3_000.0
    # The faster mode in full chunks; the other is timed after 2, 4, 8, 8 ... of them.
    chunks = [sampler.next_chunk(1, modes) for _ in range(2 + 4 + 8 + 8 + 4)]
    probes = [i for i, chunk in enumerate(chunks) if chunk == ("streams", probe)]
    assert probes == [2, 7, 16, 25]
    assert all(chunk == ("layers", full) for chunk in chunks if chunk[0] == "layers")
    # Busy cores: the split became slow, so one thread takes over, timed anew after 2.
    sampler.rates[1, "layers"] = 1_000.0
    chunks = [sampler.next_chunk(1, modes) for _ in range(3)]
    assert chunks == [("streams", full), ("streams", full), ("layers", probe)]


def test_auto_mode_generates_the_naive_classes():
    """Auto mode at batch 1 switches between modes by timing; the classes do not change."""
    model = small_wavenet(3, local_channels=5)
    sampler = FusedCachedSampler(model, threads=2)
    sampler.CHUNK, sampler.PROBE, sampler.RETIME_EVERY = 9, 4, 1
    naive = _generate(NaiveSampler(model), model, batch=1, seed=7, steps=60)
    assert torch.equal(_generate(sampler, model, batch=1, seed=7, steps=60), naive)
    assert {mode for _, mode in sampler.rates} == {"layers", "streams"}


def test_bad_modes_are_refused():
    with pytest.raises(SensoriumError, match="'pipeline'"):
        FusedCachedSampler(small_wavenet(), mode="pipeline")
    one_layer = WaveNet(WaveNetConfig(residual_channels=4, gate_channels=4, skip_channels=4,
                                      layers_per_stack=1, stacks=1, quantization=8))  # fmt: skip
    with pytest.raises(SensoriumError, match="2 or more layers"):
        FusedCachedSampler(one_layer, mode="layers")
    # Auto falls back to streams for a one-layer model.
    assert FusedCachedSampler(one_layer, threads=2).modes_for(1) == ("streams",)


def test_split_balances_weight_bytes():
    """Default model: 20 layers of ~112 KB; the embedding (64 KB) goes with the front, the
    head (~384 KB) with the back, so the front takes 11 layers."""
    weights = wavenet_kernel.pack_weights(WaveNet(WaveNetConfig()), torch.float32)
    assert wavenet_kernel_split.layer_split(weights) == 11
    small = wavenet_kernel.pack_weights(small_wavenet(), torch.float64)
    assert 1 <= wavenet_kernel_split.layer_split(small) < 8


@pytest.mark.parametrize("failing", ["_steps_front", "_steps_back"])
def test_a_failing_thread_stops_the_other(monkeypatch, failing):
    """An error on either side aborts the other thread's wait and reaches the caller."""
    model = small_wavenet()
    sampler = FusedCachedSampler(model, mode="layers")
    _generate(sampler, model, batch=1, seed=0, steps=5)  # compile both halves first

    def broken(*args):
        raise ZeroDivisionError("broken half")

    monkeypatch.setattr(wavenet_kernel_split, failing, broken)
    with pytest.raises(ZeroDivisionError, match="broken half"):
        _generate(sampler, model, batch=1, seed=0, steps=50)


def test_wait_gives_up_when_aborted():
    flags = np.zeros(thread_handoff.FLAGS, np.int64)
    flags[thread_handoff.FRONT_DONE] = 3
    assert thread_handoff.wait_for(flags, thread_handoff.FRONT_DONE, 3)
    flags[thread_handoff.ABORT] = 1
    assert not thread_handoff.wait_for(flags, thread_handoff.FRONT_DONE, 4)


def test_wait_sleeps_and_is_woken():
    """A wait longer than the spin phase sleeps; the other thread's publish wakes it."""
    flags = np.zeros(thread_handoff.FLAGS, np.int64)
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(thread_handoff.wait_for(flags, thread_handoff.BACK_DONE, 1))
    )
    waiter.start()
    time.sleep(0.05)  # far longer than the spin phase (about 0.2 ms)
    assert not result
    thread_handoff.publish(flags, thread_handoff.BACK_DONE, 1)
    waiter.join(timeout=10)
    assert result == [True]


def test_abort_reaches_a_sleeping_wait():
    flags = np.zeros(thread_handoff.FLAGS, np.int64)
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(thread_handoff.wait_for(flags, thread_handoff.BACK_DONE, 1))
    )
    waiter.start()
    time.sleep(0.05)
    flags[thread_handoff.ABORT] = 1  # a plain store, as the Python side makes it
    waiter.join(timeout=10)
    assert result == [False]


def test_split_out_of_range_is_refused():
    model = small_wavenet()
    sampler = FusedCachedSampler(model, mode="layers")
    with pytest.raises(ValueError, match="layer split 8"):
        wavenet_kernel_split.run_steps_layer_split(
            sampler.weights, 8, sampler.dilations, sampler.offsets, None, None, 7, None, 0, 1,
            None, 1.0,
        )  # fmt: skip
