"""A training run's metrics as CSV: one row per evaluation, appended as the run goes."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


class MetricsLog:
    """Appends rows to `path`; writes the header only when the file is new, so a resumed run
    continues the same file."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)

    def append(self, values: Sequence[float | int]) -> None:
        """One row; floats with four decimals."""
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} values for columns {self.columns}")
        row = [f"{v:.4f}" if isinstance(v, float) else v for v in values]
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow(row)
