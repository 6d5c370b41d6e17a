"""Driver of `make table1`, `make figures`, `make fig<N>`, `make 000-fig4`, `make report NAME=...`:
run an experiment's sweep, then `ijr-report` on its run directories.

    python scripts/reproduce.py table1 --profile quick --launcher local
    python scripts/reproduce.py 004-fig1 --profile cpu        # or its earlier name p004-fig1
    python scripts/reproduce.py --list                        # every target (make help)
    python scripts/reproduce.py fig4 --profile paper --launcher slurm --overrides "hydra.launcher.partition=gpu"
    python scripts/reproduce.py fig4 --launcher slurm_cpu -- hydra.launcher.partition=cpu seed=1

The targets are the report registry's (:mod:`ijr.reporting.registry`, declared per paper in
src/ijr/reporting/papers/): each lists the experiments (conf/experiment/) whose multirun it
launches and the reports it writes under ``<results>/<profile>/``. Re-running skips finished runs and resumes killed ones. The
reports are written only when every launch of the target exited 0 (diverged runs are results; a
failed run makes its launcher exit 1, and the target then stops with status 1 before reporting).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "src"))  # a fresh clone before `pip install -e .` finds ijr too

from ijr.reporting import registry  # noqa: E402  (after the path above)

# Views of the registry (src/ijr/reporting/papers/): target -> (experiments run in every profile,
# experiments added in the paper profile, reports); a report is (ijr-report name, output stem,
# experiment folder or None for the runs root, extra args).
TARGETS: dict[str, tuple[list[str], list[str], list[tuple[str, str, str | None, list[str]]]]] = {
    name: (
        list(entry.experiments),
        list(entry.paper_experiments),
        [
            (registry.output_report(entry, o).command_name, o.stem, o.folder, list(o.args))
            for o in entry.outputs
        ],
    )
    for name, entry in registry.targets().items()
}
# `make figures`: paper 000's figures that fit the quick profile, plus the GPU-scale ones in paper.
FIGURES = [e.name for e in registry.figure_targets("000", "quick")]
FIGURES_PAPER_ONLY = [
    e.name for e in registry.figure_targets("000", "paper") if e.name not in FIGURES
]


def run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO)


def launch(experiments: list[str], args: argparse.Namespace, extra: list[str]) -> int:
    """One Hydra multirun per experiment (each carries its own sweep); the number that failed."""
    common = [
        f"profile={args.profile}",
        f"hydra/launcher={args.launcher}",
        f"paths.runs={args.runs}",
        f"data.root={args.data_root}",
        "trainer.progress_bar=false",
    ]
    if args.archive:
        common.append(f"data.archive={args.archive}")
    return sum(
        run([str(BIN / "ijr-train"), "-m", f"experiment={exp}", *common, *extra]) != 0
        for exp in experiments
    )


def report(target: str, args: argparse.Namespace, extra_report_args: list[str] = ()) -> int:
    """``ijr-report`` for every report of ``target``, into <results>/<profile>/; failures."""
    out_dir = Path(args.results) / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name, stem, folder, report_args in TARGETS[registry.get(target).name][2]:
        runs = Path(args.runs) / folder if folder else Path(args.runs)
        cmd = [str(BIN / "ijr-report"), name, "--runs", str(runs), "--out", str(out_dir / stem)]
        cmd += ["--profile", args.profile, *report_args, *extra_report_args]
        failed += run(cmd) != 0
    return failed


def reproduce(target: str, args: argparse.Namespace, extra: list[str]) -> int:
    target = registry.get(target).name
    always, paper_only, _ = TARGETS[target]
    experiments = always + (paper_only if args.profile == "paper" else [])
    if not TARGETS[target][0] and not TARGETS[target][1]:  # drawn from equations alone (Fig. 7)
        return 1 if report(target, args) else 0
    if not experiments:
        print(
            f"reproduce: {target} has no {args.profile}-profile version (GPU scale); use PROFILE=paper",
            file=sys.stderr,
        )
        return 2
    failed = launch(experiments, args, extra)
    if failed:
        print(
            f"reproduce: {target}: {failed} of {len(experiments)} launch(es) exited non-zero"
            " (see the table above); its reports are not written",
            file=sys.stderr,
        )
        return 1
    return 1 if report(target, args) else 0


def _target_names() -> list[str]:
    return [n for e in registry.targets().values() for n in (e.name, *e.aliases)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "target",
        nargs="?",
        choices=[*_target_names(), "figures"],
        metavar="TARGET",
        help="what to regenerate: a registry target (000-fig4, fig4, 004-fig1, ...) or figures",
    )
    parser.add_argument("--list", action="store_true", help="list the targets (make help)")
    parser.add_argument("--profile", default="quick", choices=["quick", "cpu", "paper"])
    parser.add_argument(
        "--launcher",
        default="local",
        help="hydra/launcher: local, submitit_local, slurm, slurm_cpu",
    )
    parser.add_argument("--runs", default=str(REPO / "runs"), help="paths.runs")
    parser.add_argument(
        "--results", default=str(REPO / "results"), help="tables and figures go to RESULTS/PROFILE/"
    )
    parser.add_argument("--data-root", default=str(REPO / "data"), help="data.root")
    parser.add_argument(
        "--archive", default="", help="data.archive (a CIFAR-10 ImageFolder .tar.gz)"
    )
    parser.add_argument(
        "--overrides",
        default="",
        help="Hydra overrides for every run, one string (make's OVERRIDES), e.g. 'seed=1 trainer.max_steps=50'",
    )
    args, extra = parser.parse_known_args(argv)
    if args.list:
        print("\n".join(registry.help_lines()))
        return 0
    if args.target is None:
        parser.error("a TARGET is required (or --list)")
    extra = shlex.split(args.overrides) + [e for e in extra if e != "--"]
    targets = (
        args.target == "figures"
        and FIGURES + (FIGURES_PAPER_ONLY if args.profile == "paper" else [])
        or [args.target]
    )
    return max(reproduce(t, args, extra) for t in targets)


if __name__ == "__main__":
    sys.exit(main())
