"""Linear probes on frozen features: one logistic regression per task and feature kind.

Feature kinds:
- an encoder checkpoint (the principle-driven one, the plain-contrastive baseline, or the
  same architecture with random weights): its embedding, averaged over an example's windows;
- "spectrum": the log-magnitude spectrum of each window, pooled to 256 bands;
- "raw": the windows' samples themselves (real and imaginary part).

Each task is split once, stratified, into 70% for fitting and 30% held out; the features
are standardised on the fitting part, a multinomial logistic regression (scikit-learn) is
fitted, and top-1 and top-3 accuracy are read on the held-out part.

Shapes: N examples, W windows, T window length, D features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from sensorium.phai.encoder import PrincipleEncoder
from sensorium.phai.tasks import ProbeTask

logger = logging.getLogger(__name__)

SPECTRUM_BANDS = 256
HELD_OUT = 0.3

Featurizer = Callable[[np.ndarray], np.ndarray]  # (N, W, 2, T) -> (N, D)


def encoder_features(
    encoder: PrincipleEncoder, batch_size: int = 256, device: str = "cpu"
) -> Featurizer:
    """Embeddings averaged over windows: (N, W, 2, T) -> (N, D + 1)."""
    encoder = encoder.eval().to(device)

    @torch.no_grad()
    def features(x: np.ndarray) -> np.ndarray:
        n, w = x.shape[:2]
        flat = torch.from_numpy(np.ascontiguousarray(x.reshape(n * w, *x.shape[2:])))
        out = [encoder(chunk.to(device)).cpu() for chunk in flat.split(batch_size)]
        return torch.cat(out).reshape(n, w, -1).mean(1).numpy()

    return features


def spectrum_features(x: np.ndarray) -> np.ndarray:
    """Log-magnitude spectra, pooled to SPECTRUM_BANDS bands, averaged over windows."""
    z = x[:, :, 0].astype(np.float64) + 1j * x[:, :, 1]  # (N, W, T)
    mag = np.abs(np.fft.fftshift(np.fft.fft(z, axis=-1), axes=-1))
    t = z.shape[-1]
    edges = np.linspace(0, t, min(SPECTRUM_BANDS, t) + 1).astype(int)
    bands = np.add.reduceat(mag, edges[:-1], axis=-1) / np.diff(edges)  # (N, W, bands)
    return np.log(bands + 1e-6).mean(1)


def raw_features(x: np.ndarray) -> np.ndarray:
    """The samples themselves, averaged over windows: (N, 2T)."""
    return x.reshape(*x.shape[:2], -1).mean(1)


@dataclass
class ProbeResult:
    task: str
    group: str
    features: str
    classes: int
    train: int
    test: int
    top1: float
    top3: float


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified indices for fitting and held-out evaluation."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    return train_test_split(index, test_size=HELD_OUT, stratify=y, random_state=seed)


def linear_probe(
    features: np.ndarray, y: np.ndarray, fit: np.ndarray, test: np.ndarray, seed: int
) -> tuple[float, float]:
    """Top-1 and top-3 accuracy of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import top_k_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not np.all(np.isfinite(features)):
        raise ValueError("features hold NaN or infinite values")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(features[fit], y[fit])
    proba = model.predict_proba(features[test])
    labels = model.classes_
    top1 = float(np.mean(labels[proba.argmax(1)] == y[test]))
    k = min(3, len(labels) - 1) if len(labels) > 2 else 1
    top3 = float(top_k_accuracy_score(y[test], proba, k=k, labels=labels)) if k > 1 else top1
    return top1, top3


def probe_task(
    task: ProbeTask, featurizers: dict[str, Featurizer], seed: int = 0, progress: bool = False
) -> list[ProbeResult]:
    """Every feature kind of `featurizers` probed on one task."""
    fit, test = split(task.y, seed)
    results = []
    for name, featurize in tqdm(
        featurizers.items(), desc=task.name, unit="features", disable=not progress, leave=False
    ):
        features = featurize(task.x)
        top1, top3 = linear_probe(features, task.y, fit, test, seed)
        results.append(
            ProbeResult(
                task.name, task.group, name, len(task.classes), len(fit), len(test), top1, top3
            )
        )
        logger.info("%s / %s: top-1 %.3f, top-3 %.3f", task.name, name, top1, top3)
    return results


def group_means(results: list[ProbeResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{features: {"all" | "physical" | "semantic": {"top1", "top3", "tasks"}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in dict.fromkeys(r.features for r in results):
        mine = [r for r in results if r.features == kind]
        out[kind] = {}
        for group in ("all", "physical", "semantic"):
            chosen = [r for r in mine if group in ("all", r.group)]
            if chosen:
                out[kind][group] = {
                    "top1": float(np.mean([r.top1 for r in chosen])),
                    "top3": float(np.mean([r.top3 for r in chosen])),
                    "tasks": len(chosen),
                }
    return out
