"""WaveNet: a stack of gated, dilated causal convolutions over mu-law sample classes.

Shape letters used in this module:
    B  batch (independent streams)
    T  time, in samples
    F  conditioning frames (local conditioning runs at a lower rate, `local_hop` samples a frame)
    Q  quantisation classes (256 mu-law levels)
    R  residual channels, G gate channels, S skip channels, C local-conditioning channels
    L  layers (all stacks together)

Position t of the network's output predicts sample t + 1 from samples 0..t. Every layer pads
its input on the left with zeros, so the first output depends on sample 0 alone; the cached
samplers reproduce exactly this by starting every layer's buffer at zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sensorium.common.errors import SensoriumError

# Past this a single training crop no longer fits in memory (2^20 samples: 2 min at 8 kHz).
MAX_RECEPTIVE_FIELD = 2**20


@dataclass
class WaveNetConfig:
    """Settings of one WaveNet. Validated on creation; errors quote the bad value."""

    residual_channels: int = 64
    gate_channels: int = 64
    skip_channels: int = 128
    kernel_size: int = 2
    layers_per_stack: int = 10
    stacks: int = 2
    quantization: int = 256
    sample_rate: int = 8000
    # Global conditioning: number of ids (speakers, classes); 0 switches it off.
    global_classes: int = 0
    # Local conditioning: channels of the frame features (e.g. log-mel bins); 0 switches it off.
    local_channels: int = 0
    # Samples per local-conditioning frame.
    local_hop: int = 80

    def __post_init__(self) -> None:
        positive = (
            "residual_channels",
            "gate_channels",
            "skip_channels",
            "layers_per_stack",
            "stacks",
            "sample_rate",
            "local_hop",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SensoriumError(f"WaveNet setting {name}={value!r} must be an integer >= 1")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 2:
            raise SensoriumError(f"WaveNet kernel_size={self.kernel_size!r} must be >= 2")
        if not isinstance(self.quantization, int) or not 2 <= self.quantization <= 65536:
            raise SensoriumError(
                f"WaveNet quantization={self.quantization!r} must be between 2 and 65536"
            )
        for name in ("global_classes", "local_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SensoriumError(f"WaveNet setting {name}={value!r} must be an integer >= 0")
        if self.receptive_field > MAX_RECEPTIVE_FIELD:
            raise SensoriumError(
                f"WaveNet receptive field {self.receptive_field:,} samples is more than "
                f"{MAX_RECEPTIVE_FIELD:,}: fewer layers per stack or a smaller kernel"
            )

    @property
    def dilations(self) -> list[int]:
        """Per layer: 1, 2, ..., 2^(n-1), repeated for every stack."""
        return [2**i for _ in range(self.stacks) for i in range(self.layers_per_stack)]

    @property
    def num_layers(self) -> int:
        return self.stacks * self.layers_per_stack

    @property
    def receptive_field(self) -> int:
        """How many input samples one output sees (the current one included)."""
        return (self.kernel_size - 1) * sum(self.dilations) + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WaveNetConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise SensoriumError(f"unknown WaveNet settings {sorted(unknown)}")
        return cls(**values)


class WaveNet(nn.Module):
    """The model used for training and for the naive (full-pass) sampler.

    The cached samplers read this module's weights; they never change them.
    """

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        R, G, S, Q = (
            config.residual_channels,
            config.gate_channels,
            config.skip_channels,
            config.quantization,
        )
        L = config.num_layers
        self.embed = nn.Embedding(Q, R)
        self.dilated = nn.ModuleList(
            nn.Conv1d(R, 2 * G, config.kernel_size, dilation=d) for d in config.dilations
        )
        self.residual = nn.ModuleList(nn.Conv1d(G, R, 1) for _ in range(L))
        # The last layer's residual output feeds nothing. Its conv is kept so every layer has
        # the same shape for the samplers, but frozen so DDP does not wait for its gradient.
        self.residual[-1].requires_grad_(False)
        self.skip = nn.ModuleList(nn.Conv1d(G, S, 1) for _ in range(L))
        self.head_hidden = nn.Conv1d(S, Q, 1)
        self.head_out = nn.Conv1d(Q, Q, 1)
        # Conditioning enters every layer's gate as an extra bias: (L * 2G) values per step.
        self.global_embed = (
            nn.Embedding(config.global_classes, L * 2 * G) if config.global_classes else None
        )
        # Frame-level features see their neighbours (kernel 3): the whole feature sequence is
        # known before generation starts, so this needs no causality.
        self.local_proj = (
            nn.Conv1d(config.local_channels, L * 2 * G, 3, padding=1)
            if config.local_channels
            else None
        )

    # ----------------------------------------------------------------------------------------
    # Conditioning
    # ----------------------------------------------------------------------------------------
    def check_conditioning(
        self, batch: int, global_id: torch.Tensor | None, local: torch.Tensor | None
    ) -> None:
        """Raise a clear error when the conditioning inputs do not fit this model."""
        cfg = self.config
        if cfg.global_classes and global_id is None:
            raise SensoriumError(
                f"this model is globally conditioned on {cfg.global_classes} ids; "
                "give a global id (--global-id)"
            )
        if not cfg.global_classes and global_id is not None:
            raise SensoriumError("this model has no global conditioning; drop the global id")
        if global_id is not None:
            if global_id.shape != (batch,):
                raise SensoriumError(
                    f"global ids of shape {tuple(global_id.shape)}; expected ({batch},)"
                )
            if int(global_id.min()) < 0 or int(global_id.max()) >= cfg.global_classes:
                raise SensoriumError(
                    f"global id {global_id.tolist()} out of range; "
                    f"expected 0..{cfg.global_classes - 1}"
                )
        if cfg.local_channels and local is None:
            raise SensoriumError(
                f"this model is locally conditioned on {cfg.local_channels}-channel frames; "
                "give conditioning features (--local)"
            )
        if not cfg.local_channels and local is not None:
            raise SensoriumError("this model has no local conditioning; drop the features")
        if local is not None and (
            local.dim() != 3 or local.shape[:2] != (batch, cfg.local_channels)
        ):
            raise SensoriumError(
                f"local features of shape {tuple(local.shape)}; "
                f"expected ({batch}, {cfg.local_channels}, frames)"
            )

    def frame_bias(
        self, global_id: torch.Tensor | None, local: torch.Tensor | None, batch: int
    ) -> torch.Tensor | None:
        """Per-frame gate bias of every layer: (B, F, L, 2G), with F = 1 without local frames.

        Returns None when the model is unconditioned.
        """
        cfg = self.config
        L, G2 = cfg.num_layers, 2 * cfg.gate_channels
        bias = None
        if self.local_proj is not None and local is not None:
            bias = self.local_proj(local).transpose(1, 2)  # (B, F, L*2G)
        if self.global_embed is not None and global_id is not None:
            g = self.global_embed(global_id)[:, None, :]  # (B, 1, L*2G)
            bias = g if bias is None else bias + g
        if bias is None:
            return None
        return bias.reshape(batch, bias.shape[1], L, G2)  # (B, F, L, 2G)

    def frame_index(self, positions: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The conditioning frame each network position uses.

        Position t predicts sample t + 1, so it reads the frame that sample falls in. Positions
        past the last frame reuse it (generation may run a little past the features).
        """
        return torch.clamp((positions + 1) // self.config.local_hop, max=num_frames - 1)

    def sample_bias(
        self, frame_bias: torch.Tensor | None, start: int, length: int
    ) -> torch.Tensor | None:
        """Gate bias at sample rate for positions start..start+length-1: (B, L, 2G, T)."""
        if frame_bias is None:
            return None
        num_frames = frame_bias.shape[1]
        if num_frames == 1:
            return frame_bias[:, 0, :, :, None]  # (B, L, 2G, 1), broadcast over time
        positions = torch.arange(start, start + length, device=frame_bias.device)
        idx = self.frame_index(positions, num_frames)
        return frame_bias[:, idx].permute(0, 2, 3, 1)  # (B, L, 2G, T)

    # ----------------------------------------------------------------------------------------
    # Full pass
    # ----------------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        global_id: torch.Tensor | None = None,
        local: torch.Tensor | None = None,
        start: int = 0,
        layer_inputs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits for the next sample at every position.

        Args:
            x: (B, T) class indices in [0, Q).
            global_id: (B,) ids, for a globally conditioned model.
            local: (B, C, F) frame features, for a locally conditioned model.
            start: absolute position of x[:, 0], which picks the conditioning frames.
            layer_inputs: if a list is given, every layer's input (B, R, T) is appended to it.

        Returns:
            (B, Q, T) logits; position t scores sample t + 1.
        """
        B = x.shape[0]
        self.check_conditioning(B, global_id, local)
        return self.run(x, self.frame_bias(global_id, local, B), start, layer_inputs)

    def run(
        self,
        x: torch.Tensor,
        frame_bias: torch.Tensor | None,
        start: int = 0,
        layer_inputs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """`forward` with the conditioning already turned into `frame_bias` (B, F, L, 2G)."""
        cfg = self.config
        G = cfg.gate_channels
        bias = self.sample_bias(frame_bias, start, x.shape[1])

        h = self.embed(x).transpose(1, 2)  # (B, R, T)
        skip = 0.0
        for layer, d in enumerate(cfg.dilations):
            if layer_inputs is not None:
                layer_inputs.append(h)
            z = self.dilated[layer](F.pad(h, ((cfg.kernel_size - 1) * d, 0)))  # (B, 2G, T)
            if bias is not None:
                z = z + bias[:, layer]
            gated = torch.tanh(z[:, :G]) * torch.sigmoid(z[:, G:])  # (B, G, T)
            h = h + self.residual[layer](gated)
            skip = skip + self.skip[layer](gated)
        return self.head(skip)

    def head(self, skip: torch.Tensor) -> torch.Tensor:
        """Skip sum (B, S, T) to logits (B, Q, T)."""
        return self.head_out(F.relu(self.head_hidden(F.relu(skip))))
