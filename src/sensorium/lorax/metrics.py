"""Continual attribution metrics: the accuracy matrix and what is read off it.

Class numbering: task t owns classes 2t (its real images) and 2t + 1 (its fakes).

Attribution accuracy (CDDB's "multi-real" rule): a real image is right when predicted as any
real class, a fake only when its own generator's class is predicted. Binary accuracy asks
only real against fake.

The accuracy matrix R has R[i, j] = accuracy on task i's test images after training task j
(NaN for i > j: not seen yet).
"""

from __future__ import annotations

import numpy as np


def attribution_correct(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: real (even label) right when predicted even; fake right when exact."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    real = labels % 2 == 0
    return np.where(real, predicted % 2 == 0, predicted == labels)


def binary_correct(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: predicted real/fake agrees with the truth."""
    return np.asarray(predicted) % 2 == np.asarray(labels) % 2


def average_incremental_accuracy(R: np.ndarray) -> float:
    """Mean over steps j of the mean accuracy on tasks 0..j."""
    return float(np.mean([np.mean(R[: j + 1, j]) for j in range(R.shape[1])]))


def final_average_accuracy(R: np.ndarray) -> float:
    """Mean accuracy over all tasks after the last one."""
    return float(np.mean(R[:, -1]))


def backward_transfer(R: np.ndarray) -> float:
    """Mean over tasks i before the last of R[i, last] - R[i, i]; negative is forgetting.

    0.0 for a single task.
    """
    T = R.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([R[i, T - 1] - R[i, i] for i in range(T - 1)]))


def summarize(R: np.ndarray, binary: np.ndarray) -> dict:
    """The headline figures of a run, in percent, from its two accuracy matrices (fractions)."""
    return {
        "average_incremental_accuracy": 100 * average_incremental_accuracy(R),
        "final_average_accuracy": 100 * final_average_accuracy(R),
        "backward_transfer": 100 * backward_transfer(R),
        "final_binary_accuracy": 100 * final_average_accuracy(binary),
    }
