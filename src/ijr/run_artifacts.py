"""The per-run artifact files written beside ``metrics.csv`` by the probes and read by the
reports and the claims: their names, formats, writers and readers, in one Lightning-free module
(numpy and the standard library only; :mod:`ijr.probes` writes them, :mod:`ijr.reporting` and
:mod:`ijr.claims` read them without importing Lightning or torch).

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
* ``trajectory.bin`` -- the count sketch S theta_t of the parameters along training (Figures 3,
  27; :class:`ijr.probes.trajectory.ParameterSketch`): one record per probe step, the step
  (int64) and S theta_t (``probes.trajectory_dim`` float32 values), little-endian.

Rows and records are appended and flushed at each probe step (a killed run keeps what it
measured); on (re)start, those with ``step >= the start step`` are dropped because they are
measured again, exactly as ``metrics.csv`` does, so a resumed run writes the same files as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

COLUMNS = ("step", "example", "p_top1", "impurity", "p_true")
FILE_NAME = "probe_examples.csv"
EIGVEC_COLUMNS = ("step", "rank", "eigenpair", "value")
EIGVEC_FILE_NAME = "logit_eigvecs.csv"
MARGINS_DIR = "margins"
TRAJECTORY_FILE = "trajectory.bin"


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
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".step_{int(step):08d}.npz.tmp"
        with tmp.open("wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, self.folder / f"step_{int(step):08d}.npz")

    def load(self) -> dict[int, dict]:
        """{step: {name: array}} for every saved step, in step order."""
        out = {}
        for s, path in self._steps().items():
            with np.load(path) as data:
                out[s] = {k: data[k] for k in data.files}
        return out


class TrajectoryFile:
    """Append-only ``trajectory.bin`` of (step, S theta) records (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, dim: int) -> None:
        self.path = Path(path)
        self.dim = int(dim)
        self.dtype = np.dtype([("step", "<i8"), ("sketch", "<f4", (self.dim,))])

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps (n,), sketches (n, dim)); a torn last record (a killed run) is ignored."""
        if not self.path.exists():
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        raw = self.path.read_bytes()
        whole = len(raw) // self.dtype.itemsize
        records = np.frombuffer(raw[: whole * self.dtype.itemsize], dtype=self.dtype)
        return records["step"].copy(), records["sketch"].copy()

    def truncate_from(self, step: int) -> None:
        """Keep only the records with ``step < step``."""
        steps, sketches = self.read()
        keep = steps < step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        records = np.zeros(int(keep.sum()), dtype=self.dtype)
        records["step"], records["sketch"] = steps[keep], sketches[keep]
        tmp.write_bytes(records.tobytes())
        os.replace(tmp, self.path)

    def append(self, step: int, sketch) -> None:
        """One record; ``sketch`` is a torch tensor or an array of ``dim`` values."""
        values = sketch.detach().cpu().numpy() if hasattr(sketch, "detach") else sketch
        record = np.zeros(1, dtype=self.dtype)
        record["step"] = int(step)
        record["sketch"][0] = np.asarray(values).astype(np.float32)
        with self.path.open("ab") as f:
            f.write(record.tobytes())
            f.flush()


def read_trajectory(run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(steps, sketches) of a run's ``trajectory.bin``; a clear error when it has none."""
    path = Path(run_dir) / TRAJECTORY_FILE
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(
            f"{run_dir} has no {TRAJECTORY_FILE}: run it with the 'trajectory' probe group (probes.cheap=[...,trajectory])"
        )
    dim = _dim_from_config(Path(run_dir))
    return TrajectoryFile(path, dim).read()


def _dim_from_config(run_dir: Path) -> int:
    import yaml

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text()) or {}
    dim = (config.get("probes") or {}).get("trajectory_dim")
    if not dim:
        raise ValueError(f"{run_dir}/.hydra/config.yaml has no probes.trajectory_dim")
    return int(dim)


__all__ = [
    "COLUMNS",
    "EIGVEC_COLUMNS",
    "EIGVEC_FILE_NAME",
    "FILE_NAME",
    "MARGINS_DIR",
    "TRAJECTORY_FILE",
    "LogitEigvecsCSV",
    "ProbeExamplesCSV",
    "StepArrays",
    "StepRowsCSV",
    "TrajectoryFile",
    "read_trajectory",
]
