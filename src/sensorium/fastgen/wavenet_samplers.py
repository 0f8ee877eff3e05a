"""WaveNet samplers: the naive full-pass reference and the cached (queue-per-layer) samplers.

Shape letters: B streams, T time, R residual, G gate, S skip, Q classes, M a layer's queue
length ((kernel - 1) * dilation), L layers.

All samplers share one `generate` loop and one way of drawing classes (`sampling.py`), so for
the same seed they differ only in how the next logits are computed:

- `NaiveSampler`: a full forward pass over the last receptive-field window for every sample.
- `EagerCachedSampler`: per layer, a ring buffer of its last M inputs; one step is L small
  matrix products in eager PyTorch. Runs on any device.
- `FusedCachedSampler`: the same buffers and arithmetic, the whole step loop compiled on the
  CPU (`wavenet_kernel.py`), streams split over threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sensorium.common.errors import SensoriumError
from sensorium.fastgen.mulaw import silence_class
from sensorium.fastgen.sampling import check_temperature, draw_uniforms, sample_from_logits
from sensorium.fastgen.wavenet import WaveNet

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]

SAMPLERS = ("naive", "cached", "cached-eager", "cached-fused")


class WaveNetSampler:
    """Generates mu-law classes from a trained WaveNet. Subclasses supply `_continue`."""

    def __init__(self, model: WaveNet) -> None:
        self.model = model.eval()
        self.config = model.config

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        batch: int = 1,
        seed: int = 0,
        temperature: float = 1.0,
        prime: torch.Tensor | None = None,
        global_id: torch.Tensor | None = None,
        local: torch.Tensor | None = None,
        progress: Progress | None = None,
    ) -> torch.Tensor:
        """Generate `num_samples` new classes per stream.

        Args:
            num_samples: new samples per stream (>= 1).
            batch: independent streams B.
            seed: seeds the uniforms that pick every class.
            temperature: softmax temperature; 0 is greedy.
            prime: (B, P) or (P,) classes to continue; without it each stream starts from one
                silent sample.
            global_id: (B,) ids for a globally conditioned model.
            local: (B, C, F) features for a locally conditioned model; frame f covers the
                samples f * hop .. (f + 1) * hop - 1, counted from the start of the prime.
            progress: called with the number of samples finished since its last call.

        Returns:
            (B, P + num_samples) int64 classes: the prime (or the silent start), then the new
            samples.
        """
        if not isinstance(num_samples, int) or num_samples < 1:
            raise SensoriumError(f"number of samples {num_samples!r} must be >= 1")
        if not isinstance(batch, int) or batch < 1:
            raise SensoriumError(f"batch {batch!r} must be >= 1")
        temperature = check_temperature(temperature)
        device = next(self.model.parameters()).device
        prime = self._prime_classes(prime, batch).to(device)
        if global_id is not None:
            global_id = torch.as_tensor(global_id, dtype=torch.long, device=device)
        if local is not None:
            local = local.to(device=device, dtype=next(self.model.parameters()).dtype)
        self.model.check_conditioning(batch, global_id, local)
        frame_bias = self.model.frame_bias(global_id, local, batch)
        uniforms = draw_uniforms(seed, num_samples, batch)

        out = torch.empty((batch, prime.shape[1] + num_samples), dtype=torch.long, device=device)
        out[:, : prime.shape[1]] = prime
        self._continue(out, prime.shape[1], uniforms, temperature, frame_bias, progress)
        return out

    def _prime_classes(self, prime: torch.Tensor | None, batch: int) -> torch.Tensor:
        Q = self.config.quantization
        if prime is None:
            return torch.full((batch, 1), silence_class(Q), dtype=torch.long)
        prime = torch.as_tensor(prime, dtype=torch.long)
        if prime.dim() == 1:
            prime = prime[None].expand(batch, -1)
        if prime.dim() != 2 or prime.shape[0] != batch or prime.shape[1] < 1:
            raise SensoriumError(
                f"prime of shape {tuple(prime.shape)}; expected ({batch}, P) with P >= 1"
            )
        if int(prime.min()) < 0 or int(prime.max()) >= Q:
            raise SensoriumError(f"prime classes must lie in 0..{Q - 1}")
        return prime.contiguous()

    def _continue(
        self,
        out: torch.Tensor,
        start: int,
        uniforms: torch.Tensor,
        temperature: float,
        frame_bias: torch.Tensor | None,
        progress: Progress | None,
    ) -> None:
        """Fill out[:, start:] given out[:, :start]."""
        raise NotImplementedError


class NaiveSampler(WaveNetSampler):
    """The reference: one full forward pass over the receptive field per generated sample."""

    def _continue(self, out, start, uniforms, temperature, frame_bias, progress):
        rf = self.config.receptive_field
        for step in range(uniforms.shape[0]):
            end = start + step
            begin = max(0, end - rf)
            logits = self.model.run(out[:, begin:end], frame_bias, begin)  # (B, Q, W)
            out[:, end] = sample_from_logits(logits[:, :, -1], uniforms[step], temperature)
            if progress is not None:
                progress(1)


class CachedSampler(WaveNetSampler):
    """Shared state handling of the cached samplers.

    The state is one tensor (B, sum of M, R): layer l owns rows offsets[l] .. offsets[l] + M_l,
    and the input it saw at position t sits in row offsets[l] + t % M_l. A step at position t
    reads the rows of t - d, t - 2d, ..., t - (k - 1) d, then overwrites the oldest with t's.
    The buffers are allocated once per batch size and zeroed by `reset`, which equals the
    zero padding of the full pass.
    """

    def __init__(self, model: WaveNet, dtype: torch.dtype | None = None) -> None:
        super().__init__(model)
        cfg = self.config
        self.queue_lengths = [(cfg.kernel_size - 1) * d for d in cfg.dilations]
        self.offsets = np.concatenate([[0], np.cumsum(self.queue_lengths)[:-1]]).astype(np.int64)
        self.state: torch.Tensor | None = None
        self.dtype = dtype or next(model.parameters()).dtype

    def reset(self, batch: int) -> None:
        """Zero the layer queues, allocating them only when the batch size changes."""
        device = next(self.model.parameters()).device
        shape = (batch, sum(self.queue_lengths), self.config.residual_channels)
        if self.state is None or self.state.shape != shape:
            self.state = torch.zeros(shape, dtype=self.dtype, device=device)
        else:
            self.state.zero_()

    def prime(self, prefix: torch.Tensor, frame_bias: torch.Tensor | None) -> torch.Tensor:
        """Fill every queue from a prefix (B, P) in one parallel pass; return its last logits.

        Returns (B, Q) logits for the sample that follows the prefix.
        """
        self.reset(prefix.shape[0])
        layer_inputs: list[torch.Tensor] = []
        logits = self.model.run(prefix, frame_bias, 0, layer_inputs)  # (B, Q, P)
        P = prefix.shape[1]
        for layer, inputs in enumerate(layer_inputs):  # inputs: (B, R, P)
            M = self.queue_lengths[layer]
            kept = min(M, P)
            positions = torch.arange(P - kept, P, device=prefix.device)
            rows = int(self.offsets[layer]) + positions % M
            self.state[:, rows, :] = inputs[:, :, P - kept :].transpose(1, 2).to(self.dtype)
        return logits[:, :, -1]

    def _continue(self, out, start, uniforms, temperature, frame_bias, progress):
        logits = self.prime(out[:, :start], frame_bias)
        out[:, start] = sample_from_logits(logits, uniforms[0], temperature)
        if progress is not None:
            progress(1)
        if uniforms.shape[0] > 1:
            self._run_steps(out, start, uniforms[1:], temperature, frame_bias, progress)

    def _run_steps(self, out, start, uniforms, temperature, frame_bias, progress):
        """Feed out[:, start + n] at position start + n and sample out[:, start + n + 1]."""
        raise NotImplementedError


class EagerCachedSampler(CachedSampler):
    """Cached steps as eager PyTorch calls: clear, device-agnostic, bound by call overhead."""

    def __init__(self, model: WaveNet, dtype: torch.dtype | None = None) -> None:
        super().__init__(model, dtype)
        k = self.config.kernel_size
        # Conv weight (2G, R, k) as one matrix over the k taps laid side by side: (2G, k*R).
        self.tap_weights = [
            conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1) for conv in model.dilated
        ]
        self.kernel_size = k

    def step(self, x: torch.Tensor, position: int, bias: torch.Tensor | None) -> torch.Tensor:
        """Feed classes x (B,) at `position`; return (B, Q) logits for the next sample.

        `bias` is the (B, L, 2G) conditioning of this position, or None.
        """
        model, cfg = self.model, self.config
        G = cfg.gate_channels
        h = model.embed(x)  # (B, R)
        skip = 0.0
        for layer, d in enumerate(cfg.dilations):
            M, base = self.queue_lengths[layer], int(self.offsets[layer])
            taps = [self.state[:, base + (position - j * d) % M] for j in range(self.kernel_size - 1, 0, -1)]
            taps.append(h)
            z = F.linear(torch.cat(taps, dim=1), self.tap_weights[layer], model.dilated[layer].bias)
            if bias is not None:
                z = z + bias[:, layer]
            self.state[:, base + position % M] = h
            gated = torch.tanh(z[:, :G]) * torch.sigmoid(z[:, G:])  # (B, G)
            h = h + F.linear(gated, model.residual[layer].weight[:, :, 0], model.residual[layer].bias)
            skip = skip + F.linear(gated, model.skip[layer].weight[:, :, 0], model.skip[layer].bias)
        return model.head(skip[:, :, None])[:, :, 0]

    def _run_steps(self, out, start, uniforms, temperature, frame_bias, progress):
        for n in range(uniforms.shape[0]):
            position = start + n
            bias = None
            if frame_bias is not None:
                frame = 0 if frame_bias.shape[1] == 1 else int(
                    self.model.frame_index(torch.tensor(position), frame_bias.shape[1])
                )
                bias = frame_bias[:, frame]  # (B, L, 2G)
            logits = self.step(out[:, position], position, bias)
            out[:, position + 1] = sample_from_logits(logits, uniforms[n], temperature)
            if progress is not None:
                progress(1)


class FusedCachedSampler(CachedSampler):
    """The cached step loop compiled for the CPU; the streams are split over threads.

    Each thread runs the compiled loop on its own slice of streams for a chunk of steps; the
    loop releases the GIL, so threads run in parallel without any per-step synchronisation.
    """

    CHUNK = 1024

    def __init__(self, model: WaveNet, dtype: torch.dtype | None = None, threads: int = 0):
        super().__init__(model, dtype)
        if next(model.parameters()).device.type != "cpu":
            raise SensoriumError("the fused sampler runs on the CPU; use cached-eager on a GPU")
        from sensorium.fastgen.wavenet_kernel import pack_weights

        self.weights = pack_weights(model, self.dtype)
        self.dilations = np.asarray(self.config.dilations, dtype=np.int64)
        self.threads = threads or min(2, os.cpu_count() or 1)

    def _run_steps(self, out, start, uniforms, temperature, frame_bias, progress):
        from sensorium.fastgen.wavenet_kernel import run_steps

        B = out.shape[0]
        G2 = 2 * self.config.gate_channels
        if frame_bias is None:
            bias = np.zeros((B, 1, self.config.num_layers, G2), dtype=self.weights.dtype)
        else:
            bias = frame_bias.to(self.dtype).contiguous().numpy()
        hop = self.config.local_hop
        state = self.state.numpy()
        out_np = out.numpy()
        u = uniforms.numpy()
        slices = np.array_split(np.arange(B), min(self.threads, B))

        def work(rows: np.ndarray, first: int, count: int) -> None:
            lo, hi = rows[0], rows[-1] + 1
            run_steps(
                self.weights, self.dilations, self.offsets, state[lo:hi], bias[lo:hi], hop,
                out_np[lo:hi], start + first, count, u[first:first + count, lo:hi],
                temperature,
            )

        total = uniforms.shape[0]
        for first in range(0, total, self.CHUNK):
            count = min(self.CHUNK, total - first)
            if len(slices) == 1:
                work(slices[0], first, count)
            else:
                threads = [threading.Thread(target=work, args=(s, first, count)) for s in slices]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            if progress is not None:
                progress(count)


def make_sampler(name: str, model: WaveNet) -> WaveNetSampler:
    """`naive`, `cached` (fused on the CPU, eager elsewhere), `cached-eager` or `cached-fused`."""
    if name not in SAMPLERS:
        raise SensoriumError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    on_cpu = next(model.parameters()).device.type == "cpu"
    if name == "naive":
        return NaiveSampler(model)
    if name == "cached-eager" or (name == "cached" and not on_cpu):
        return EagerCachedSampler(model)
    return FusedCachedSampler(model)
