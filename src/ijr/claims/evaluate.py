"""Statuses of every claim over a runs root for one profile, and the claims.md / claims.csv report
(``ijr-report claims --runs DIR --profile P --out results/P/claims/claims``).

Status of a claim (CLAIMS_SPEC.md):

* ``not run`` -- its experiment is marked ``<profile>_scale.gpu_scale``, or its ``select`` names
  a row the scale does not sweep (``<profile>_scale.rows_not_run``, e.g. two of Table 1's five
  learning rates at cpu scale);
* ``missing runs`` -- no completed (or diverged) run of its experiment (or of the experiment named
  by ``<profile>_scale.runs_of``) for the profile matches ``select``, fewer than ``min_runs``,
  or a multi-run check lacks runs;
* ``not reached`` -- the event it is conditioned on never happened in a run;
* ``pass`` / ``fail`` -- judged (a claim over several runs passes when every run passes; a
  quantity the check needs but a run did not log is a ``fail`` that says so).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ijr.claims.checks import (
    CHECKS,
    FAIL,
    MISSING_RUNS,
    MULTI_RUN,
    NOT_REACHED,
    NOT_RUN,
    PASS,
    PER_RUN,
    STATUSES,
    MissingRuns,
    Outcome,
)
from ijr.claims.series import NotReached, Run, Unmeasured
from ijr.claims.spec import CONF_DIR, Claim, Experiment, load_experiments
from ijr.reporting.render import markdown_lines
from ijr.reporting.runs import BASE_COLUMNS, load_runs, select_runs, varying_keys

COLUMNS = ("experiment", "claim", "paper", "statement", "status", "measured", "expected")
RUN_COLUMNS = (
    "experiment",
    "run_key",
    "status",
    "steps",
    "wall_time_s",
    "model.name",
    "data.subset",
    "data.batch_size",
    "optim.lr",
    "method.name",
    "seed",
)
JUDGED_RUN_STATUSES = ("completed", "diverged")


def _params_text(claim: Claim) -> str:
    return f"{claim.check} {json.dumps(claim.params, sort_keys=True, default=str)}"


def finished_runs(runs_root: str | Path, profile: str) -> pd.DataFrame:
    """Completed or diverged runs of ``profile`` under ``runs_root`` (empty when there is none)."""
    root = Path(runs_root)
    if not root.exists():
        raise FileNotFoundError(f"runs directory does not exist: {root}")
    runs = load_runs(root)
    keep = (runs["profile"].astype(str) == profile) & runs["status"].isin(JUDGED_RUN_STATUSES)
    return runs[keep]


def _config_order(row: pd.Series, keys: list[str]) -> tuple:
    """A run's place when runs are listed: by the values of ``keys`` (numbers by value, then
    text, then missing), so a report lists its cells the same way whatever their run keys."""

    def place(value) -> tuple:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return (2, 0.0, "")
        try:
            return (0, float(value), "")
        except (TypeError, ValueError):
            return (1, 0.0, str(value))

    return tuple(place(row[k]) for k in keys) + (str(row["run_key"]),)


def _label_runs(frame: pd.DataFrame) -> list[Run]:
    keys = [k for k in varying_keys(frame) if k not in BASE_COLUMNS] if len(frame) > 1 else []
    if len(frame) > 1 and frame["seed"].nunique() > 1:
        keys.append("seed")
    runs = []
    for _, row in sorted(frame.iterrows(), key=lambda item: _config_order(item[1], keys)):
        label = ",".join(f"{k}={row[k]}" for k in keys) or str(row["run_key"])
        runs.append(Run(path=Path(row["run_dir"]), row=row, label=label))
    return runs


def _per_run(claim: Claim, runs: list[Run]) -> Outcome:
    check = PER_RUN[claim.check]
    outcomes = []
    for run in runs:
        try:
            outcome = check(run, claim.params)
        except NotReached as exc:
            outcome = Outcome(NOT_REACHED, f"not reached: {exc}", "")
        except Unmeasured as exc:
            outcome = Outcome(FAIL, f"not measured: {exc}", "")
        outcomes.append(outcome)
    statuses = [o.status for o in outcomes]
    status = FAIL if FAIL in statuses else NOT_REACHED if NOT_REACHED in statuses else PASS
    if len(runs) == 1:
        measured = outcomes[0].measured
    else:
        measured = "; ".join(
            f"[{r.label}] {o.status}: {o.measured}" for r, o in zip(runs, outcomes, strict=True)
        )
    expected = next((o.expected for o in outcomes if o.expected), _params_text(claim))
    return Outcome(status, measured, expected)


def _swept_rows(claim: Claim, experiment: Experiment) -> tuple[dict, str]:
    """A multi-run claim's params with the ``values`` along ``along`` that the scale does not sweep
    (``<profile>_scale.rows_not_run``) removed, and those rows as text ('' when none is cut)."""
    along, values = claim.params.get("along"), claim.params.get("values")
    cut_rows = experiment.rows_not_run.get(along, ()) if along and values else ()
    cut = [v for v in values or () if any(float(v) == float(c) for c in cut_rows)]
    if not cut:
        return claim.params, ""
    kept = [v for v in values if v not in cut]
    return {**claim.params, "values": kept}, f"{along} = {', '.join(map(str, cut))}"


def evaluate_claim(
    claim: Claim, experiment: Experiment, runs: pd.DataFrame, profile: str
) -> Outcome:
    """One claim over the finished runs of its experiment (see the module docstring)."""
    if claim.check not in CHECKS:
        raise ValueError(
            f"claim {claim.experiment}/{claim.id}: unknown check '{claim.check}' "
            f"(one of {', '.join(CHECKS)})"
        )
    source = experiment.runs_of or experiment.name
    if experiment.gpu_scale:
        return Outcome(
            NOT_RUN,
            f"GPU scale: {experiment.name} is not run in profile={profile}",
            _params_text(claim),
        )
    skipped = [
        f"{k} = {v}" for k, v in claim.select.items() if v in experiment.rows_not_run.get(k, ())
    ]
    if skipped:
        return Outcome(
            NOT_RUN,
            f"{', '.join(skipped)} is not swept in profile={profile} "
            f"({profile}_scale.rows_not_run of {experiment.name})",
            _params_text(claim),
        )
    if runs.empty:
        return Outcome(
            MISSING_RUNS, f"no completed run of {source} for profile={profile}", _params_text(claim)
        )
    missing = [k for k in claim.select if k not in runs.columns]
    if missing:
        raise ValueError(
            f"claim {claim.experiment}/{claim.id}: select key(s) {', '.join(missing)} are not config keys of the runs of {source}"
        )
    selected = select_runs(runs, claim.select)
    need = int(claim.params.get("min_runs", 1))
    if len(selected) < need:
        where = f" matching {claim.select}" if claim.select else ""
        return Outcome(
            MISSING_RUNS,
            f"{len(selected)} completed run(s) of {source}{where}, {need} needed",
            _params_text(claim),
        )
    judged = _label_runs(selected)
    if claim.check in MULTI_RUN:
        params, cut = _swept_rows(claim, experiment)
        if cut and not params["values"]:
            return Outcome(NOT_RUN, f"{cut} not swept in profile={profile}", _params_text(claim))
        try:
            outcome = MULTI_RUN[claim.check](judged, params)
        except MissingRuns as exc:
            return Outcome(MISSING_RUNS, str(exc), _params_text(claim))
        except NotReached as exc:
            return Outcome(NOT_REACHED, f"not reached: {exc}", _params_text(claim))
        except Unmeasured as exc:
            return Outcome(FAIL, f"not measured: {exc}", _params_text(claim))
        if cut:  # the rows of `values` the scale does not sweep are said, never dropped silently
            note = f" ({cut} not swept in profile={profile}: judged on the other rows)"
            outcome = Outcome(outcome.status, outcome.measured + note, outcome.expected)
        return outcome
    return _per_run(claim, judged)


def evaluate_all(runs_root: str | Path, profile: str, conf_dir: Path = CONF_DIR) -> pd.DataFrame:
    """One row per claim of every experiment config (columns :data:`COLUMNS`)."""
    finished = finished_runs(runs_root, profile)
    rows = []
    for experiment in load_experiments(profile, conf_dir):
        source = experiment.runs_of or experiment.name
        runs = finished[finished["experiment"] == source]
        runs = runs.dropna(axis=1, how="all")
        for claim in experiment.claims:
            outcome = evaluate_claim(claim, experiment, runs, profile)
            rows.append(
                {
                    "experiment": claim.experiment,
                    "claim": claim.id,
                    "paper": claim.paper,
                    "statement": claim.statement,
                    **asdict(outcome),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def counts(frame: pd.DataFrame) -> dict[str, int]:
    """Claims per status, in :data:`STATUSES` order."""
    return {s: int((frame["status"] == s).sum()) for s in STATUSES}


def claim_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """A Markdown table of the claims with these columns (the status in bold), header first."""
    rows = [
        [f"**{row[c]}**" if c == "status" else row[c] for c in columns]
        for _, row in frame.iterrows()
    ]
    return markdown_lines(columns, rows)


def to_markdown(frame: pd.DataFrame, profile: str, kept: list[str] | None = None) -> str:
    tally = ", ".join(f"{n} {s}" for s, n in counts(frame).items())
    lines = [
        f"# Claims, profile `{profile}`",
        "",
        f"{len(frame)} claims: {tally}.",
        "",
        "Generated by `ijr-report claims` from the run directories; tolerances are the claims' "
        "`params` in conf/experiment/*.yaml.",
        "",
        *(
            [
                "Kept from the previous report (judged on runs of an earlier session, listed in "
                f"runs.csv; `--keep-previous`): {', '.join(kept)}.",
                "",
            ]
            if kept
            else []
        ),
    ]
    lines += claim_rows(frame, ("experiment", "claim", "paper", "status", "measured", "expected"))
    lines += ["", "## Statements", ""]
    for _, row in frame.iterrows():
        lines.append(f"- `{row['experiment']}/{row['claim']}` ({row['paper']}): {row['statement']}")
    return "\n".join(lines) + "\n"


def write_claims(
    frame: pd.DataFrame,
    out: str | Path,
    profile: str,
    runs: pd.DataFrame | None = None,
    kept: list[str] | None = None,
) -> list[Path]:
    """``OUT/claims.md`` and ``OUT/claims.csv`` (``OUT`` a folder), and ``OUT/runs.csv`` (the
    finished runs judged: experiment, run key, status, steps, wall time, main config keys) when
    ``runs`` is given; the written paths. ``kept``: experiments whose rows come from the previous
    report (:mod:`ijr.claims.keep`), named in claims.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, csv = out / "claims.md", out / "claims.csv"
    md.write_text(to_markdown(frame, profile, kept))
    frame.to_csv(csv, index=False)
    written = [md, csv]
    if runs is not None:
        columns = [c for c in RUN_COLUMNS if c in runs.columns]
        table = runs[columns].sort_values(["experiment", "run_key"]) if len(runs) else runs[columns]
        if "steps" in table:
            table = table.assign(steps=table["steps"].astype("Int64"))
        table.to_csv(out / "runs.csv", index=False)
        written.append(out / "runs.csv")
    return written
