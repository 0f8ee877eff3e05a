"""Guarding the user's files: nothing existing is overwritten without asking."""

from __future__ import annotations

from pathlib import Path

from sensorium.common.errors import SensoriumError


def _check_parents(path: Path) -> None:
    """Refuse a path under an existing file (its folders could never be made)."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SensoriumError(
                    f"output {str(path)!r} lies under {str(parent)!r}, a file, not a folder"
                )
            return


def check_writable(path: Path, force: bool) -> Path:
    """Refuse to overwrite an existing file unless `force`; create the parent folder.

    Returns the path unchanged so calls can be chained.
    """
    path = Path(path)
    _check_parents(path)
    if path.exists() and not force:
        raise SensoriumError(f"output {str(path)!r} already exists; pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise SensoriumError(f"output {str(path)!r} is a folder; expected a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_run_dir(path: Path, force: bool, resume: bool = False, resumable: bool = True) -> Path:
    """A run folder must be new or empty, unless resuming or forced; `resumable` says
    whether the verb has a --resume to suggest."""
    path = Path(path)
    _check_parents(path)
    if path.exists() and not path.is_dir():
        raise SensoriumError(f"run folder {str(path)!r} is a file; expected a folder")
    if path.exists() and any(path.iterdir()) and not (force or resume):
        advice = "pass --resume to continue it or --force" if resumable else "pass --force"
        raise SensoriumError(f"run folder {str(path)!r} is not empty; {advice} to write over it")
    path.mkdir(parents=True, exist_ok=True)
    return path
