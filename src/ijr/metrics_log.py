"""metrics.csv — the long-lived source of truth of a run (DESIGN.md contract 1).

One row per logged step: ``step``, ``epoch``, then one column per metric name in order of first
appearance. Rows are appended (and flushed) as training goes, so a killed run keeps what it
measured. When a metric appears for the first time after rows were written, the file is rewritten
once with the wider header (earlier rows get empty cells).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only


def log_metrics(trainer, metrics: Mapping[str, float], step: int) -> None:
    """Send ``metrics`` measured at ``step`` (updates applied so far) to every logger of the
    trainer. Used by the training module and by the probe callbacks alike."""
    if trainer is None or not metrics:
        return
    clean = {k: float(v) for k, v in metrics.items()}
    for logger in trainer.loggers:
        logger.log_metrics(clean, step=int(step))


def _fmt(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)
    return str(value)


class MetricsCSV:
    """Append-only CSV writer with a growing header; rows are merged per step."""

    FIXED = ("step", "epoch")

    def __init__(self, path: str | os.PathLike, steps_per_epoch: int = 1) -> None:
        self.path = Path(path)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.columns: list[str] = list(self.FIXED)
        self._pending_step: int | None = None
        self._pending: dict[str, float] = {}
        self.last: dict[str, float] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                self.columns = header

    # rows --------------------------------------------------------------------
    def add(self, metrics: Mapping[str, float], step: int) -> None:
        if self._pending_step is not None and step != self._pending_step:
            self.flush()
        self._pending_step = step
        self._pending.update(metrics)
        self.last.update(metrics)

    def flush(self) -> None:
        if self._pending_step is None:
            return
        row = {
            "step": self._pending_step,
            "epoch": round(self._pending_step / self.steps_per_epoch, 6),
        }
        row.update(self._pending)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns.extend(new)
            self._rewrite_header()
        exists = self.path.exists() and self.path.stat().st_size > 0
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if not exists:
                writer.writerow(self.columns)
            writer.writerow([_fmt(row.get(c)) for c in self.columns])
            f.flush()
        self._pending_step, self._pending = None, {}

    def _rewrite_header(self) -> None:
        if not (self.path.exists() and self.path.stat().st_size > 0):
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        self._write_all(rows)

    def _write_all(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: r.get(k, "") for k in self.columns})
        os.replace(tmp, self.path)

    def truncate_from(self, step: int) -> None:
        """Drop rows with ``step >= step`` (they are measured again after a resume)."""
        self._pending_step, self._pending = None, {}
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) < step]
        self._write_all(rows)


class RunCSVLogger(Logger):
    """Lightning logger writing the run directory's ``metrics.csv``."""

    def __init__(self, path: str | os.PathLike, steps_per_epoch: int = 1) -> None:
        super().__init__()
        self.csv = MetricsCSV(path, steps_per_epoch)

    @property
    def name(self) -> str:
        return "metrics_csv"

    @property
    def version(self) -> str:
        return "0"

    @property
    def last(self) -> dict[str, float]:
        return self.csv.last

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:  # the config is saved separately
        return None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.csv.add(metrics, int(step or 0))

    @rank_zero_only
    def save(self) -> None:
        self.csv.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.csv.flush()
