"""Per-step tables written beside ``metrics.csv`` by the probes, for the figures that need more
than one number per step:

* ``probe_examples.csv`` -- the probability output of a few FIXED training examples over
  training, for Figure 1 (top) of paper 000 (the impurity of one example against its top
  probability p_(1), with the bounds of Theorem 4.1 (c)-(d)). Columns: ``step, example, p_top1,
  impurity, p_true`` -- one row per tracked example per probe step. ``example`` is the example's
  position in the probe set (the first ``probes.track_examples`` examples of the fixed, seeded
  probe subset, which is sorted by training-set index), so the same example keeps the same number
  for the whole run and across resumes.
* ``logit_eigvecs.csv`` -- the probe-set mean of Q Lambda^{1/2} in probability-rank coordinates
  (Figure 8 / Figure 30, :func:`ijr.curvature.logit_eigvec_heatmap`), written by the ``subspace``
  probe group. Columns: ``step, rank, eigenpair, value`` -- C x C rows per expensive probe step.

* ``margins/step_<t>.npz`` -- the directional data of m = sqrt(lambda^(1)) J q^(1) (Figures 9,
  11, 31-33), written by the ``margins`` probe group at each expensive probe: ``cos_to_means``
  (N, C), ``mean_gram`` (C, C), ``counts``, ``mrl`` (C,), ``top1``, ``top2``, ``labels`` (N,) over
  the probe set, and ``jq_ratios`` (k, C), ``jq_cos_sq`` (k, C, C) of the k tracked examples
  (:func:`ijr.curvature.margin_statistics`, :func:`ijr.curvature.eigvec_jacobian_statistics`).

Rows are appended and flushed at each probe step (a killed run keeps what it measured); on
(re)start, rows with ``step >= the start step`` are dropped because they are measured again,
exactly as ``metrics.csv`` does, so a resumed run writes the same file as an uninterrupted one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

COLUMNS = ("step", "example", "p_top1", "impurity", "p_true")
FILE_NAME = "probe_examples.csv"
EIGVEC_COLUMNS = ("step", "rank", "eigenpair", "value")
EIGVEC_FILE_NAME = "logit_eigvecs.csv"


class StepRowsCSV:
    """Append-only CSV whose first column is the step (see the module docstring)."""

    columns: tuple[str, ...] = ()

    def __init__(self, path: str | os.PathLike, columns: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        if columns is not None:
            self.columns = tuple(columns)
        if not self.columns or self.columns[0] != "step":
            raise ValueError(f"the first column must be 'step', got {list(self.columns)}")

    def truncate_from(self, step: int) -> None:
        """Keep only rows with ``step < step`` (a fresh start at step 0 keeps none)."""
        rows: list[list[str]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is not None and tuple(header) != self.columns:
                    raise ValueError(
                        f"{self.path} has columns {header}, expected {list(self.columns)}"
                    )
                rows = [r for r in reader if r and int(r[0]) < step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append_rows(self, step: int, rows: Iterable[Sequence]) -> None:
        """Write ``[step, *row]`` for every row and flush."""
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            for row in rows:
                if len(row) != len(self.columns) - 1:
                    raise ValueError(
                        f"{self.path.name}: a row needs {len(self.columns) - 1} values, got {len(row)}"
                    )
                writer.writerow(
                    [int(step), *(repr(float(v)) if isinstance(v, float) else v for v in row)]
                )
            f.flush()


class ProbeExamplesCSV(StepRowsCSV):
    """``probe_examples.csv`` (see the module docstring)."""

    columns = COLUMNS

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
        self.append_rows(step, zip(range(len(p_top1)), p_top1, impurity, p_true, strict=True))


class LogitEigvecsCSV(StepRowsCSV):
    """``logit_eigvecs.csv`` (see the module docstring)."""

    columns = EIGVEC_COLUMNS

    def append(self, step: int, matrix) -> None:
        """One row per entry ``matrix[rank, eigenpair]`` of the C x C heatmap."""
        values = [[float(v) for v in row] for row in matrix]
        self.append_rows(
            step, ((r, i, v) for r, row in enumerate(values) for i, v in enumerate(row))
        )


MARGINS_DIR = "margins"


class StepArrays:
    """One ``step_<t>.npz`` per probe step in a folder (written atomically); on (re)start the
    files of steps >= the start step are removed, like the rows of the CSV files."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def _steps(self) -> dict[int, Path]:
        if not self.folder.is_dir():
            return {}
        out = {}
        for path in self.folder.glob("step_*.npz"):
            try:
                out[int(path.stem.split("_", 1)[1])] = path
            except ValueError:
                continue
        return dict(sorted(out.items()))

    def truncate_from(self, step: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for s, path in self._steps().items():
            if s >= step:
                path.unlink()

    def save(self, step: int, arrays: dict) -> None:
        import numpy as np

        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".step_{int(step):08d}.npz.tmp"
        with tmp.open("wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, self.folder / f"step_{int(step):08d}.npz")

    def load(self) -> dict[int, dict]:
        """{step: {name: array}} for every saved step, in step order."""
        import numpy as np

        out = {}
        for s, path in self._steps().items():
            with np.load(path) as data:
                out[s] = {k: data[k] for k in data.files}
        return out


__all__ = [
    "MARGINS_DIR",
    "StepArrays",
    "COLUMNS",
    "EIGVEC_COLUMNS",
    "EIGVEC_FILE_NAME",
    "FILE_NAME",
    "LogitEigvecsCSV",
    "ProbeExamplesCSV",
    "StepRowsCSV",
]
