"""`make demo`: the newcomer's tour -- Figures 1, 2 and 4 from one run that shows the phenomena,
the claims they check, and a Table 1 slice.

Every step is a real experiment of conf/experiment/ run by the same code as `make claims` /
`make table1` (a Hydra multirun, then `ijr-report`): the Figure 4 experiment in the cpu profile
(3FCN under full-batch GD at lr 0.1) cut to 2,000 images and 800 steps, where the sharpness
rises to 2/eta within ~100 steps and the Active Regularization Period starts and ends; then the
claims of Figures 1, 2, 4 and 12 (conf/experiment/*.yaml) are checked on that run and printed;
then a quick-profile Table 1 slice. The cuts are listed in TOUR and recorded in each run's
.hydra/config.yaml; the tour takes a few minutes on a 2-core CPU. The numbers are those of 2,000
images: they show the phenomena, not the paper's values (see results/cpu/ for the cpu profile).

Data: CIFAR-10 from DATA_ROOT (or the ImageFolder archive given with --archive, or downloaded
where there is network). Where it is none of these, the demo says so in one line and runs the
same tour on scikit-learn's bundled `digits` (8x8 images; the Table 1 slice then uses 6CNN,
since SimpleCNN needs images of at least 10x10).

    python scripts/demo.py [--runs RUNS] [--data-root DIR] [--archive cifar10.tar.gz] [--only fig1,...]

Everything goes under RUNS/demo/: run directories per experiment, and the figures, tables and
claims in RUNS/demo/results/<profile>/. Re-running skips the runs already finished.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reproduce  # noqa: E402  (scripts/reproduce.py: the driver of make table1 / make fig<N>)
from ijr.claims import runner  # noqa: E402  (make claims: figures of runs_of experiments)

# (target, experiment, profile, what it shows, extra overrides: the demo's cuts of that profile)
TOUR: list[tuple[str, str, str, str, list[str]]] = [
    (
        "fig4",
        "fig4_arp",
        "cpu",
        "Figures 1, 2, 4: 3FCN under full-batch GD (lr 0.1, 2,000 images) sharpens to 2/eta, "
        "then the ARP (impurity n-shape, ||<J>||^2 held, then released)",
        [
            "cpu_scale.data_subset=2000",
            "cpu_scale.overrides.data.subset=2000",
            "cpu_scale.max_steps=800",
            "cpu_scale.overrides.trainer.max_steps=800",
            "cpu_scale.overrides.probes.size=500",
            "cpu_scale.overrides.probes.track_examples=8",
        ],
    ),
    (
        "table1",
        "table1_simplecnn",
        "quick",
        "Table 1 slice: SGD vs SAM vs EJR at lr 0.03, B = 128 (SimpleCNN, 500 images)",
        ["method=sgd,sam,ejr", "optim.lr=0.03", "quick_scale.max_steps=100"],
    ),
]
# Claims the tour checks (experiment/claim of conf/experiment/*.yaml), on the runs it made.
CHECKED_EXPERIMENTS = ("fig4_arp", "fig1_impurity", "fig2_sharpness_jacobian", "fig12_norms")


def cifar10_available(args: argparse.Namespace) -> tuple[bool, str]:
    """Whether CIFAR-10 loads from data_root / archive / download; else the one-line reason."""
    from hydra import compose, initialize_config_dir

    from ijr.data import DatasetNotFound, build_datamodule

    overrides = [f"data.root={args.data_root}", "data=cifar10", "data.subset=500"]
    if args.archive:
        overrides.append(f"data.archive={args.archive}")
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    try:
        build_datamodule(cfg.data, int(cfg.seed)).setup()
    except DatasetNotFound as exc:
        return False, str(exc).splitlines()[0]
    return True, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(REPO / "runs"), help="the tour goes to RUNS/demo/")
    parser.add_argument("--data-root", default=str(REPO / "data"), help="where CIFAR-10 is")
    parser.add_argument("--archive", default="", help="a CIFAR-10 ImageFolder .tar.gz")
    parser.add_argument("--only", default="", help="comma-separated subset of fig4,table1")
    parser.add_argument("--launcher", default="local", help="hydra/launcher")
    args = parser.parse_args(argv)

    only = {s for s in args.only.split(",") if s}
    unknown = only - {t for t, *_ in TOUR}
    if unknown:
        parser.error(f"--only: unknown step(s) {sorted(unknown)}; choose from fig4,table1")
    root = Path(args.runs) / "demo"
    ok, reason = cifar10_available(args)
    data_cuts: list[str] = []
    if ok:
        dataset = "CIFAR-10"
    else:
        print(f"demo: CIFAR-10 unavailable ({reason}); running the tour on the bundled digits")
        dataset = "scikit-learn digits (bundled, offline)"
        data_cuts = ["data=digits"]

    start = time.perf_counter()
    failed = 0
    done: list[tuple[str, str, str, float, int]] = []
    for target, experiment, profile, what, cuts in TOUR:
        if only and target not in only:
            continue
        ns = _namespace(args, root, profile)
        extra = list(cuts) + data_cuts
        if not ok and profile == "cpu":
            extra.append("cpu_scale.overrides.data.subset=null")  # digits: all 1,797 images
        if target == "table1" and not ok:
            extra.append("model=cnn6")  # SimpleCNN needs >= 10x10 images
        print(f"\ndemo: {what} [{dataset}]", flush=True)
        t0 = time.perf_counter()
        step_failed = reproduce.launch([experiment], ns, extra)
        if profile == "cpu":
            step_failed += sum(runner._call(cmd) != 0 for cmd in runner.figure_commands(ns))
            print_claims(root, profile)
        else:
            step_failed += reproduce.report(target, ns, ["--experiment", experiment])
        failed += step_failed
        done.append((target, profile, what, time.perf_counter() - t0, step_failed))

    print(f"\ndemo: finished in {time.perf_counter() - start:.0f} s on {dataset}")
    for target, profile, what, seconds, step_failed in done:
        out = root / "results" / profile
        files = sorted(p.name for p in out.glob("*.*"))
        status = "ok" if not step_failed else "FAILED (see the log above)"
        print(f"  {target:7s} {seconds:5.0f} s  {status:6s} {what}")
        print(f"          -> {out}/{{{','.join(files)}}}" if files else "          -> (no output)")
    print(f"demo: run directories (metrics.csv, summary.json, config) under {root}/")
    return 1 if failed else 0


def _namespace(args: argparse.Namespace, root: Path, profile: str) -> argparse.Namespace:
    return argparse.Namespace(
        profile=profile,
        launcher=args.launcher,
        runs=str(root),
        results=str(root / "results"),
        data_root=args.data_root,
        archive=args.archive,
    )


def print_claims(root: Path, profile: str) -> None:
    """Check the claims of :data:`CHECKED_EXPERIMENTS` on the tour's runs; print and save them."""
    from ijr.claims.evaluate import evaluate_all, write_claims

    frame = evaluate_all(root, profile)
    frame = frame[frame["experiment"].isin(CHECKED_EXPERIMENTS)]
    written = write_claims(frame, root / "results" / profile / "claims", profile)
    print(f"\ndemo: claims checked on this run ({written[0]}):")
    for _, row in frame.iterrows():
        print(f"  [{row['status']:>11s}] {row['experiment']}/{row['claim']} ({row['paper']})")
        print(f"                {row['statement']}")
        print(f"                measured: {row['measured']}")


if __name__ == "__main__":
    sys.exit(main())
