"""Per-step tables written beside ``metrics.csv`` by the probes (``probe_examples.csv``,
``logit_eigvecs.csv``, ``margins/step_<t>.npz``). Their formats, writers and readers live in the
Lightning-free :mod:`ijr.run_artifacts` (read by the reports and the claims too); this module
re-exports them under their historical names."""

from __future__ import annotations

from ijr.run_artifacts import (
    COLUMNS,
    EIGVEC_COLUMNS,
    EIGVEC_FILE_NAME,
    FILE_NAME,
    MARGINS_DIR,
    LogitEigvecsCSV,
    ProbeExamplesCSV,
    StepArrays,
    StepRowsCSV,
)

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
