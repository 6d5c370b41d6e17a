"""Reading run directories (docs/design.md contract 1) into pandas.

A run directory is any folder holding ``.hydra/config.yaml`` or ``summary.json``;
:func:`load_runs` finds them below a runs root, an experiment folder or a single run, and never
fails on an incomplete one (no summary yet, a summary still ``running``, a half-written file).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

#: Statuses written by ``ijr-train`` plus the two :func:`load_runs` assigns itself.
RUN_STATUSES = (
    "running",
    "completed",
    "diverged",
    "failed",
    "missing-summary",
    "unreadable-summary",
)

#: The first columns of :func:`load_runs`, always present (in this order).
BASE_COLUMNS = (
    "run_dir",
    "experiment",
    "run_key",
    "status",
    "steps",
    "wall_time_s",
    "profile",
    "seed",
    "error",
    "stop_reason",
)

# Config keys that say where results go or who listens, never what was computed: they are not
# setting axes (figures' automatic legends ignore them).
BOOKKEEPING_KEYS = (
    "experiment_name",
    "seed",
    "resume",
    "run_key",
    "tags",
    "paths.*",
    "logger.*",
    "profile.*",
    "hydra.*",
    "claims",  # the experiment's claims (checks over finished runs, ijr.claims)
    "cpu_scale.*",  # its effect is in the resolved keys
    "data.root",
    "data.download",
    "data.archive",
    "data.physical_batch_size",
    "trainer.progress_bar",
    "trainer.checkpoint",
    "trainer.checkpoint_every_n_steps",
    "trainer.accelerator",
    "trainer.devices",
)


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "summary.json").is_file()


def find_run_dirs(root: str | os.PathLike) -> list[Path]:
    """Run directories at or below ``root`` (sorted); hidden folders (``.multirun``) are skipped
    and a run directory's own subfolders (``checkpoints``) are not searched."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"runs directory does not exist: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"runs path is not a directory: {root}")
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def flatten(mapping: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become tuples (hashable, so they can group)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                flat.update(flatten(value, name + "."))
            else:
                flat[name] = None
        elif isinstance(value, list):
            flat[name] = tuple(value)
        else:
            flat[name] = value
    return flat


def _read_yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _read_json(path: Path) -> tuple[dict | None, bool]:
    """(content, file_exists)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, True
    return (data if isinstance(data, dict) else None), True


def _run_record(run_dir: Path) -> dict[str, Any]:
    config = _read_yaml(run_dir / ".hydra" / "config.yaml") or {}
    summary, summary_exists = _read_json(run_dir / "summary.json")
    if summary is None:
        status = "unreadable-summary" if summary_exists else "missing-summary"
        summary = {}
    else:
        status = str(summary.get("status") or "unreadable-summary")
    flat_config = flatten(config)
    profile_cfg = config.get("profile") if isinstance(config.get("profile"), Mapping) else {}
    record: dict[str, Any] = {
        "run_dir": str(run_dir),
        "experiment": summary.get("experiment")
        or config.get("experiment_name")
        or run_dir.parent.name,
        "run_key": summary.get("run_key") or run_dir.name,
        "status": status,
        "steps": summary.get("steps"),
        "wall_time_s": summary.get("wall_time_s"),
        "profile": summary.get("profile") or profile_cfg.get("name"),
        "seed": summary.get("seed", config.get("seed")),
        "error": summary.get("error"),
        "stop_reason": summary.get("stop_reason"),
    }
    for key, value in flat_config.items():
        record.setdefault(key, value)
    for name, value in (summary.get("final") or {}).items():
        record[f"final.{name}"] = value
    for name, value in (summary.get("markers") or {}).items():
        record[f"marker.{name}"] = value
    return record


def load_runs(root: str | os.PathLike) -> pd.DataFrame:
    """One row per run directory at or below ``root`` (a runs root, an experiment folder or one run).

    Columns: :data:`BASE_COLUMNS` (``status`` is ``missing-summary`` when a run has no
    summary.json yet and ``unreadable-summary`` when it cannot be parsed), then every key of the
    resolved config flattened with dots (``model.name``, ``optim.lr``, ``data.batch_size`` —
    the string ``full`` for full-batch runs — ``method.lambda_reg``, ...), then ``final.<metric>``
    (the last value of each metric, e.g. ``final.test/acc``) and ``marker.<name>`` (e.g.
    ``marker.arp_end_step``). A key a run does not have is NaN/None in its row. Rows are sorted by
    run directory. An empty DataFrame (with the base columns) when there is no run; a
    ``FileNotFoundError`` when ``root`` does not exist.
    """
    records = [_run_record(d) for d in find_run_dirs(root)]
    frame = (
        pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(BASE_COLUMNS))
    )
    config_cols = sorted(
        c
        for c in frame.columns
        if c not in BASE_COLUMNS and not c.startswith(("final.", "marker."))
    )
    final_cols = sorted(c for c in frame.columns if c.startswith("final."))
    marker_cols = sorted(c for c in frame.columns if c.startswith("marker."))
    frame = frame[list(BASE_COLUMNS) + config_cols + final_cols + marker_cols]
    for col in ("steps", "wall_time_s", *final_cols):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.reset_index(drop=True)


def load_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A run's ``metrics.csv`` as numbers: ``step``, ``epoch``, then one float column per metric
    (NaN where a metric was not measured at that step), sorted by step. An empty frame with
    ``step`` and ``epoch`` when the file is missing or empty; malformed lines (a run killed while
    writing) are skipped."""
    path = Path(run_dir) / "metrics.csv"
    empty = pd.DataFrame({"step": pd.Series(dtype="int64"), "epoch": pd.Series(dtype="float64")})
    if not path.is_file() or path.stat().st_size == 0:
        return empty
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
    except pd.errors.EmptyDataError:
        return empty
    if "step" not in frame.columns:
        raise ValueError(f"{path} has no 'step' column (header: {', '.join(frame.columns)})")
    frame = frame.apply(lambda col: pd.to_numeric(col.replace("", np.nan), errors="coerce"))
    frame = frame.dropna(subset=["step"])
    frame["step"] = frame["step"].astype("int64")
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- selecting runs
def _matches(value, wanted) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return wanted is None
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value == wanted
    if isinstance(wanted, (int, float)) and isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return math.isclose(float(value), float(wanted), rel_tol=1e-9, abs_tol=1e-12)
    return str(value) == str(wanted)


def select_runs(
    runs: pd.DataFrame, where: Mapping[str, Any] | None = None, experiment: str | None = None
) -> pd.DataFrame:
    """Rows of ``runs`` whose columns equal ``where`` (numbers compared with a relative tolerance;
    ``None`` matches a missing value) and whose experiment matches the glob ``experiment``."""
    mask = pd.Series(True, index=runs.index)
    if experiment not in (None, "*"):
        mask &= runs["experiment"].astype(str).map(lambda e: fnmatch.fnmatchcase(e, experiment))
    for key, wanted in (where or {}).items():
        if key not in runs.columns:
            raise KeyError(
                f"no column '{key}' in the runs (a config key such as optim.lr, data.batch_size)"
            )
        mask &= runs[key].map(lambda v, w=wanted: _matches(v, w))
    return runs[mask]


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["optim.lr=0.01", "data.batch_size=full"]`` -> ``{"optim.lr": 0.01, ...}`` (YAML-typed)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got '{item}'")
        try:
            parsed[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            parsed[key.strip()] = raw
    return parsed


def check_profiles(
    runs: pd.DataFrame, profile: str | None = None, allow_mixed: bool = False, what: str = "report"
) -> tuple[pd.DataFrame, list[str]]:
    """Keep the runs of ``profile`` (all when None) and return them with the sorted profiles they
    come from. Several profiles in one report is an error unless ``allow_mixed``."""
    profiles = runs["profile"].fillna("unknown").astype(str)
    if profile is not None:
        kept = runs[profiles == profile]
        if kept.empty:
            present = ", ".join(sorted(set(profiles))) or "none"
            raise ValueError(
                f"no {what} runs with profile '{profile}' (profiles present: {present})"
            )
        return kept, [profile]
    present = sorted(set(profiles))
    if len(present) > 1 and not allow_mixed:
        raise ValueError(
            f"{what} runs come from several profiles ({', '.join(present)}); choose one with "
            "profile=/--profile or allow mixing explicitly"
        )
    return runs, present


def varying_keys(runs: pd.DataFrame, ignore: Iterable[str] = BOOKKEEPING_KEYS) -> list[str]:
    """Config columns whose value differs between the given runs (bookkeeping keys, summary
    columns and finals excluded): the axes that distinguish one setting from another."""
    ignore = tuple(ignore)
    keys = []
    for col in runs.columns:
        if col in BASE_COLUMNS or col.startswith(("final.", "marker.")):
            continue
        if any(fnmatch.fnmatchcase(col, pat) for pat in ignore):
            continue
        values = {_hashable(v) for v in runs[col]}
        if len(values) > 1:
            keys.append(col)
    return keys


def _hashable(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return value
