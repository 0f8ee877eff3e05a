"""A fixed-size exemplar memory, chosen by herding and split evenly over the classes seen.

Herding (iCaRL, Rebuffi et al. 2017) orders a class's images so that the mean feature of the
first k approximates the class mean as closely as possible, for every k. When new classes
arrive, each gets `size // classes_seen` slots filled from the front of its herding order,
and every old class is cut back to as many, keeping the front of its order: the memory never
holds more than `size` images.

Shapes: N images, D feature width, S image side.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from sensorium.common.errors import SensoriumError


def herding_order(features: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` rows of `features` (N, D), in herding order.

    Rows are L2-normalised first. Step k picks the row that brings the running mean of the
    chosen rows closest to the class mean; a row is chosen at most once; ties go to the
    lowest index.
    """
    features = np.asarray(features, dtype=np.float64)
    n = features.shape[0]
    count = min(count, n)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    features = features / np.maximum(norms, 1e-12)
    mean = features.mean(axis=0)
    chosen = np.zeros(n, dtype=bool)
    total = np.zeros_like(mean)
    order = []
    for k in range(1, count + 1):
        candidates = (total[None, :] + features) / k  # (N, D): running mean with each row
        distance = np.sum((mean[None, :] - candidates) ** 2, axis=1)
        distance[chosen] = np.inf
        pick = int(np.argmin(distance))
        order.append(pick)
        chosen[pick] = True
        total += features[pick]
    return np.array(order, dtype=np.int64)


class ExemplarMemory:
    """Up to `size` images (S, S, 3 uint8) with their labels, evenly over the classes seen."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise SensoriumError(f"memory size {size}; expected 0 or more images")
        self.size = size
        self.by_class: dict[int, np.ndarray] = {}  # label -> (m, S, S, 3), herding order

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_class.values())

    def per_class(self, classes: int) -> int:
        return self.size // max(classes, 1)

    def add_classes(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        features: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Herd the classes in `labels` (all new) from `images` (N, S, S, 3); cut old ones.

        `features(images)` gives the (N, D) features herding works on.
        """
        if self.size == 0:
            return
        new = sorted(int(c) for c in np.unique(labels))
        clash = [c for c in new if c in self.by_class]
        if clash:
            raise ValueError(f"classes {clash} are already in the memory")
        per = self.per_class(len(self.by_class) + len(new))
        for label in list(self.by_class):
            self.by_class[label] = self.by_class[label][:per]
        for label in new:
            members = images[labels == label]
            order = herding_order(features(members), per)
            self.by_class[label] = members[order]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All exemplars (M, S, S, 3) and their labels (M,), classes in ascending order."""
        if not self.by_class:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8), np.zeros(0, dtype=np.int64)
        labels = sorted(self.by_class)
        images = np.concatenate([self.by_class[c] for c in labels])
        counts = [len(self.by_class[c]) for c in labels]
        return images, np.repeat(np.array(labels, dtype=np.int64), counts)

    def state_dict(self) -> dict:
        """Tensors, so that checkpoints load with `weights_only=True`."""
        by_class = {
            int(k): torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.by_class.items()
        }
        return {"size": self.size, "by_class": by_class}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.by_class = {int(k): torch.as_tensor(v).numpy() for k, v in state["by_class"].items()}
