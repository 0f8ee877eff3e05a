"""The frozen backbone LoRAX adapts: a small vision transformer, or a user's own network.

Shapes: B batch, S image side, P patches (S / patch)^2, D width.

The module names follow timm's `VisionTransformer` (`patch_embed.proj`, `blocks.{i}.attn.qkv`,
`blocks.{i}.attn.proj`, `blocks.{i}.mlp.fc1`, `blocks.{i}.mlp.fc2`), so LoRA target patterns
written for timm ViTs apply unchanged.

A backbone, whatever its origin, maps images (B, 3, S, S), scaled to [-1, 1], to pooled
features (B, D) and says its `feature_dim` and `image_size`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "vit_backbone.pt"


@dataclass
class ViTConfig:
    image_size: int = 32
    patch_size: int = 8
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.patch_size < 1 or self.image_size % self.patch_size:
            raise SensoriumError(
                f"ViT image size {self.image_size} and patch size {self.patch_size}: the patch "
                "size must divide the image size"
            )
        if self.dim % self.heads:
            raise SensoriumError(f"ViT width {self.dim} is not divisible by {self.heads} heads")

    def to_dict(self) -> dict:
        return asdict(self)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, P, D)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, D/heads)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Pre-norm ViT with a class token; `forward` returns the normalised class token (B, D)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.config = cfg
        patches = (cfg.image_size // cfg.patch_size) ** 2
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.randn(1, patches + 1, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)

    @property
    def feature_dim(self) -> int:
        return self.config.dim

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (B, P, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])


def load_shipped_backbone() -> VisionTransformer:
    """The ViT pretrained here and shipped in the package (docs/lorax.md says how)."""
    if not SHIPPED_WEIGHTS.is_file():
        raise SensoriumError(
            f"the shipped backbone {str(SHIPPED_WEIGHTS)!r} is missing; reinstall sensorium or "
            "pass --backbone and --backbone-weights"
        )
    data = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
    model = VisionTransformer(ViTConfig(**data["config"]))
    model.load_state_dict(data["model"])
    return model


def save_backbone(model: VisionTransformer, path: Path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config.to_dict(), "model": model.state_dict(), "info": info}, path)


class _UserBackbone(nn.Module):
    """A user's network, with the feature size and input size read off a trial forward pass."""

    def __init__(self, net: nn.Module, image_size: int) -> None:
        super().__init__()
        self.net = net
        self._image_size = image_size
        if image_size < 1:
            raise SensoriumError(f"image size {image_size}; expected 1 or more pixels")
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                out = net(torch.zeros(1, 3, image_size, image_size))
        except Exception as exc:  # a user's network may fail in any way
            raise SensoriumError(
                f"the backbone fails on an image batch (1, 3, {image_size}, {image_size}): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                "check --image-size"
            ) from exc
        net.train(was_training)
        if not torch.is_tensor(out) or out.dim() != 2:
            shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise SensoriumError(
                f"the backbone returns {shape} for an image batch (1, 3, {image_size}, "
                f"{image_size}); expected pooled features (B, D) (drop its classifier head)"
            )
        self._feature_dim = int(out.shape[1])

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    @property
    def image_size(self) -> int:
        return self._image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _build_user_network(spec: str) -> nn.Module:
    """`timm:NAME` (timm installed), `FILE.py:FUNCTION` or `package.module:FUNCTION`."""
    source, _, name = spec.rpartition(":")
    if not source or not name:
        raise SensoriumError(
            f"backbone {spec!r}; expected 'vit' (the shipped one), 'timm:MODEL_NAME', "
            "'FILE.py:FUNCTION' or 'package.module:FUNCTION'"
        )
    if source == "timm":
        try:
            import timm
        except ImportError as exc:
            raise SensoriumError(f"backbone {spec!r} needs timm; pip install timm") from exc
        try:
            return timm.create_model(name, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise SensoriumError(f"timm has no model {name!r}") from exc
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise SensoriumError(f"backbone file {source!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # a user's file may fail in any way
            raise SensoriumError(
                f"backbone file {source!r} fails to load: {type(exc).__name__}: {exc}"
            ) from exc
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise SensoriumError(f"backbone module {source!r} cannot be imported: {exc}") from exc
    build = getattr(module, name, None)
    if not callable(build):
        raise SensoriumError(f"backbone {spec!r}: {source!r} has no function {name!r}")
    try:
        net = build()
    except Exception as exc:  # a user's function may fail in any way
        raise SensoriumError(
            f"backbone {spec!r}: calling {name}() failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(net, nn.Module):
        raise SensoriumError(f"backbone {spec!r} returned {type(net).__name__}, not a module")
    return net


def build_backbone(
    spec: str = "vit", weights: Path | None = None, image_size: int | None = None
) -> nn.Module:
    """The backbone named by `spec`, with `weights` (a state dict file) loaded if given.

    "vit" is the shipped pretrained ViT (32 x 32 inputs). A user's network must map
    (B, 3, S, S) images in [-1, 1] to (B, D) features; `image_size` (default 224) is S.
    """
    if spec == "vit":
        if weights is not None:
            raise SensoriumError("--backbone-weights goes with a user backbone, not 'vit'")
        vit = load_shipped_backbone()
        if image_size is not None and image_size != vit.image_size:
            raise SensoriumError(
                f"--image-size {image_size}: the shipped ViT takes {vit.image_size} x "
                f"{vit.image_size} images; --image-size goes with a user backbone"
            )
        return vit
    net = _build_user_network(spec)
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise SensoriumError(f"backbone weights {str(weights)!r} do not exist")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged files
            raise SensoriumError(f"backbone weights {str(weights)!r} are unreadable") from exc
        state = state.get("model", state) if isinstance(state, dict) else state
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise SensoriumError(f"backbone weights {str(weights)!r} do not fit: {first}") from exc
    else:
        logger.warning("backbone %s has random weights: no --backbone-weights given", spec)
    return _UserBackbone(net, 224 if image_size is None else image_size)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
