"""Keep the claims of experiments whose runs are not under ``--runs`` from an earlier report
(``ijr-report claims --keep-previous``).

A cpu-profile reproduction is split over sessions, and the run directories of an earlier session
may be gone (machines are not kept, and runs on real CIFAR-10 are never committed). Re-judging
the whole profile would then turn every claim of those experiments into ``missing runs``. With
``--keep-previous`` the claims of an experiment with *no* finished run under ``--runs`` are copied
from the report already in ``OUT`` (``claims.csv``, and its rows of ``runs.csv``), provided that
report lists exactly the claims the experiment's config lists now (same ids, places and
statements); otherwise the report is refused with one line. The kept experiments are named in
``claims.md`` and printed, never silent; an experiment with runs under ``--runs`` is always
judged afresh.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ijr.claims.spec import Experiment

IDENTITY = ("claim", "paper", "statement")


def _previous(out: Path, name: str, **read) -> pd.DataFrame | None:
    path = out / name
    return pd.read_csv(path, **read) if path.is_file() else None


def _same_claims(old: pd.DataFrame, new: pd.DataFrame) -> bool:
    as_set = lambda f: {tuple(r) for r in f[list(IDENTITY)].astype(str).itertuples(index=False)}  # noqa: E731
    return as_set(old) == as_set(new)


def keep_previous(
    frame: pd.DataFrame,
    runs: pd.DataFrame,
    experiments: list[Experiment],
    out: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``frame`` (claims judged now) and ``runs`` (runs judged now) with the rows of every
    experiment that has no finished run in ``runs`` replaced by those of ``OUT/claims.csv`` and
    ``OUT/runs.csv``; the names of the kept experiments. Raises ``ValueError`` (one line) when the
    previous report's claims of such an experiment differ from its config's."""
    out = Path(out)
    old_claims = _previous(out, "claims.csv", dtype=str, keep_default_na=False)
    old_runs = _previous(out, "runs.csv")
    if old_claims is None:
        raise FileNotFoundError(f"--keep-previous: no earlier report at {out / 'claims.csv'}")
    judged_sources = set(runs["experiment"]) if len(runs) else set()
    kept: list[str] = []
    rows = []
    for exp in experiments:
        new = frame[frame["experiment"] == exp.name]
        old = old_claims[old_claims["experiment"] == exp.name]
        source = exp.runs_of or exp.name
        if exp.gpu_scale or source in judged_sources or old.empty:
            rows.append(new)
            continue
        if not _same_claims(old, new):
            raise ValueError(
                f"--keep-previous: the claims of {exp.name} in {out / 'claims.csv'} differ from "
                f"conf/experiment/{exp.name}.yaml; re-run its experiment instead of keeping them"
            )
        rows.append(old[new.columns.tolist()])
        kept.append(exp.name)
    merged = pd.concat(rows, ignore_index=True)[frame.columns.tolist()]
    sources = {e.runs_of or e.name for e in experiments if e.name in kept}
    if old_runs is not None and sources:
        keep_runs = old_runs[old_runs["experiment"].isin(sources)]
        runs = pd.concat([runs, keep_runs], ignore_index=True) if len(runs) else keep_runs
    return merged, runs, kept
