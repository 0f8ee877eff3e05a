"""Checkpoints that carry their model's kind and settings, and loading that checks both."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sensorium.common.distributed import resolve_device
from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def save_checkpoint(path: Path, kind: str, payload: dict[str, Any]) -> None:
    """Write `payload` (settings, state dicts, counters) tagged with the model `kind`.

    Written to a temporary file first, then renamed, so an interrupted save never leaves a
    damaged checkpoint behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"kind": kind, "format_version": FORMAT_VERSION, **payload}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, kind: str) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` and check it holds a `kind` model."""
    path = Path(path)
    if not path.exists():
        raise SensoriumError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise SensoriumError(f"checkpoint {str(path)!r} is a folder; expected a .pt file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise SensoriumError(
            f"checkpoint {str(path)!r} could not be read ({type(exc).__name__}); "
            "is it a damaged or non-sensorium file?"
        ) from exc
    if not isinstance(data, dict) or "kind" not in data:
        raise SensoriumError(f"checkpoint {str(path)!r} is not a sensorium checkpoint")
    if data["kind"] != kind:
        raise SensoriumError(
            f"checkpoint {str(path)!r} holds a {data['kind']!r} model; expected a {kind!r} model"
        )
    return data


def load_weights(model: torch.nn.Module, state: Any, path: Path) -> None:
    """Load a state dict into `model`, or say in one line why it does not fit."""
    if not isinstance(state, dict):
        raise SensoriumError(f"checkpoint {str(path)!r} is damaged: it holds no weights")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        k
        for k in expected
        if k in state
        and (not torch.is_tensor(state[k]) or tuple(state[k].shape) != tuple(expected[k].shape))
    ]
    problems = [
        f"{len(names)} {what} (first: {names[0]})"
        for names, what in ((missing, "missing"), (unexpected, "unexpected"), (wrong, "misshapen"))
        if names
    ]
    if problems:
        raise SensoriumError(
            f"checkpoint {str(path)!r} is damaged: its weights do not fit the model its settings "
            f"describe: {'; '.join(problems)}"
        )
    model.load_state_dict(state)


def load_model(
    path: Path, kind: str, build: Callable[[dict], torch.nn.Module], device: str = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A `kind` model built by `build(settings)` from a checkpoint, with its weights loaded,
    in eval mode on `device`; and the checkpoint's contents."""
    data = load_checkpoint(path, kind)
    try:
        model = build(data["config"])
    except (KeyError, TypeError) as exc:
        raise SensoriumError(f"checkpoint {str(path)!r} is damaged: {exc!r}") from exc
    load_weights(model, data.get("model"), path)
    return model.to(resolve_device(device)).eval(), data
