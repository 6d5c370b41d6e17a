"""ijr-report: aggregate run directories into the paper's tables and figures.

    ijr-report table1 --runs runs/ --out results/quick/table1 --profile quick
    ijr-report fig4   --runs runs/fig4_arp --out results/quick/fig4 --select seed=0
    ijr-report curves --runs runs/fig23 --out results/quick/fig23 \\
        --metrics probe/sharpness,probe/jacobian_ones_sq,probe/impurity_mean --style-by optim.lr
    ijr-report fig8   --runs runs/fig10_subspace --out results/quick/fig30 --steps 100,200,400
    ijr-report fig7   --out results/quick/fig7 --p 0.45,0.25,0.15,0.1,0.05
    ijr-report claims --runs runs/ --profile cpu --out results/cpu/claims

Tables write ``OUT.md``, ``OUT.csv`` and ``OUT.tex``; figures ``OUT.png`` and ``OUT.pdf``. Every
written path is printed. ``claims`` checks every experiment's ``claims:`` (conf/experiment/)
against the runs of one profile and writes ``OUT/claims.md`` and ``OUT/claims.csv``. Bad input (no runs, unknown report, a selection that matches nothing)
is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ijr.claims import paired
from ijr.claims.evaluate import evaluate_all, finished_runs, write_claims
from ijr.claims.spec import load_experiments
from ijr.reporting import figures, p002, p004, table2, tables
from ijr.reporting.runs import check_profiles, load_runs, parse_assignments, select_runs

TABLES = ("table1", "table2", "table5", "table6")
FIGURES = (
    "fig1",
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "fig6",
    "fig7",
    "fig8",
    "fig9",
    "fig10",
    "fig11",
    "fig33",
    "fig36",
    "curves",
)
NO_RUNS = ("fig7",)  # drawn from the paper's equations alone
COMPANION_REPORTS = {**p002.REPORTS, **p004.REPORTS}  # companion papers' figures by name
COMPANION_FIGURES = tuple(COMPANION_REPORTS)  # p002-fig1 ... p002-fig32, p004-fig1 ... p004-sec4
COMPANION_TABLES = ("p004-markers", "p002-tables")  # 004's markers, 002's Tables 1-2
CLAIMS = ("claims",)  # every experiment's claims: OUT/claims.md, OUT/claims.csv (ijr.claims)
REPORTS = TABLES + FIGURES + COMPANION_FIGURES + COMPANION_TABLES + CLAIMS


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message + SystemExit
        raise UsageError(message)


def _csv_list(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _windows(text: str | None) -> list[tuple[float, float]] | None:
    if not text:
        return None
    windows = []
    for item in text.split(","):
        lo, sep, hi = item.partition(":")
        try:
            windows.append((float(lo), float(hi)))
        except ValueError:
            raise UsageError(f"--windows expects START:END[,START:END...], got '{item}'") from None
        if not sep:
            raise UsageError(f"--windows expects START:END[,START:END...], got '{item}'")
    return windows


def _steps(text: str | None) -> list[int] | None:
    items = _csv_list(text)
    if not items:
        return None
    try:
        return [int(item) for item in items]
    except ValueError:
        raise UsageError(f"--steps expects comma-separated integers, got '{text}'") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ijr-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", choices=REPORTS, help="which table or figure")
    parser.add_argument(
        "--runs", help="runs root, experiment folder or one run directory (all but fig7)"
    )
    parser.add_argument(
        "--out", required=True, help="output path without suffix (suffixes are added)"
    )
    parser.add_argument(
        "--profile", choices=("quick", "cpu", "paper"), help="use only runs of this profile"
    )
    parser.add_argument(
        "--allow-mixed-profiles",
        action="store_true",
        help="allow runs of several profiles in one report",
    )
    parser.add_argument(
        "--expected-seeds",
        type=int,
        help="tables: seeds expected per cell (default: the most any cell has)",
    )
    parser.add_argument(
        "--experiment",
        help="glob on experiment names (tables default to table1*, table5*, table6*; '*' for all)",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs whose config KEY equals VALUE (repeatable)",
    )
    parser.add_argument(
        "--no-paper", action="store_true", help="tables: leave the paper's columns empty"
    )
    parser.add_argument(
        "--metrics", help="curves: comma-separated metric names, products a*b or globs"
    )
    parser.add_argument(
        "--style-by", help="curves/fig5/fig6: comma-separated config keys that tell settings apart"
    )
    parser.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="K=V;K=V",
        help="fig5: one panel row per filter (repeatable)",
    )
    parser.add_argument(
        "--windows",
        help="fig2: step windows; fig3: zoom windows after the whole run (START:END[,...])",
    )
    parser.add_argument("--left", default=figures.SHARPNESS, help="fig2: metric on the left axis")
    parser.add_argument("--right", default=figures.JACOBIAN, help="fig2: metric on the right axis")
    parser.add_argument("--x", default="step", choices=("step", "epoch"), help="curves: x axis")
    parser.add_argument(
        "--smooth", type=int, help="curves/fig5: moving-average window (logged points)"
    )
    parser.add_argument(
        "--example", type=int, help="fig1: which tracked example (default: the first)"
    )
    parser.add_argument(
        "--steps", help="fig8: probe steps to draw, comma-separated (default: last)"
    )
    parser.add_argument("--p", help="fig7: the probability vector, comma-separated")
    parser.add_argument("--pair", help="fig9: the two classes I,J (default: most opposed means)")
    parser.add_argument(
        "--kind", default="lines", choices=("lines", "heatmap"), help="fig36: lines or heatmap"
    )
    return parser


def _table(args, runs) -> list:
    if args.report == "table2":
        frame = table2.table2(
            runs,
            profile=args.profile,
            allow_mixed_profiles=args.allow_mixed_profiles,
            experiment=args.experiment or "table2*",
            paper=not args.no_paper,
        )
        return table2.write_table2(frame, args.out)
    frame = tables.build_table(
        args.report,
        runs,
        profile=args.profile,
        allow_mixed_profiles=args.allow_mixed_profiles,
        expected_seeds=args.expected_seeds,
        experiment=args.experiment,
        paper=not args.no_paper,
    )
    return tables.write_table(frame, args.out)


def _figure(args, runs) -> list:
    if args.experiment:
        runs = select_runs(runs, experiment=args.experiment)
        if runs.empty:
            raise ValueError(f"no runs of experiment '{args.experiment}'")
    runs, _ = check_profiles(runs, args.profile, args.allow_mixed_profiles, what=args.report)
    style_by = _csv_list(args.style_by)
    report = args.report
    if report in COMPANION_FIGURES:
        fig = COMPANION_REPORTS[report](runs)
        figures._footer(fig, runs)
    elif report == "fig1":
        fig = figures.fig1(runs, example=args.example)
    elif report == "fig2":
        fig = figures.fig2(runs, windows=_windows(args.windows), left=args.left, right=args.right)
    elif report == "fig3":
        windows = _windows(args.windows)
        fig = figures.fig3(runs, windows=[None, *windows] if windows else (None, (100, 300)))
    elif report == "fig4":
        fig = figures.fig4(runs)
    elif report == "fig5":
        rows = [parse_assignments(r.split(";")) for r in args.row] or None
        fig = figures.fig5(runs, rows=rows, style_by=style_by, smoothing=args.smooth)
    elif report == "fig6":
        fig = figures.fig6(runs, style_by=style_by[0] if style_by else "method.name")
    elif report == "fig8":
        fig = figures.fig8(runs, steps=_steps(args.steps))
    elif report == "fig10":
        fig = figures.fig10(runs)
    elif report in ("fig9", "fig11"):
        steps = _steps(args.steps)
        step = steps[0] if steps else None
        if report == "fig11":
            fig = figures.fig11(runs, step=step)
        else:
            pair = _steps(args.pair)
            if pair is not None and len(pair) != 2:
                raise UsageError(f"--pair expects two classes I,J, got '{args.pair}'")
            fig = figures.fig9(runs, step=step, pair=tuple(pair) if pair else None)
    elif report == "fig33":
        fig = figures.fig33(runs)
    elif report == "fig36":
        fig = figures.fig36(runs, kind=args.kind)
    else:
        metrics = _csv_list(args.metrics)
        if not metrics:
            raise UsageError("curves needs --metrics NAME[,NAME...]")
        fig = figures.curves(runs, metrics, style_by=style_by, x=args.x, smoothing=args.smooth)
    return figures.save_figure(fig, args.out)


def _claims(args) -> list:
    if not args.profile:
        raise UsageError("claims needs --profile (quick, paper or cpu)")
    frame = evaluate_all(args.runs, args.profile)
    runs = finished_runs(args.runs, args.profile)
    sources = {e.runs_of or e.name for e in load_experiments(args.profile)}
    runs = runs[runs["experiment"].isin(sources)]  # the runs the claims are judged on
    written = write_claims(frame, args.out, args.profile, runs=runs)
    if (runs["experiment"] == paired.EXPERIMENT).any():  # Table 1 with seeds paired
        written += paired.write_paired(paired.paired_table(runs), args.out)
    return written


def run(argv: Sequence[str] | None = None) -> list:
    """Parse ``argv``, write the report and return the written paths (raises on bad input)."""
    args = build_parser().parse_args(argv)
    if args.report in NO_RUNS:
        try:
            p = [float(v) for v in _csv_list(args.p)] if args.p else figures.FIG7_P
        except ValueError:
            raise UsageError(f"--p expects comma-separated probabilities, got '{args.p}'") from None
        return figures.save_figure(figures.fig7(p), args.out)
    if not args.runs:
        raise UsageError(f"{args.report} needs --runs DIR")
    if args.report in CLAIMS:
        return _claims(args)
    if args.expected_seeds is not None and args.expected_seeds < 1:
        raise UsageError(f"--expected-seeds must be >= 1, got {args.expected_seeds}")
    runs = load_runs(args.runs)
    if runs.empty:
        raise ValueError(f"no run directories found under {args.runs}")
    if args.select:
        runs = select_runs(runs, parse_assignments(args.select))
        if runs.empty:
            raise ValueError(f"no run under {args.runs} matches {' '.join(args.select)}")
    if args.report in COMPANION_TABLES:
        runs, _ = check_profiles(runs, args.profile, args.allow_mixed_profiles, what=args.report)
        if args.report == "p002-tables":
            return p002.write_tables(p002.tables(runs), args.out)
        return p004.write_markers(p004.markers_table(runs), args.out)
    return _table(args, runs) if args.report in TABLES else _figure(args, runs)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: 0 on success, 2 with one line on stderr on bad input."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = run(argv)
    except (UsageError, ValueError, KeyError, FileNotFoundError, NotADirectoryError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"ijr-report: error: {message}", file=sys.stderr)
        return 2
    for warning in caught:
        if not issubclass(warning.category, DeprecationWarning):
            print(f"ijr-report: warning: {warning.message}", file=sys.stderr)
    for path in written:
        print(f"ijr-report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
