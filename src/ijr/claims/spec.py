"""Claims as data: the ``claims:`` list and the ``<profile>_scale:`` block of each experiment
config (``conf/experiment/<name>.yaml``), read as plain YAML (no Hydra composition needed).

A claim (keys of CLAIMS_SPEC): ``id``, ``paper``, ``statement``, ``check`` (a name of
:data:`ijr.claims.checks.CHECKS`), optional ``select`` (dotted config keys the runs must match)
and ``params`` (the check's parameters, tolerances included, fixed before the runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"
REQUIRED_KEYS = ("id", "paper", "statement", "check")


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a paper about one experiment's runs."""

    experiment: str
    id: str
    paper: str
    statement: str
    check: str
    params: dict[str, Any] = field(default_factory=dict)
    select: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """An experiment config's claims and what its ``<profile>_scale`` block says about them."""

    name: str
    claims: tuple[Claim, ...]
    gpu_scale: bool = False  # not run in this profile: its claims report `not run`
    runs_of: str | None = None  # checked on another experiment's runs at this scale
    rows_not_run: dict[str, tuple] = field(default_factory=dict)  # config key -> values not swept


def _claim(experiment: str, raw: Any, index: int, path: Path) -> Claim:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: claims[{index}] must be a mapping with keys {REQUIRED_KEYS}")
    missing = [k for k in REQUIRED_KEYS if not raw.get(k)]
    if missing:
        raise ValueError(f"{path}: claims[{index}] lacks {', '.join(missing)}")
    for key in ("params", "select"):
        if not isinstance(raw.get(key) or {}, dict):
            raise ValueError(f"{path}: claims[{index}].{key} must be a mapping")
    return Claim(
        experiment=experiment,
        id=str(raw["id"]),
        paper=str(raw["paper"]),
        statement=str(raw["statement"]),
        check=str(raw["check"]),
        params=dict(raw.get("params") or {}),
        select=dict(raw.get("select") or {}),
    )


def load_experiment(path: Path, profile: str) -> Experiment:
    """The claims of one experiment file and its scale flags for ``profile``."""
    doc = yaml.safe_load(path.read_text()) or {}
    name = str(doc.get("experiment_name") or path.stem)
    raw_claims = doc.get("claims") or []
    if not isinstance(raw_claims, list):
        raise ValueError(f"{path}: claims must be a list")
    claims = tuple(_claim(name, raw, i, path) for i, raw in enumerate(raw_claims))
    ids = [c.id for c in claims]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path}: duplicate claim id(s) {', '.join(duplicated)}")
    scale = doc.get(f"{profile}_scale") or {}
    rows = scale.get("rows_not_run") or {}
    if not isinstance(rows, dict) or not all(isinstance(v, list) for v in rows.values()):
        raise ValueError(f"{path}: {profile}_scale.rows_not_run must map config keys to lists")
    return Experiment(
        name=name,
        claims=claims,
        gpu_scale=bool(scale.get("gpu_scale", False)),
        runs_of=scale.get("runs_of"),
        rows_not_run={k: tuple(v) for k, v in rows.items()},
    )


def load_experiments(profile: str, conf_dir: Path = CONF_DIR) -> list[Experiment]:
    """Every experiment of ``conf_dir/experiment`` (sorted by file name) for ``profile``."""
    folder = Path(conf_dir) / "experiment"
    if not folder.is_dir():
        raise FileNotFoundError(f"no experiment configs under {folder}")
    return [load_experiment(p, profile) for p in sorted(folder.glob("*.yaml"))]
