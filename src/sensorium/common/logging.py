"""Logging set-up for the command line: a console handler and, optionally, a log file."""

from __future__ import annotations

import logging
from pathlib import Path


def setup_logging(log_file: Path | None = None, verbose: bool = False) -> None:
    """Configure the root logger once: concise console lines and a detailed file log."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(file_handler)
