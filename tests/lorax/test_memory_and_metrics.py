"""Herding memory against a plain reference, and the continual metrics on known matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorium.common.errors import SensoriumError
from sensorium.lorax.memory import ExemplarMemory, herding_order
from sensorium.lorax.metrics import (
    attribution_correct,
    average_incremental_accuracy,
    backward_transfer,
    binary_correct,
    final_average_accuracy,
)


def plain_herding(features: np.ndarray, count: int) -> list[int]:
    """iCaRL herding written out one candidate at a time."""
    rows = [[v / math.sqrt(sum(u * u for u in f)) for v in f] for f in features.tolist()]
    d = len(rows[0])
    mean = [sum(r[j] for r in rows) / len(rows) for j in range(d)]
    chosen: list[int] = []
    total = [0.0] * d
    for k in range(1, min(count, len(rows)) + 1):
        best, best_distance = -1, math.inf
        for i, r in enumerate(rows):
            if i in chosen:
                continue
            distance = sum((mean[j] - (total[j] + r[j]) / k) ** 2 for j in range(d))
            if distance < best_distance:
                best, best_distance = i, distance
        chosen.append(best)
        total = [total[j] + rows[best][j] for j in range(d)]
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_herding_matches_plain_reference(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(40, 6)) + rng.normal(size=6)
    count = int(rng.integers(1, 40))
    assert herding_order(features, count).tolist() == plain_herding(features, count)


def test_herding_first_pick_is_nearest_the_mean_and_count_is_capped():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert herding_order(features, 1).tolist() == [2]
    assert sorted(herding_order(features, 10).tolist()) == [0, 1, 2]


def _images(n: int, value: int) -> np.ndarray:
    return (
        np.full((n, 4, 4, 3), value, dtype=np.uint8)
        + np.arange(n, dtype=np.uint8)[:, None, None, None]
    )


def test_memory_splits_evenly_and_keeps_herding_front():
    memory = ExemplarMemory(12)
    images = np.concatenate([_images(10, 0), _images(10, 100)])
    labels = np.repeat([0, 1], 10)
    feats = lambda im: im.reshape(len(im), -1)[:, :3].astype(float) + 1  # noqa: E731
    memory.add_classes(images, labels, feats)
    first = {c: v.copy() for c, v in memory.by_class.items()}
    assert [len(v) for v in first.values()] == [6, 6]
    memory.add_classes(_images(10, 200), np.full(10, 2), feats)
    memory.add_classes(_images(10, 50), np.full(10, 3), feats)
    assert len(memory) == 12 and {len(v) for v in memory.by_class.values()} == {3}
    # Old classes keep the front of their herding order.
    np.testing.assert_array_equal(memory.by_class[0], first[0][:3])
    images_all, labels_all = memory.arrays()
    assert images_all.shape == (12, 4, 4, 3) and labels_all.tolist() == sorted(labels_all.tolist())
    restored = ExemplarMemory(0)
    restored.load_state_dict(memory.state_dict())
    np.testing.assert_array_equal(restored.arrays()[0], images_all)
    with pytest.raises(ValueError, match="already"):
        memory.add_classes(_images(2, 0), np.full(2, 3), feats)
    with pytest.raises(SensoriumError):
        ExemplarMemory(-1)


def test_attribution_rule():
    labels = np.array([0, 0, 1, 1, 2, 3])
    predicted = np.array([2, 1, 1, 3, 0, 3])
    assert attribution_correct(predicted, labels).tolist() == [True, False, True, False, True, True]
    assert binary_correct(predicted, labels).tolist() == [True, False, True, True, True, True]


def test_matrix_metrics():
    nan = np.nan
    R = np.array([[0.9, 0.8, 0.7], [nan, 1.0, 0.9], [nan, nan, 0.6]])
    assert average_incremental_accuracy(R) == pytest.approx((0.9 + 0.9 + (0.7 + 0.9 + 0.6) / 3) / 3)
    assert final_average_accuracy(R) == pytest.approx((0.7 + 0.9 + 0.6) / 3)
    assert backward_transfer(R) == pytest.approx(((0.7 - 0.9) + (0.9 - 1.0)) / 2)
    assert backward_transfer(np.array([[0.5]])) == 0.0
