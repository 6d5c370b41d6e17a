"""Blocks of README.md and results/README.md generated from results files and the code, so that
nothing in them is copied by hand: the claims table (from ``results/<profile>/claims/claims.csv``),
the runs behind it and their training time (from ``results/<profile>/claims/runs.csv``), the
commits that made the run records (their ``summary.json``) and the
list of make targets (from the report registry, :func:`ijr.reporting.registry.markdown_table`).

A block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``:

    python -m ijr.claims.readme --results results/cpu README.md results/README.md  # rewrite
    python -m ijr.claims.readme --results results/cpu --check README.md            # 1 if stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from ijr.claims.checks import STATUSES
from ijr.claims.evaluate import RUN_COLUMNS, claim_rows
from ijr.reporting.render import markdown_lines


def claims_block(results: Path) -> str:
    """Status counts and one row per claim (experiment, claim, paper, status, measured)."""
    frame = pd.read_csv(results / "claims" / "claims.csv", keep_default_na=False)
    tally = ", ".join(f"{int((frame['status'] == s).sum())} {s}" for s in STATUSES)
    lines = [
        f"{len(frame)} claims: {tally} (`{results.parent.name}/{results.name}/claims/claims.md`).",
        "",
    ]
    lines += claim_rows(frame, ("experiment", "claim", "paper", "status", "measured"))
    return "\n".join(lines)


def runs_block(results: Path) -> str:
    """The runs the claims were judged on, with their wall time (one thread)."""
    frame = pd.read_csv(results / "claims" / "runs.csv", keep_default_na=False)
    columns = [c for c in RUN_COLUMNS if c in frame.columns]
    rows = []
    for _, row in frame.iterrows():
        values = [row[c] for c in columns]
        if "wall_time_s" in columns and row["wall_time_s"] != "":
            values[columns.index("wall_time_s")] = f"{float(row['wall_time_s']) / 60:.1f} min"
        rows.append(values)
    return "\n".join(markdown_lines(columns, rows))


def _paper(experiment: str) -> str:
    """The paper an experiment reproduces, from its name (``p002_*``, ``p004_*``; else 000)."""
    head = experiment.split("_", 1)[0]
    return head[1:] if head in ("p002", "p004") else "000"


def cost_block(results: Path) -> str:
    """The training time behind the claims: core-minutes (one thread per run, as each run's
    ``summary.json`` timed it on its machine) per experiment and per paper, and that total over
    two cores (``make claims JOBS=2``), which issue #13 budgets at 6 hours for paper 000."""
    frame = pd.read_csv(results / "claims" / "runs.csv", keep_default_na=False)
    frame = frame[frame["wall_time_s"] != ""]
    minutes = frame.groupby("experiment")["wall_time_s"].agg(
        runs="count", total=lambda w: w.astype(float).sum() / 60
    )
    rows = [[name, int(r.runs), f"{r.total:.0f}"] for name, r in minutes.iterrows()]
    lines = markdown_lines(["experiment", "runs", "core-minutes"], rows)
    per_paper = minutes.groupby([_paper(e) for e in minutes.index])["total"].sum()
    lines.append("")
    for paper, total in per_paper.items():
        lines.append(
            f"- paper {paper}: {total:.0f} core-minutes, {total / 120:.1f} h on two cores (JOBS=2)"
        )
    return "\n".join(lines)


def code_block(results: Path) -> str:
    """Which code made the run records of ``results/<profile>/runs/``: the commits each record's
    ``summary.json`` names (``code``, one per attempt), with the experiments and the number of
    records; records made before summaries named their code are counted as such."""
    made: dict[str, list[str]] = {}
    for summary in sorted((results / "runs").glob("*/*/summary.json")):
        code = json.loads(summary.read_text()).get("code")
        name = " then ".join(c[:12] for c in code) if code else "not recorded (before `code`)"
        made.setdefault(name, []).append(summary.parents[1].name)
    rows = [
        [name, str(len(exps)), ", ".join(sorted(set(exps)))] for name, exps in sorted(made.items())
    ]
    return "\n".join(markdown_lines(["code (commit)", "records", "experiments"], rows))


def table1_block(results: Path) -> str:
    """Table 1 at this profile: the table of ``table1.md`` (``ijr-report table1``) and, when the
    claims report wrote it, the paired differences per seed (``claims/table1_paired.md``)."""
    lines = []
    for path in (results / "table1.md", results / "claims" / "table1_paired.md"):
        if path.is_file():
            table = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
            lines += ([""] if lines else []) + table
    if not lines:
        raise FileNotFoundError(f"no {results / 'table1.md'}: run `ijr-report table1` first")
    return "\n".join(lines)


def quick_table1_block(results: Path) -> str:
    """Table 1 of the quick profile (``results/quick/table1.md``, beside ``results``)."""
    return table1_block(results.parent / "quick")


def table1_verdict_block(results: Path) -> str:
    """Where EJR's advantage appears at this profile: per row (eta), in how many paired seeds
    EJR's final test accuracy is above each competitor's (``claims/table1_paired.csv``)."""
    frame = pd.read_csv(results / "claims" / "table1_paired.csv", keep_default_na=False)
    lines = []
    for lr, row in frame.groupby("optim.lr", sort=True):
        ahead = ", ".join(
            f"{r.competitor.upper()} in {r.ejr_ahead}/{r.seeds}" for r in row.itertuples()
        )
        everywhere = (row["ejr_ahead"] == row["seeds"]).all()
        nowhere = (row["ejr_ahead"] == 0).all()
        word = (
            "ahead in every pair" if everywhere else "behind in every pair" if nowhere else "mixed"
        )
        lines.append(f"- η = {lr:g}: {word} (EJR ahead of {ahead} paired seeds)")
    return "\n".join(lines)


def _late_train_acc(record: Path, tail: float) -> float:
    """Mean of a record's logged ``train/acc`` (each the accuracy of its training batch, before
    that step's update) over the last ``tail`` of its steps."""
    frame = pd.read_csv(record / "metrics.csv")
    rows = frame.dropna(subset=["train/acc"])
    return float(rows[rows["step"] > (1 - tail) * frame["step"].max()]["train/acc"].mean())


def table1_fit_block(results: Path, tail: float = 0.1) -> str:
    """How far Table 1's cpu runs fitted their training set: per row (eta) and method, the mean
    +- std over seeds of the running training accuracy over the last 10 % of steps (%)."""
    cells: dict[tuple[float, str], list[float]] = {}
    for summary in sorted((results / "runs").glob("table1_simplecnn/*/summary.json")):
        config = yaml.safe_load((summary.parent / ".hydra" / "config.yaml").read_text())
        key = (float(config["optim"]["lr"]), str(config["method"]["name"]))
        cells.setdefault(key, []).append(100 * _late_train_acc(summary.parent, tail))
    if not cells:
        raise FileNotFoundError(f"no {results / 'runs' / 'table1_simplecnn'} records")
    methods = [m for m in ("sgd", "sam", "asam", "ejr") if any(k[1] == m for k in cells)]
    rows = []
    for lr in sorted({k[0] for k in cells}):
        values = [pd.Series(cells.get((lr, m), []), dtype=float) for m in methods]
        rows.append([f"{lr:g}"] + [f"{v.mean():.1f} ± {v.std():.1f} (n={len(v)})" for v in values])
    return "\n".join(markdown_lines(["η", *(m.upper() for m in methods)], rows))


def _significant(value: str) -> str:
    """A markers cell with at most 3 significant digits (integers as they are)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else f"{number:.3g}"


def p004_markers_block(results: Path) -> str:
    """Paper 004's measured markers from ``results/<profile>/p004/*_markers.csv`` (``ijr-report
    p004-markers``): a row per quantity some run measured, a column per run, 3 significant digits."""
    paths = sorted((results / "p004").glob("*_markers.csv"))
    if not paths:
        raise FileNotFoundError(f"no {results / 'p004'}/*_markers.csv: run the p004 reports first")
    frame = pd.concat([pd.read_csv(p, keep_default_na=False, dtype=str) for p in paths])
    heads = [f"{r.experiment}: {r.run}" for r in frame.itertuples()]
    rows = [
        [name] + [_significant(v) for v in frame[name]]
        for name in frame.columns
        if name not in ("experiment", "run") and (frame[name] != "").any()
    ]
    return "\n".join(markdown_lines(["quantity", *heads], rows))


def reports_block(_results: Path) -> str:
    """The make targets of the report registry (no results needed)."""
    from ijr.reporting.registry import markdown_table

    return markdown_table()


BLOCKS: dict[str, Callable[[Path], str]] = {
    "claims": claims_block,
    "claims-runs": runs_block,
    "claims-cost": cost_block,
    "records-code": code_block,
    "table1": table1_block,
    "table1-fit": table1_fit_block,
    "table1-verdict": table1_verdict_block,
    "quick-table1": quick_table1_block,
    "p004-markers": p004_markers_block,
    "reports": reports_block,
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(
        rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(<!-- /generated:{re.escape(name)} -->)",
        re.DOTALL,
    )


def render(text: str, results: Path) -> str:
    """``text`` with every generated block it holds rewritten from ``results``."""
    for name, build in BLOCKS.items():
        pattern = _pattern(name)
        if pattern.search(text):
            body = build(results) + "\n"
            text = pattern.sub(lambda m, b=body: m.group(1) + b + m.group(3), text)
    return text


def blocks_in(text: str) -> list[str]:
    return [name for name in BLOCKS if _pattern(name).search(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="markdown files holding generated blocks")
    parser.add_argument("--results", default="results/cpu", help="results/<profile> folder")
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in args.files:
        path = Path(name)
        text = path.read_text()
        new = render(text, Path(args.results))
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(
            f"claims.readme: out of date: {', '.join(stale)} (run without --check)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
