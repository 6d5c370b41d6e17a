"""``ijr-report claims``: every experiment's ``claims:`` (conf/experiment/) checked against the runs
of one profile (:mod:`ijr.claims`); writes ``OUT/claims.md``, ``OUT/claims.csv``, ``OUT/runs.csv``
and, when Table 1's seeds can be paired, ``OUT/table1_paired.{md,csv}``; ``--keep-previous`` keeps
the earlier report's rows of experiments with no run under ``--runs`` (:mod:`ijr.claims.keep`)."""

from __future__ import annotations

from ijr.reporting.options import UsageError
from ijr.reporting.registry import report


@report(
    "claims",
    "every experiment's claims checked on one profile's runs",
    kind="claims",
    options=(
        (
            "--keep-previous",
            {
                "action": "store_true",
                "help": "claims: keep OUT's rows of experiments with no run under --runs "
                "(ijr.claims.keep)",
            },
        ),
    ),
)
def claims(_runs, args) -> list:
    from ijr.claims import paired
    from ijr.claims.evaluate import evaluate_all, finished_runs, write_claims
    from ijr.claims.keep import keep_previous
    from ijr.claims.spec import load_experiments

    if not args.profile:
        raise UsageError("claims needs --profile (quick, paper or cpu)")
    frame = evaluate_all(args.runs, args.profile)
    runs = finished_runs(args.runs, args.profile)
    sources = {e.runs_of or e.name for e in load_experiments(args.profile)}
    runs = runs[runs["experiment"].isin(sources)]  # the runs the claims are judged on
    judged, kept = runs, []
    if args.keep_previous:
        frame, judged, kept = keep_previous(frame, runs, load_experiments(args.profile), args.out)
        print(f"ijr-report: kept the previous claims of {', '.join(kept) or 'no experiment'}")
    written = write_claims(frame, args.out, args.profile, runs=judged, kept=kept)
    if (runs["experiment"] == paired.EXPERIMENT).any():  # Table 1 with seeds paired
        written += paired.write_paired(paired.paired_table(runs), args.out)
    return written
