"""The cached WaveNet step loop with its layers split over two threads.

At batch 1 a step is a chain of small matrix products, too short to share out within a layer,
and the default model's weights (~2.7 MB) do not fit one core's L2 cache, so one thread
fetches them from L3 at every step. Two threads split the layers instead, each keeping its
half in its own core's L2, and a step passes through both in turn:

  front (helper thread):  embedding, layers [0, split)       -> h (B, R), skip (B, S)
  back (calling thread):  layers [split, L), head, sampling  -> out[:, t + 1]

They hand h, skip and the new sample over through shared arrays and step counters in
`flags`. Per step the front publishes h ("front done"), then adds its layers' skip terms and
publishes skip ("skip done"); the back runs its layers meanwhile, adds its skip terms after
the front's (the order of the sum is that of `_steps`) and publishes the sample ("back done").
While one thread waits for the other it computes its layers' past-tap terms of the next step
(`layer_taps`); with the skip terms that is about half the work, which thus runs in parallel.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from sensorium.fastgen.thread_handoff import (
    ABORT,
    BACK_DONE,
    FLAGS,
    FRONT_DONE,
    SKIP_DONE,
    publish,
    wait_for,
)
from sensorium.fastgen.wavenet_kernel import (
    PackedWeights,
    dense_accumulate,
    embed_input,
    frame_of,
    head_sample,
    layer_finish,
    layer_taps,
)


@njit(cache=True, nogil=True, fastmath=True)
def _steps_front(
    embed, conv_w, conv_b, res_w, res_b, skip_w, skip_b, dilations, offsets, state, bias, hop,
    out, start, count, split, h, skip, flags,
):  # fmt: skip
    """Embedding and layers [0, split) of `count` steps; publishes h, then skip, per step."""
    B = out.shape[0]
    R = embed.shape[1]
    G2 = conv_w.shape[2]
    dt = embed.dtype
    tap = np.empty((B, R), dt)
    z = np.empty((split, B, G2), dt)
    gated = np.empty((split, B, G2 // 2), dt)
    for n in range(count):
        t = start + n
        frame = frame_of(t, hop, bias.shape[1])
        for layer in range(split):
            layer_taps(
                conv_w, conv_b, dilations, offsets, state, bias, layer, frame, t, tap, z[layer]
            )
        # out[:, t] is the back's sample of step n - 1; it has also finished reading h and skip.
        if not wait_for(flags, BACK_DONE, n):
            return False
        embed_input(embed, skip_b, out, t, h, skip)
        for layer in range(split):
            layer_finish(
                conv_w, res_w, res_b, dilations, offsets, state, layer, t, z[layer], gated[layer], h
            )
        publish(flags, FRONT_DONE, n + 1)
        for layer in range(split):
            dense_accumulate(gated[layer], skip_w[layer], skip, False)
        publish(flags, SKIP_DONE, n + 1)
    return True


@njit(cache=True, nogil=True, fastmath=True)
def _steps_back(
    conv_w, conv_b, res_w, res_b, skip_w, head1_w, head1_b, head2_w, head2_b, dilations,
    offsets, state, bias, hop, out, start, count, uniforms, temperature, split, h, skip, flags,
):  # fmt: skip
    """Layers [split, L), the head and the sampling of `count` steps, after the front's."""
    B = out.shape[0]
    L, _, G2 = conv_w.shape
    dt = conv_w.dtype
    tap = np.empty((B, h.shape[1]), dt)
    z = np.empty((L - split, B, G2), dt)
    gated = np.empty((L - split, B, G2 // 2), dt)
    hidden = np.empty((B, head1_w.shape[1]), dt)
    logits = np.empty((B, head2_w.shape[1]), dt)
    for n in range(count):
        t = start + n
        frame = frame_of(t, hop, bias.shape[1])
        for layer in range(split, L):
            zl = z[layer - split]
            layer_taps(conv_w, conv_b, dilations, offsets, state, bias, layer, frame, t, tap, zl)
        if not wait_for(flags, FRONT_DONE, n + 1):
            return False
        for layer in range(split, L):
            layer_finish(
                conv_w, res_w, res_b, dilations, offsets, state, layer, t, z[layer - split],
                gated[layer - split], h,
            )  # fmt: skip
        if not wait_for(flags, SKIP_DONE, n + 1):
            return False
        for layer in range(split, L):
            dense_accumulate(gated[layer - split], skip_w[layer], skip, False)
        head_sample(
            head1_w, head1_b, head2_w, head2_b, skip, hidden, logits, out, t, uniforms[n],
            temperature,
        )  # fmt: skip
        publish(flags, BACK_DONE, n + 1)
    return True


def layer_split(weights: PackedWeights) -> int:
    """The first layer of the back thread: the split that best balances the weight bytes.

    The front holds the embedding and its layers; the back its layers and the output head.
    Needs at least two layers.
    """
    L = weights.conv_w.shape[0]
    if L < 2:
        raise ValueError(f"a layer split needs at least 2 layers, got {L}")
    w = weights
    per_layer = (w.conv_w.nbytes + w.conv_b.nbytes + w.res_w.nbytes + w.res_b.nbytes) // L
    per_layer += w.skip_w.nbytes // L
    front = w.embed.nbytes + w.skip_b.nbytes
    back = w.head1_w.nbytes + w.head1_b.nbytes + w.head2_w.nbytes + w.head2_b.nbytes
    return min(range(1, L), key=lambda s: abs(front + s * per_layer - back - (L - s) * per_layer))


def run_steps_layer_split(
    weights: PackedWeights,
    split: int,
    dilations: np.ndarray,
    offsets: np.ndarray,
    state: np.ndarray,
    bias: np.ndarray,
    hop: int,
    out: np.ndarray,
    start: int,
    count: int,
    uniforms: np.ndarray,
    temperature: float,
) -> None:
    """`run_steps` with layers [0, split) on a helper thread and the rest on this one.

    Same arguments and result as `run_steps`, bit for bit; `split` as from `layer_split`.
    Meant for two idle cores: a thread spins while it waits for the other, and sleeps only
    after a fraction of a millisecond.
    """
    w = weights
    L = w.conv_w.shape[0]
    if not 1 <= split < L:
        raise ValueError(f"layer split {split} must lie in 1..{L - 1} for {L} layers")
    B = out.shape[0]
    h = np.empty((B, w.embed.shape[1]), w.dtype)
    skip = np.empty((B, w.skip_w.shape[2]), w.dtype)
    flags = np.zeros(FLAGS, np.int64)
    errors: list[BaseException] = []

    def front() -> None:
        ok = False
        try:
            ok = _steps_front(
                w.embed, w.conv_w, w.conv_b, w.res_w, w.res_b, w.skip_w, w.skip_b, dilations,
                offsets, state, bias, hop, out, start, count, split, h, skip, flags,
            )  # fmt: skip
        except BaseException as error:  # handed to the calling thread below
            errors.append(error)
        finally:
            if not ok:
                flags[ABORT] = 1

    helper = threading.Thread(target=front, name="wavenet-front-layers", daemon=True)
    helper.start()
    ok = False
    try:
        ok = _steps_back(
            w.conv_w, w.conv_b, w.res_w, w.res_b, w.skip_w, w.head1_w, w.head1_b, w.head2_w,
            w.head2_b, dilations, offsets, state, bias, hop, out, start, count, uniforms,
            temperature, split, h, skip, flags,
        )  # fmt: skip
    finally:
        if not ok:
            flags[ABORT] = 1
        helper.join()
    if errors:
        raise errors[0]
    if not ok:
        raise RuntimeError(
            "layer-split generation stopped: one thread waited too long for the other"
        )
