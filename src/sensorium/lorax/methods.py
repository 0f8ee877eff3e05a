"""The continual learners: LoRAX and the baselines it is judged against, as one kind of net.

Shapes: B batch, D one extractor's feature width, K classes seen so far (2 per task).

Every learner is a set of feature extractors over one pretrained backbone, a linear
classifier over their concatenated features that grows by two classes (real, fake) per
task, and, for the expandable learners, an auxiliary head on the newest extractor. A task
splits the extractors into frozen ones (features that do not change while it trains, so the
trainer may compute them once) and the one that trains.

- lorax: one LoRA adapter per task on the frozen backbone; trains adapter t, the
  classifier and the auxiliary head; keeps a memory.
- expandable (DER without pruning, full rank): one whole backbone copy per task, each copied
  from the last; trains copy t, the classifier and the auxiliary head; keeps a memory.
- finetune: one backbone, all of it trained on each task in turn; no memory.
- replay: finetune with the memory.
- linear: the frozen backbone and a growing linear classifier; keeps a memory.
- joint: one backbone trained on every task's data so far (the upper bound); no memory.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from dataclasses import asdict, dataclass

import torch
from torch import nn

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

METHODS = ("lorax", "expandable", "finetune", "replay", "linear", "joint")
USES_MEMORY = {"lorax": True, "expandable": True, "finetune": False, "replay": True,
               "linear": True, "joint": False}  # fmt: skip


@dataclass
class LoraSettings:
    """LoRA on the backbone. `scale` is lora_alpha / rank (LoRAX: 16 / 64 = 0.25).

    `targets` is a regular expression that must match whole module names (PEFT's fullmatch
    rule); the default puts adapters on every attention input projection (`attn.qkv`), the
    layers LoRAX's own pattern reached in timm's ViT blocks.
    """

    rank: int = 8
    scale: float = 0.25
    dropout: float = 0.1
    targets: str = r".*\.attn\.qkv"

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise SensoriumError(f"LoRA rank {self.rank}; expected 1 or more")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise SensoriumError(f"LoRA scale {self.scale}; expected a positive number")
        if not 0 <= self.dropout < 1:
            raise SensoriumError(f"LoRA dropout {self.dropout}; expected 0 <= dropout < 1")
        try:
            re.compile(self.targets)
        except re.error as exc:
            raise SensoriumError(f"LoRA targets {self.targets!r}: {exc}") from exc

    def to_dict(self) -> dict:
        return asdict(self)


def _grown_linear(old: nn.Linear | None, inputs: int, outputs: int) -> nn.Linear:
    """A fresh Linear(inputs, outputs) with `old`'s weights copied into its top-left block
    (DER's expansion: old classes keep their weights on the old features)."""
    new = nn.Linear(inputs, outputs)
    if old is not None:
        with torch.no_grad():
            new.weight[: old.out_features, : old.in_features] = old.weight
            new.bias[: old.out_features] = old.bias
    return new


class ContinualNet(nn.Module):
    """Extractors, a growing classifier and (for expandable learners) an auxiliary head."""

    method = ""
    auxiliary = False

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.tasks = 0
        self.classifier: nn.Linear | None = None
        self.aux_head: nn.Linear | None = None

    # What each learner defines --------------------------------------------------------------
    def _add_extractor(self) -> None:
        raise NotImplementedError

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, D_frozen) features of the extractors that do not train now, or None."""
        raise NotImplementedError

    def new_features(self, x: torch.Tensor) -> torch.Tensor | None:
        """(B, D) features of the extractor that trains now, or None."""
        raise NotImplementedError

    def extractor_parameters(self) -> list[nn.Parameter]:
        """The extractor parameters that train in the current task."""
        raise NotImplementedError

    @property
    def total_feature_dim(self) -> int:
        return self.feature_dim

    # Shared -----------------------------------------------------------------------------------
    def begin_task(self) -> None:
        """Add task `tasks`: a new extractor where the learner has one per task, two classes."""
        self._add_extractor()
        classes = 2 * (self.tasks + 1)
        self.classifier = _grown_linear(self.classifier, self.total_feature_dim, classes)
        self.aux_head = nn.Linear(self.feature_dim, 3) if self.auxiliary and self.tasks else None
        self.tasks += 1

    @property
    def classes(self) -> int:
        return 2 * self.tasks

    def trainable_parameters(self) -> list[nn.Parameter]:
        heads = list(self.classifier.parameters())
        if self.aux_head is not None:
            heads += list(self.aux_head.parameters())
        return self.extractor_parameters() + heads

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D_total) concatenated features of every extractor."""
        parts = [f for f in (self.frozen_features(x), self.new_features(x)) if f is not None]
        return torch.cat(parts, dim=1)

    def forward(
        self, x: torch.Tensor, frozen: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, K) and auxiliary logits (B, 3) or None.

        `frozen` is the frozen extractors' features of `x` when already computed.
        """
        if frozen is None:
            with torch.no_grad():
                frozen = self.frozen_features(x)
        new = self.new_features(x)
        parts = [f for f in (frozen, new) if f is not None]
        logits = self.classifier(torch.cat(parts, dim=1))
        aux = self.aux_head(new) if self.aux_head is not None and new is not None else None
        return logits, aux


def auxiliary_targets(labels: torch.Tensor, tasks: int) -> torch.Tensor:
    """The auxiliary head's classes: 0 for any old class, 1 new real, 2 new fake."""
    first_new = 2 * (tasks - 1)
    return torch.where(labels < first_new, 0, labels - first_new + 1)


class LoraxNet(ContinualNet):
    """One PEFT LoRA adapter per task on a single frozen backbone; features concatenated."""

    method = "lorax"
    auxiliary = True

    def __init__(self, backbone: nn.Module, lora: LoraSettings) -> None:
        super().__init__(backbone.feature_dim)
        from peft import LoraConfig

        self.lora = lora
        self.config = LoraConfig(
            target_modules=lora.targets,
            r=lora.rank,
            lora_alpha=lora.scale * lora.rank,
            lora_dropout=lora.dropout,
            bias="none",
        )
        object.__setattr__(self, "_backbone", backbone)  # PEFT wraps it: not a second child
        self.peft: nn.Module | None = None
        self.adapters: list[str] = []
        self.targeted: list[str] = []

    @property
    def total_feature_dim(self) -> int:
        return self.feature_dim * len(self.adapters)

    def _add_extractor(self) -> None:
        from peft import get_peft_model

        name = f"task{self.tasks}"
        try:
            if self.peft is None:
                self.peft = get_peft_model(self._backbone, self.config, adapter_name=name)
            else:
                self.peft.add_adapter(name, self.config)
        except ValueError as exc:  # PEFT: the pattern matched no module
            raise SensoriumError(
                f"LoRA targets {self.lora.targets!r} match no layer of the backbone ({exc})"
            ) from exc
        self.adapters.append(name)
        self.peft.set_adapter(name)  # the newest adapter alone is trainable
        self.targeted = [n for n, m in self.peft.named_modules() if hasattr(m, "lora_A")]
        if not self.targeted:
            raise SensoriumError(f"LoRA targets {self.lora.targets!r} match no layer")
        logger.info("adapter %s on %d layers: %s", name, len(self.targeted), self.targeted)

    def _adapter_features(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self.peft.active_adapter != name:  # switching walks every module: only when needed
            self.peft.set_adapter(name)
        return self.peft(x)

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor | None:
        if len(self.adapters) < 2:
            return None
        training = self.peft.training
        self.peft.eval()  # frozen extractors run without LoRA dropout
        try:
            parts = [self._adapter_features(name, x) for name in self.adapters[:-1]]
        finally:
            self.peft.set_adapter(self.adapters[-1])  # restores which adapter trains
            self.peft.train(training)
        return torch.cat(parts, dim=1)

    def new_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._adapter_features(self.adapters[-1], x)

    def extractor_parameters(self) -> list[nn.Parameter]:
        name = self.adapters[-1]
        return [p for n, p in self.peft.named_parameters() if f".{name}." in n]


class ExpandableNet(ContinualNet):
    """DER without pruning: a full backbone copy per task, each copied from the last."""

    method = "expandable"
    auxiliary = True

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone.feature_dim)
        object.__setattr__(self, "_pretrained", backbone)  # only copied from, never trained
        self.extractors = nn.ModuleList()

    @property
    def total_feature_dim(self) -> int:
        return self.feature_dim * len(self.extractors)

    def _add_extractor(self) -> None:
        source = self.extractors[-1] if len(self.extractors) else self._pretrained
        for old in self.extractors:
            old.requires_grad_(False)
        new = copy.deepcopy(source).requires_grad_(True)
        self.extractors.append(new)

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor | None:
        if len(self.extractors) < 2:
            return None
        parts = []
        for old in self.extractors[:-1]:
            training = old.training
            old.eval()
            parts.append(old(x))
            old.train(training)
        return torch.cat(parts, dim=1)

    def new_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractors[-1](x)

    def extractor_parameters(self) -> list[nn.Parameter]:
        return list(self.extractors[-1].parameters())


class SingleNet(ContinualNet):
    """One backbone for every task: fine-tuned (finetune, replay, joint) or frozen (linear)."""

    def __init__(self, backbone: nn.Module, method: str) -> None:
        super().__init__(backbone.feature_dim)
        self.method = method
        self.frozen = method == "linear"
        self.backbone = backbone.requires_grad_(not self.frozen)

    def _add_extractor(self) -> None:
        pass

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.frozen:
            return None
        training = self.backbone.training
        self.backbone.eval()
        features = self.backbone(x)
        self.backbone.train(training)
        return features

    def new_features(self, x: torch.Tensor) -> torch.Tensor | None:
        return None if self.frozen else self.backbone(x)

    def extractor_parameters(self) -> list[nn.Parameter]:
        return [] if self.frozen else list(self.backbone.parameters())


def build_net(method: str, backbone: nn.Module, lora: LoraSettings) -> ContinualNet:
    """The learner `method` over `backbone` (which it takes over: pass a copy to keep one)."""
    if method == "lorax":
        backbone.requires_grad_(False)
        return LoraxNet(backbone, lora)
    if method == "expandable":
        return ExpandableNet(backbone)
    if method in ("finetune", "replay", "linear", "joint"):
        return SingleNet(backbone, method)
    raise SensoriumError(f"method {method!r}; expected one of {', '.join(METHODS)}")
