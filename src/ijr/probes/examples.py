"""``<run_dir>/probe_examples.csv``: the probability output of a few FIXED training examples over
training, for Figure 1 (top) of paper 000 (the impurity of one example against its top
probability p_(1), with the bounds of Theorem 4.1 (c)-(d)).

Columns: ``step, example, p_top1, impurity, p_true`` — one row per tracked example per probe step.
``example`` is the example's position in the probe set (the first ``probes.track_examples``
examples of the fixed, seeded probe subset, which is sorted by training-set index), so the same
example keeps the same number for the whole run and across resumes.

Rows are appended and flushed at each probe step (a killed run keeps what it measured); on
(re)start, rows with ``step >= the start step`` are dropped because they are measured again,
exactly as ``metrics.csv`` does, so a resumed run writes the same file as an uninterrupted one.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = ("step", "example", "p_top1", "impurity", "p_true")
FILE_NAME = "probe_examples.csv"


class ProbeExamplesCSV:
    """Append-only writer of ``probe_examples.csv`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def truncate_from(self, step: int) -> None:
        """Keep only rows with ``step < step`` (a fresh start at step 0 keeps none)."""
        rows: list[list[str]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is not None and tuple(header) != COLUMNS:
                    raise ValueError(f"{self.path} has columns {header}, expected {list(COLUMNS)}")
                rows = [r for r in reader if r and int(r[0]) < step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, step: int, p_top1, impurity, p_true) -> None:
        """One row per example: ``p_top1[i], impurity[i], p_true[i]`` for example ``i``."""
        p_top1, impurity, p_true = (
            [float(v) for v in p_top1],
            [float(v) for v in impurity],
            [float(v) for v in p_true],
        )
        if not len(p_top1) == len(impurity) == len(p_true):
            raise ValueError(
                f"probe example columns differ in length: {len(p_top1)}, {len(impurity)}, {len(p_true)}"
            )
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            for i, (top, imp, true) in enumerate(zip(p_top1, impurity, p_true, strict=True)):
                writer.writerow([int(step), i, repr(top), repr(imp), repr(true)])
            f.flush()


__all__ = ["COLUMNS", "FILE_NAME", "ProbeExamplesCSV"]
