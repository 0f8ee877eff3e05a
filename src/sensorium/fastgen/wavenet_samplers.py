"""WaveNet samplers: the naive full-pass reference and the cached (queue-per-layer) samplers.

Shape letters: B streams, T time, R residual, G gate, S skip, Q classes, M a layer's queue
length ((kernel - 1) * dilation), L layers.

All samplers share one `generate` loop and one way of drawing classes (`sampling.py`), so for
the same seed they differ only in how the next logits are computed:

- `NaiveSampler`: a full forward pass over the last receptive-field window for every sample.
- `EagerCachedSampler`: per layer, a ring buffer of its last M inputs; one step is L small
  matrix products in eager PyTorch. Runs on any device.
- `FusedCachedSampler`: the same buffers and arithmetic, the whole step loop compiled on the
  CPU (`wavenet_kernel.py`); streams split over threads, or at batch 1 the layers split over
  two threads (`wavenet_kernel_split.py`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
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
            taps = [
                self.state[:, base + (position - j * d) % M]
                for j in range(self.kernel_size - 1, 0, -1)
            ]
            taps.append(h)
            z = F.linear(torch.cat(taps, dim=1), self.tap_weights[layer], model.dilated[layer].bias)
            if bias is not None:
                z = z + bias[:, layer]
            self.state[:, base + position % M] = h
            gated = torch.tanh(z[:, :G]) * torch.sigmoid(z[:, G:])  # (B, G)
            h = h + F.linear(
                gated, model.residual[layer].weight[:, :, 0], model.residual[layer].bias
            )
            skip = skip + F.linear(gated, model.skip[layer].weight[:, :, 0], model.skip[layer].bias)
        return model.head(skip[:, :, None])[:, :, 0]

    def _run_steps(self, out, start, uniforms, temperature, frame_bias, progress):
        for n in range(uniforms.shape[0]):
            position = start + n
            bias = None
            if frame_bias is not None:
                frame = (
                    0
                    if frame_bias.shape[1] == 1
                    else int(self.model.frame_index(torch.tensor(position), frame_bias.shape[1]))
                )
                bias = frame_bias[:, frame]  # (B, L, 2G)
            logits = self.step(out[:, position], position, bias)
            out[:, position + 1] = sample_from_logits(logits, uniforms[n], temperature)
            if progress is not None:
                progress(1)


class FusedCachedSampler(CachedSampler):
    """The cached step loop compiled for the CPU, spread over threads in one of two ways.

    - `streams`: each thread runs the compiled loop on its own slice of the streams for a
      chunk of steps, without any per-step synchronisation; one stream runs on one thread.
    - `layers`: two threads split the layers of every step and hand each step over
      (`wavenet_kernel.run_steps_layer_split`), so each core keeps only its half of the
      weights in its cache and prepares the next step while the other thread works.

    Both modes give the same classes bit for bit. `mode="auto"` uses `streams`, except for a
    batch of at most `LAYER_SPLIT_MAX_BATCH` streams on two threads: there it times a short
    chunk in each mode and keeps to the faster. The split wins on idle cores but loses badly
    when other processes keep the cores busy (each hand-over may then wait for a time slice),
    so the other mode is timed again after `RETIME_EVERY` chunks, then after twice as many
    while it keeps losing, up to `RETIME_MAX`. Any other `mode` is used throughout (`layers`
    always runs on two threads).
    """

    CHUNK = 1024
    MODES = ("auto", "streams", "layers")
    # Measured with the default model on 2 idle cores (2 MB of L2 each): at batch 1 the split
    # runs ~10-13k samples/s against ~8k on one thread; at batch 2 two streams on two threads
    # (~15k) already beat it (~12k).
    LAYER_SPLIT_MAX_BATCH = 1
    RETIME_EVERY = 8
    RETIME_MAX = 128
    # Steps in a timing chunk of the mode not in use: long enough to time (tens of ms).
    PROBE = 256

    def __init__(
        self,
        model: WaveNet,
        dtype: torch.dtype | None = None,
        threads: int = 0,
        mode: str = "auto",
    ):
        super().__init__(model, dtype)
        if next(model.parameters()).device.type != "cpu":
            raise SensoriumError("the fused sampler runs on the CPU; use cached-eager on a GPU")
        if mode not in self.MODES:
            raise SensoriumError(
                f"fused sampler mode {mode!r}; expected one of {', '.join(self.MODES)}"
            )
        if mode == "layers" and self.config.num_layers < 2:
            raise SensoriumError(
                f"the layers mode needs a model of 2 or more layers, not {self.config.num_layers}"
            )
        from sensorium.fastgen.wavenet_kernel import pack_weights
        from sensorium.fastgen.wavenet_kernel_split import layer_split

        self.weights = pack_weights(model, self.dtype)
        self.dilations = np.asarray(self.config.dilations, dtype=np.int64)
        self.threads = threads or min(2, _usable_cpus())
        self.mode = mode
        self.split = layer_split(self.weights) if self.config.num_layers >= 2 else 0
        # Auto mode: last measured steps/s per (batch, mode); the mode in use, the full chunks
        # run since the other was timed, and after how many it is timed again.
        self.rates: dict[tuple[int, str], float] = {}
        self._best = ""
        self._since_probe = 0
        self._probe_after = self.RETIME_EVERY
        self._compiled = False

    def modes_for(self, batch: int) -> tuple[str, ...]:
        """The modes that a batch of `batch` streams may run in (auto mode picks by timing)."""
        if self.mode != "auto":
            return (self.mode,)
        small = batch <= self.LAYER_SPLIT_MAX_BATCH and self.config.num_layers >= 2
        return ("layers", "streams") if self.threads >= 2 and small else ("streams",)

    def next_chunk(self, batch: int, modes: tuple[str, ...]) -> tuple[str, int]:
        """Mode and length of the next chunk: the faster mode timed, now and then the other."""
        if len(modes) == 1:
            return modes[0], self.CHUNK
        untimed = [m for m in modes if (batch, m) not in self.rates]
        if untimed:
            return untimed[0], self.PROBE
        best = max(modes, key=lambda m: self.rates[batch, m])
        if best != self._best:
            self._best, self._since_probe, self._probe_after = best, 0, self.RETIME_EVERY
        self._since_probe += 1
        if self._since_probe > self._probe_after:
            self._since_probe = 0
            self._probe_after = min(2 * self._probe_after, self.RETIME_MAX)
            return next(m for m in modes if m != best), self.PROBE
        return best, self.CHUNK

    def _run_steps(self, out, start, uniforms, temperature, frame_bias, progress):
        from sensorium.fastgen.wavenet_kernel import run_steps
        from sensorium.fastgen.wavenet_kernel_split import run_steps_layer_split

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

        def work(mode: str, rows: np.ndarray, first: int, count: int) -> None:
            lo, hi = rows[0], rows[-1] + 1
            args = (
                self.dilations,
                self.offsets,
                state[lo:hi],
                bias[lo:hi],
                hop,
                out_np[lo:hi],
                start + first,
                count,
                u[first : first + count, lo:hi],
                temperature,
            )
            if mode == "layers":
                run_steps_layer_split(self.weights, self.split, *args)
            else:
                run_steps(self.weights, *args)

        def run_chunk(mode: str, first: int, count: int) -> None:
            if mode == "layers":
                work(mode, np.arange(B), first, count)
                return
            slices = np.array_split(np.arange(B), min(self.threads, B))
            threads = [
                threading.Thread(target=work, args=(mode, s, first, count)) for s in slices[1:]
            ]
            for thread in threads:
                thread.start()
            try:
                work(mode, slices[0], first, count)
            finally:
                for thread in threads:
                    thread.join()

        modes = self.modes_for(B)
        if len(modes) > 1 and not self._compiled:
            for mode in modes:  # compile (or load) first, so that no timing includes it
                run_chunk(mode, 0, 0)
            self._compiled = True
        total = uniforms.shape[0]
        first = 0
        while first < total:
            mode, size = self.next_chunk(B, modes)
            count = min(size, total - first)
            began = time.perf_counter()
            run_chunk(mode, first, count)
            if len(modes) > 1 and count >= self.PROBE // 2:
                rate = count / (time.perf_counter() - began)
                self.rates[B, mode] = rate
                logger.debug("fused sampler, batch %d: %s mode at %.0f steps/s", B, mode, rate)
            first += count
            if progress is not None:
                progress(count)


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


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
