"""The cached WaveNet step loop, compiled for the CPU with Numba.

One generated sample costs L layers of small matrix products. In eager PyTorch each of the
roughly ten calls per layer costs several microseconds of dispatch, which caps batch-1
generation near a thousand samples per second. Here the whole loop over steps, layers,
streams and the sampling runs as one compiled function: the only costs left are the
arithmetic and reading the weights.

Shape letters: B streams, R residual, G gate, S skip, Q classes, L layers, k kernel width,
F conditioning frames. Matrices are stored (inputs, outputs) so the innermost loop runs over
contiguous outputs, which the compiler vectorises; a weight row is reused for every stream
before the next row is read, so the weights are streamed once per step whatever B is.

The arithmetic mirrors `EagerCachedSampler.step` line for line; the tests hold the two (and
the full-pass reference) to agreement.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from numba import njit

from sensorium.fastgen.sampling_compiled import sample_class
from sensorium.fastgen.wavenet import WaveNet


class PackedWeights(NamedTuple):
    """A WaveNet's weights as contiguous (inputs, outputs) NumPy matrices."""

    embed: np.ndarray  # (Q, R)
    conv_w: np.ndarray  # (L, k*R, 2G): tap kk of input channel i is row kk*R + i
    conv_b: np.ndarray  # (L, 2G)
    res_w: np.ndarray  # (L, G, R)
    res_b: np.ndarray  # (L, R)
    skip_w: np.ndarray  # (L, G, S)
    skip_b: np.ndarray  # (S,): all layers' skip biases summed
    head1_w: np.ndarray  # (S, Q)
    head1_b: np.ndarray  # (Q,)
    head2_w: np.ndarray  # (Q, Q)
    head2_b: np.ndarray  # (Q,)

    @property
    def dtype(self) -> np.dtype:
        return self.embed.dtype


def pack_weights(model: WaveNet, dtype: torch.dtype) -> PackedWeights:
    """Copy the model's weights into the kernel's layout and dtype."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().to("cpu", dtype).numpy())

    def stack(tensors) -> np.ndarray:
        return arr(torch.stack(list(tensors)))

    return PackedWeights(
        embed=arr(model.embed.weight),
        # (2G, R, k) -> (k, R, 2G) -> (k*R, 2G)
        conv_w=stack(c.weight.permute(2, 1, 0).reshape(-1, c.out_channels) for c in model.dilated),
        conv_b=stack(c.bias for c in model.dilated),
        res_w=stack(c.weight[:, :, 0].T for c in model.residual),
        res_b=stack(c.bias for c in model.residual),
        skip_w=stack(c.weight[:, :, 0].T for c in model.skip),
        skip_b=arr(torch.stack([c.bias for c in model.skip]).sum(0)),
        head1_w=arr(model.head_hidden.weight[:, :, 0].T),
        head1_b=arr(model.head_hidden.bias),
        head2_w=arr(model.head_out.weight[:, :, 0].T),
        head2_b=arr(model.head_out.bias),
    )


@njit(cache=True, nogil=True, fastmath=True)
def dense_accumulate(x: np.ndarray, w: np.ndarray, y: np.ndarray, relu: bool) -> None:
    """y (B, O) += act(x) (B, I) @ w (I, O), one weight row at a time for all streams."""
    B, I = x.shape
    O = w.shape[1]
    if B == 1:
        x0 = x[0]
        y0 = y[0]
        for i in range(I):
            xi = x0[i]
            if relu and xi < 0:
                continue
            wi = w[i]
            for o in range(O):
                y0[o] += xi * wi[o]
        return
    for i in range(I):
        for b in range(B):
            xi = x[b, i]
            if relu and xi < 0:
                continue
            for o in range(O):
                y[b, o] += xi * w[i, o]


@njit(cache=True, nogil=True)
def frame_of(t: int, hop: int, num_frames: int) -> int:
    """Conditioning frame of position t (frame 0 when there is one frame)."""
    return 0 if num_frames == 1 else min((t + 1) // hop, num_frames - 1)


@njit(cache=True, nogil=True)
def embed_input(embed, skip_b, out, t, h, skip):
    """Start a step: h (B, R) = embedding of out[:, t]; skip (B, S) = summed skip biases."""
    for b in range(h.shape[0]):
        h[b, :] = embed[out[b, t]]
        skip[b, :] = skip_b


@njit(cache=True, nogil=True, fastmath=True)
def layer_taps(conv_w, conv_b, dilations, offsets, state, bias, layer, frame, t, tap, z):
    """First half of a layer at position t: z (B, 2G) = conv bias + conditioning + past taps.

    Tap kk reads the layer's input from (k - 1 - kk) * d steps ago out of its queue; the
    current input (tap k - 1) is added last by `layer_finish`. Nothing here depends on the
    current sample, so the two-thread loop runs it while waiting for the other thread.
    """
    B = z.shape[0]
    R = tap.shape[1]
    k = conv_w.shape[1] // R
    d = dilations[layer]
    M = (k - 1) * d
    base = offsets[layer]
    for b in range(B):
        z[b, :] = conv_b[layer] + bias[b, frame, layer]
    for kk in range(k - 1):
        row = base + (t - (k - 1 - kk) * d) % M
        for b in range(B):
            tap[b, :] = state[b, row]
        dense_accumulate(tap, conv_w[layer, kk * R : (kk + 1) * R], z, False)


@njit(cache=True, nogil=True, fastmath=True)
def layer_finish(conv_w, res_w, res_b, dilations, offsets, state, layer, t, z, gated, h):
    """Second half of a layer at position t: add the current input h (B, R) to z (B, 2G),
    queue h, write the gate into gated (B, G) and update h in place.

    The layer's skip term, gated @ skip_w[layer], is left to the caller: the next layer does
    not need it, so the two-thread loop adds it off the critical path.
    """
    B, R = h.shape
    G = gated.shape[1]
    k = conv_w.shape[1] // R
    dense_accumulate(h, conv_w[layer, (k - 1) * R :], z, False)
    row = offsets[layer] + t % ((k - 1) * dilations[layer])
    for b in range(B):
        state[b, row] = h[b]
    for b in range(B):
        for g in range(G):
            gated[b, g] = math.tanh(z[b, g]) / (1.0 + math.exp(-z[b, G + g]))
        h[b, :] += res_b[layer]
    dense_accumulate(gated, res_w[layer], h, False)


@njit(cache=True, nogil=True, fastmath=True)
def head_sample(head1_w, head1_b, head2_w, head2_b, skip, hidden, logits, out, t, u, temperature):
    """Output head on skip (B, S) into logits (B, Q); draw out[:, t + 1] with uniforms u (B,)."""
    for b in range(skip.shape[0]):
        hidden[b, :] = head1_b
        logits[b, :] = head2_b
    dense_accumulate(skip, head1_w, hidden, True)
    dense_accumulate(hidden, head2_w, logits, True)
    for b in range(skip.shape[0]):
        out[b, t + 1] = sample_class(logits[b], u[b], temperature)


@njit(cache=True, nogil=True, fastmath=True)
def _steps(
    embed, conv_w, conv_b, res_w, res_b, skip_w, skip_b, head1_w, head1_b, head2_w, head2_b,
    dilations, offsets, state, bias, hop, out, start, count, uniforms, temperature,
):  # fmt: skip
    """Feed out[:, t] at positions t = start .. start+count-1 and write out[:, t + 1]."""
    B = out.shape[0]
    L, _, G2 = conv_w.shape
    R = embed.shape[1]
    dt = embed.dtype
    h = np.empty((B, R), dt)
    tap = np.empty((B, R), dt)
    z = np.empty((B, G2), dt)
    gated = np.empty((B, G2 // 2), dt)
    skip = np.empty((B, skip_w.shape[2]), dt)
    hidden = np.empty((B, head1_w.shape[1]), dt)
    logits = np.empty((B, head2_w.shape[1]), dt)

    for n in range(count):
        t = start + n
        frame = frame_of(t, hop, bias.shape[1])
        embed_input(embed, skip_b, out, t, h, skip)
        for layer in range(L):
            layer_taps(conv_w, conv_b, dilations, offsets, state, bias, layer, frame, t, tap, z)
            layer_finish(conv_w, res_w, res_b, dilations, offsets, state, layer, t, z, gated, h)
            dense_accumulate(gated, skip_w[layer], skip, False)
        head_sample(
            head1_w, head1_b, head2_w, head2_b, skip, hidden, logits, out, t, uniforms[n],
            temperature,
        )  # fmt: skip


def run_steps(
    weights: PackedWeights,
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
    """Run `count` cached steps in place.

    Args:
        weights: from `pack_weights`, in the dtype of `state` and `bias`.
        dilations, offsets: (L,) int64; layer l's queue starts at state row offsets[l].
        state: (B, rows, R) layer queues, advanced in place.
        bias: (B, F, L, 2G) per-frame conditioning (zeros, F = 1, when unconditioned).
        hop: samples per conditioning frame.
        out: (B, total) int64 classes; out[:, start] must be set; out[:, start+1 : start+count+1]
            is written.
        uniforms: (count, B) float64.
    """
    _steps(*weights, dilations, offsets, state, bias, hop, out, start, count, uniforms, temperature)
