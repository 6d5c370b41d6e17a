"""The paper's own numbers (``results/paper/*.csv``), transcribed from Lee, Park & Lee (ICML 2023).

Each CSV is tidy and long, one row per printed cell::

    dataset, model, epochs, batch_size, lr, reg_param, method, method_key, method_param,
    mean, std, delta_acc, err, provenance, note

``reg_param`` is the row's regulariser as printed (``lambda_reg=0.01``, ``rho_reg=2;mu_reg=0.001``),
also on the rows of the methods that do not use it (SGD, SAM, ASAM share the row);
``delta_acc`` / ``err`` sit on the regularised method's row. ``provenance`` is one of
:data:`PROVENANCES`; ``note`` says what was repaired or why a value is missing. See
``results/paper/README.md``.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ijr.reporting.naming import TRAIN_SIZES

PAPER_COLUMNS = (
    "dataset",
    "model",
    "epochs",
    "batch_size",
    "lr",
    "reg_param",
    "method",
    "method_key",
    "method_param",
    "mean",
    "std",
    "delta_acc",
    "err",
    "provenance",
    "note",
)
PROVENANCES = ("printed", "ocr", "reconstructed", "missing", "printed-inconsistent")


def paper_dir() -> Path:
    """``$IJR_PAPER_DIR`` if set, else ``results/paper`` of the source checkout."""
    env = os.environ.get("IJR_PAPER_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "results" / "paper"
    if not path.is_dir():
        raise FileNotFoundError(
            f"paper reference values not found at {path} (set IJR_PAPER_DIR to results/paper)"
        )
    return path


def parse_reg_param(text) -> tuple[tuple[str, float], ...]:
    """``"rho_reg=2;mu_reg=0.001"`` -> ``(("mu_reg", 0.001), ("rho_reg", 2.0))`` (sorted; ``()`` if empty)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return ()
    items = []
    for part in str(text).split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"bad reg_param '{text}': expected key=value[;key=value]")
        items.append((key.strip(), float(value)))
    return tuple(sorted(items))


def format_reg_param(items) -> str:
    """Inverse of :func:`parse_reg_param` (numbers with ``%g``), keys in the order given."""
    return ";".join(f"{k}={v:g}" for k, v in items)


def batch_key(batch_size, dataset: str | None = None, train_size: int | None = None) -> str:
    """``"full"`` for full-batch (the string ``full`` or a batch at least the training-set size),
    else the batch size as a string."""
    if batch_size is None or (isinstance(batch_size, float) and math.isnan(batch_size)):
        return "?"
    if isinstance(batch_size, str):
        if batch_size.strip().lower() == "full":
            return "full"
        try:
            batch_size = int(batch_size)
        except ValueError:
            return batch_size
    size = int(batch_size)
    limit = train_size or TRAIN_SIZES.get(str(dataset))
    if limit and size >= int(limit):
        return "full"
    return str(size)


def epochs_key(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


@lru_cache(maxsize=8)
def _read(path: str, mtime: float) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns: {', '.join(missing)}")
    for col in ("lr", "mean", "std", "delta_acc", "err"):
        frame[col] = pd.to_numeric(frame[col].replace("", float("nan")))
    bad = sorted(set(frame["provenance"]) - set(PROVENANCES))
    if bad:
        raise ValueError(f"{path}: unknown provenance {bad}; valid: {', '.join(PROVENANCES)}")
    frame["batch_key"] = [
        batch_key(b, d) for b, d in zip(frame["batch_size"], frame["dataset"], strict=True)
    ]
    frame["epochs_key"] = frame["epochs"].map(epochs_key)
    frame["reg_key"] = frame["reg_param"].map(parse_reg_param)
    return frame


def load_paper_table(name: str) -> pd.DataFrame:
    """``results/paper/<name>.csv`` with numeric values and join keys ``batch_key`` (``full`` for
    the paper's B = 50000 on CIFAR), ``epochs_key`` and ``reg_key`` (parsed ``reg_param``)."""
    path = paper_dir() / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no paper reference table {path}")
    return _read(str(path), path.stat().st_mtime).copy()
