"""metrics.csv — the long-lived source of truth of a run (docs/design.md contract 1).

One row per logged step: ``step``, ``epoch``, then one column per metric name in order of first
appearance. Rows are appended (and flushed) as training goes, so a killed run keeps what it
measured. When a metric appears for the first time after rows were written, the file is rewritten
once with the wider header (earlier rows get empty cells).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
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


LEDGER_KEY = "ijr_metrics_ledger"  # checkpoint entry: what metrics.csv held before its step


class MetricsFileError(ValueError):
    """metrics.csv does not hold what the checkpoint says was measured; nothing was changed."""


def _row_digest(cells: Mapping[str, str]) -> bytes:
    """Digest of a row's non-empty cells, independent of the header's width and order."""
    items = sorted((k, v) for k, v in cells.items() if v not in ("", None))
    return hashlib.sha256(repr(items).encode()).digest()


class MetricsCSV:
    """Append-only CSV writer with a growing header; rows are merged per step.

    It keeps the digest of every row written (:meth:`ledger`), which checkpoints carry, so a
    resume can check that the file still holds every row measured before the checkpoint
    (:meth:`truncate_from`)."""

    FIXED = ("step", "epoch")

    def __init__(self, path: str | os.PathLike, steps_per_epoch: int = 1) -> None:
        self.path = Path(path)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.columns: list[str] = list(self.FIXED)
        self._pending_step: int | None = None
        self._pending: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._written: list[tuple[int, bytes]] = []  # (step, digest) of the rows in the file
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
        cells = [_fmt(row.get(c)) for c in self.columns]
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if not exists:
                writer.writerow(self.columns)
            writer.writerow(cells)
            f.flush()
        self._written.append(
            (self._pending_step, _row_digest(dict(zip(self.columns, cells, strict=True))))
        )
        self._pending_step, self._pending = None, {}

    def flush_before(self, step: int) -> None:
        """Write the pending row if it is of a step before ``step`` (it is complete then)."""
        if self._pending_step is not None and self._pending_step < step:
            self.flush()

    def ledger(self, step: int) -> dict:
        """Count and combined digest of the rows written with ``step < step``."""
        h = hashlib.sha256()
        rows = [d for s, d in self._written if s < step]
        for digest in rows:
            h.update(digest)
        return {"step": int(step), "rows": len(rows), "digest": h.hexdigest()}

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

    def _read_rows(self) -> list[dict]:
        """The file's complete rows; an unterminated last line (a write cut by a kill or a full
        disk, always after the last checkpoint) is not a row. An incomplete row elsewhere is an
        error naming the file."""
        if not self.path.exists():
            return []
        with self.path.open(newline="") as f:
            text = f.read()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        lines = list(csv.reader(text.splitlines(keepends=True)))
        if not lines:
            return []
        header, rows = lines[0], []
        for number, cells in enumerate(lines[1:], start=2):
            if len(cells) != len(header) or not cells[0].lstrip("-").isdigit():
                raise MetricsFileError(
                    f"{self.path} line {number} is not a complete row ({len(cells)} of "
                    f"{len(header)} fields); restore the file, or rerun with resume=false to "
                    "start the run over"
                )
            rows.append(dict(zip(header, cells, strict=True)))
        self.columns = header
        return rows

    def truncate_from(self, step: int, ledger: Mapping | None = None) -> None:
        """Drop rows with ``step >= step`` (they are measured again after a resume), after
        checking that the rows before it are those the checkpoint's ``ledger`` counted."""
        self._pending_step, self._pending = None, {}
        kept = [r for r in self._read_rows() if int(r["step"]) < step]
        self._written = [(int(r["step"]), _row_digest(r)) for r in kept]
        if ledger is not None and self.ledger(step) != dict(ledger):
            raise MetricsFileError(
                f"{self.path} holds {len(kept)} rows before step {step}, not the "
                f"{ledger['rows']} rows (or not their values) measured before the checkpoint "
                "at that step; restore the file, or rerun with resume=false to start the run over"
            )
        if self.path.exists() or kept:
            self._write_all(kept)


class LedgerInCheckpoint(pl.Callback):
    """Puts :meth:`MetricsCSV.ledger` of the checkpoint's step into every checkpoint (after
    writing the rows of earlier steps still pending)."""

    def __init__(self, metrics: MetricsCSV) -> None:
        self.metrics = metrics

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        step = int(trainer.global_step)
        self.metrics.flush_before(step)
        checkpoint[LEDGER_KEY] = self.metrics.ledger(step)


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
