"""The draws of `sampling.py` and `logistic_mixture.py` compiled with Numba, for loops where a
few microseconds of PyTorch dispatch per call would dominate.

Each function mirrors its PyTorch reference operation for operation; the tests hold the two
to identical draws on the same uniforms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sensorium.fastgen.logistic_mixture import LEVELS, LOG_SCALE_FLOOR, UNIFORM_MARGIN


@njit(cache=True, nogil=True)
def sample_class(logits: np.ndarray, u: float, temperature: float) -> int:
    """Mirror of `sampling.sample_from_logits` for one row of logits (Q,)."""
    Q = logits.shape[0]
    if temperature == 0.0:
        best = 0
        for q in range(1, Q):
            if logits[q] > logits[best]:
                best = q
        return best
    top = -np.inf
    for q in range(Q):
        top = max(top, np.float64(logits[q]) / temperature)
    total = 0.0
    cdf = np.empty(Q, dtype=np.float64)
    for q in range(Q):
        total += math.exp(np.float64(logits[q]) / temperature - top)
        cdf[q] = total
    target = u * total
    for q in range(Q):
        if cdf[q] > target:
            return q
    return Q - 1


@njit(cache=True, nogil=True)
def draw_mixture_pixels(
    params: np.ndarray, uniforms: np.ndarray, channels: int, mixtures: int, levels: np.ndarray
) -> None:
    """Mirror of `logistic_mixture.sample_pixels`: levels (N, C) int64 written in place from
    params (N, P) and uniforms (N, 1 + C), both float64."""
    K, C = mixtures, channels
    means, scales, coeffs = K, K + C * K, K + 2 * C * K  # where each block of P starts
    values = np.empty(C, dtype=np.float64)
    for n in range(params.shape[0]):
        k = sample_class(params[n, :K], uniforms[n, 0], 1.0)
        pair = 0
        for c in range(C):
            mean = params[n, means + c * K + k]
            for earlier in range(c):
                mean += math.tanh(params[n, coeffs + pair * K + k]) * values[earlier]
                pair += 1
            scale = math.exp(max(params[n, scales + c * K + k], LOG_SCALE_FLOOR))
            u = min(max(uniforms[n, 1 + c], UNIFORM_MARGIN), 1.0 - UNIFORM_MARGIN)
            draw = mean + scale * (math.log(u) - math.log1p(-u))
            level = min(max(np.rint((draw + 1.0) * (LEVELS - 1) / 2.0), 0.0), LEVELS - 1.0)
            levels[n, c] = int(level)
            values[c] = level / (LEVELS - 1) * 2.0 - 1.0
