"""`make demo`: the newcomer's tour -- quick versions of Figures 1, 2 and 4 and a Table 1 slice.

Every step is a real experiment of conf/experiment/ run by the same code as `make fig1` / `make
table1` (a Hydra multirun, then `ijr-report`), in the quick profile cut further on the command
line (the cuts are listed in TOUR and recorded in each run's .hydra/config.yaml) so that the whole
tour finishes on a 2-core CPU in about 15 minutes. The numbers are those of a few hundred images
and a few hundred steps: they show what the figures and tables look like, not the paper's values.

Data: CIFAR-10 from DATA_ROOT (or the ImageFolder archive given with --archive, or downloaded
where there is network). Where it is none of these, the demo says so in one line and runs the
same tour on scikit-learn's bundled `digits` (8x8 images; the Table 1 slice then uses 6CNN,
since SimpleCNN needs images of at least 10x10).

    python scripts/demo.py [--runs RUNS] [--data-root DIR] [--archive cifar10.tar.gz] [--only fig1,...]

Everything goes under RUNS/demo/: run directories per experiment, and the figures and tables in
RUNS/demo/results/quick/. Re-running skips the runs already finished.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reproduce  # noqa: E402  (scripts/reproduce.py: the driver of make table1 / make fig<N>)

# (target, experiment, what it shows, extra overrides: the demo's cuts of the quick profile)
TOUR: list[tuple[str, str, str, list[str]]] = [
    (
        "fig1",
        "fig1_impurity",
        "Figure 1: impurity lambda^(1) of 6CNN under full-batch GD, with Theorem 4.1's bounds",
        ["quick_scale.data_subset=500", "quick_scale.max_steps=100", "quick_scale.probe_size=250"],
    ),
    (
        "fig2",
        "fig2_sharpness_jacobian",
        "Figure 2: sharpness and ||<J>||^2 of 6CNN (B = 128, lr 0.04) probed every step, 2/eta dashed",
        [
            "quick_scale.data_subset=1000",
            "quick_scale.max_steps=40",
            "quick_scale.probe_size=100",
            "probes.expensive=[sharpness]",
        ],
    ),
    (
        "fig4",
        "fig4_arp",
        "Figure 4: ||<J>||^2, sharpness, <lambda^(1)> and the ARP phase of 6CNN (B = 128, lr 0.01)",
        [
            "quick_scale.data_subset=1000",
            "quick_scale.max_steps=200",
            "quick_scale.probe_size=100",
            "probes.every_n_steps=25",
            "probes.expensive_every_n_steps=25",
            "probes.expensive=[sharpness,rho_b]",
            "probes.rho_b_batches=4",
        ],
    ),
    (
        "table1",
        "table1_simplecnn",
        "Table 1 slice: SGD vs SAM vs EJR at lr 0.03, B = 128 (SimpleCNN, 500 images)",
        ["method=sgd,sam,ejr", "optim.lr=0.03", "quick_scale.max_steps=100"],
    ),
]


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
    parser.add_argument(
        "--only", default="", help="comma-separated subset of fig1,fig2,fig4,table1"
    )
    parser.add_argument("--launcher", default="local", help="hydra/launcher")
    args = parser.parse_args(argv)

    only = {s for s in args.only.split(",") if s}
    unknown = only - {t for t, *_ in TOUR}
    if unknown:
        parser.error(
            f"--only: unknown step(s) {sorted(unknown)}; choose from fig1,fig2,fig4,table1"
        )
    root = Path(args.runs) / "demo"
    ns = argparse.Namespace(
        profile="quick",
        launcher=args.launcher,
        runs=str(root),
        results=str(root / "results"),
        data_root=args.data_root,
        archive=args.archive,
    )
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
    done: list[tuple[str, str, float, int]] = []
    for target, experiment, what, cuts in TOUR:
        if only and target not in only:
            continue
        extra = list(cuts) + data_cuts
        if target == "table1" and not ok:
            extra.append("model=cnn6")  # SimpleCNN needs >= 10x10 images
        print(f"\ndemo: {what} [{dataset}]", flush=True)
        t0 = time.perf_counter()
        step_failed = reproduce.launch([experiment], ns, extra)
        report_args = ["--experiment", experiment] if target == "table1" else []
        step_failed += reproduce.report(target, ns, report_args)
        failed += step_failed
        done.append((target, what, time.perf_counter() - t0, step_failed))

    out = Path(ns.results) / "quick"
    print(f"\ndemo: finished in {time.perf_counter() - start:.0f} s on {dataset}")
    for target, what, seconds, step_failed in done:
        files = sorted(p.name for p in out.glob(f"{target}.*"))
        status = "ok" if not step_failed else "FAILED (see the log above)"
        print(f"  {target:7s} {seconds:5.0f} s  {status:6s} {what}")
        print(f"          -> {out}/{{{','.join(files)}}}" if files else "          -> (no output)")
    print(f"demo: run directories (metrics.csv, summary.json, config) under {root}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
