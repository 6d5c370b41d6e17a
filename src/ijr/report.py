"""ijr-report: aggregate run directories into the paper's tables and figures.

    ijr-report table1 --runs runs/ --out results/quick/table1 --profile quick
    ijr-report fig4   --runs runs/fig4_arp --out results/quick/fig4 --select seed=0
    ijr-report curves --runs runs/fig23 --out results/quick/fig23 \\
        --metrics probe/sharpness,probe/jacobian_ones_sq,probe/impurity_mean --style-by optim.lr
    ijr-report fig8   --runs runs/fig10_subspace --out results/quick/fig30 --steps 100,200,400
    ijr-report fig7   --out results/quick/fig7 --p 0.45,0.25,0.15,0.1,0.05
    ijr-report claims --runs runs/ --profile cpu --out results/cpu/claims
    ijr-report 004-fig1 --runs runs/p004_fig1_phases --out results/cpu/p004/fig1

Reports are named ``<paper>-<name>`` (``000-fig4``, ``004-fig1``; :mod:`ijr.reporting.registry`,
declared in :mod:`ijr.reporting.papers`); paper 000's keep their bare names (``fig4``,
``table1``, ``curves``), the companions' their ``pNNN-`` ones (``p004-fig1``).

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

from matplotlib.figure import Figure

from ijr.reporting import figures, registry
from ijr.reporting.options import UsageError
from ijr.reporting.runs import check_profiles, load_runs, parse_assignments, select_runs

REPORTS = tuple(registry.names())  # every accepted name: 000-fig4 and its alias fig4, ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message + SystemExit
        raise UsageError(message)


def _common_options(parser: argparse.ArgumentParser) -> None:
    """The options every report reads: where the runs are, where the output goes, which runs."""
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


def _report_options(parser: argparse.ArgumentParser) -> None:
    """The options the registered reports declare (``Report.options``); one flag declared
    differently by two reports is an error."""
    declared: dict[str, tuple[str, dict]] = {}
    for entry in registry.reports().values():
        for flag, kwargs in entry.options:
            if flag in declared:
                if declared[flag][1] != kwargs:
                    raise ValueError(
                        f"option {flag} is declared differently by {declared[flag][0]} and {entry.name}"
                    )
                continue
            declared[flag] = (entry.name, kwargs)
            parser.add_argument(flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ijr-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "report",
        choices=REPORTS,
        metavar="REPORT",
        help="which table or figure (000-fig4, fig4, ...)",
    )
    _common_options(parser)
    _report_options(parser)
    return parser


def _load(args):
    """The runs under ``--runs`` kept by ``--select``; errors name the folder or the selection."""
    if args.expected_seeds is not None and args.expected_seeds < 1:
        raise UsageError(f"--expected-seeds must be >= 1, got {args.expected_seeds}")
    runs = load_runs(args.runs)
    if runs.empty:
        raise ValueError(f"no run directories found under {args.runs}")
    if args.select:
        runs = select_runs(runs, parse_assignments(args.select))
        if runs.empty:
            raise ValueError(f"no run under {args.runs} matches {' '.join(args.select)}")
    return runs


def _figure_runs(args, runs):
    """A figure's runs: those of ``--experiment`` (if given), of one profile."""
    if args.experiment:
        runs = select_runs(runs, experiment=args.experiment)
        if runs.empty:
            raise ValueError(f"no runs of experiment '{args.experiment}'")
    runs, _ = check_profiles(runs, args.profile, args.allow_mixed_profiles, what=args.report)
    return runs


def run(argv: Sequence[str] | None = None) -> list:
    """Parse ``argv``, write the report and return the written paths (raises on bad input).
    Which function draws it is the registry's (:mod:`ijr.reporting.registry`)."""
    args = build_parser().parse_args(argv)
    entry = registry.get(args.report)
    runs = None
    if entry.needs_runs:
        if not args.runs:
            raise UsageError(f"{args.report} needs --runs DIR")
        if entry.kind != "claims":
            runs = _load(args)
            runs = _figure_runs(args, runs) if entry.kind == "figure" else runs
    result = entry.draw(runs, args)
    return figures.save_figure(result, args.out) if isinstance(result, Figure) else result


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
