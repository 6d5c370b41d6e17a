"""Driver of `make table1`, `make figures`, `make fig<N>`: run an experiment's sweep, then
`ijr-report` on its run directories.

    python scripts/reproduce.py table1 --profile quick --launcher local
    python scripts/reproduce.py fig4 --profile paper --launcher slurm --overrides "hydra.launcher.partition=gpu"
    python scripts/reproduce.py fig4 --launcher slurm_cpu -- hydra.launcher.partition=cpu seed=1

Each target lists the experiments (conf/experiment/) whose multirun it launches and the reports it
writes under ``<results>/<profile>/``. Re-running skips finished runs and resumes killed ones. The
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

# target -> (experiments run in every profile, experiments added in the paper profile, reports)
# A report is (report name, output stem, experiment folder or None for the runs root, extra args).
TARGETS: dict[str, tuple[list[str], list[str], list[tuple[str, str, str | None, list[str]]]]] = {
    "table1": (
        ["table1_simplecnn", "table1_simplecnn_full"],
        ["table1_wrn", "table1_wrn_sgd"],
        [("table1", "table1", None, [])],
    ),
    "table2": ([], ["table2_adversarial"], [("table2", "table2", None, [])]),  # GPU scale
    "table5": (["table5_simplecnn"], ["table5_wrn"], [("table5", "table5", None, [])]),
    "table6": ([], ["table6_wrn"], [("table6", "table6", None, [])]),
    "fig1": (["fig1_impurity"], [], [("fig1", "fig1", "fig1_impurity", ["--select", "seed=0"])]),
    "fig2": (
        ["fig2_sharpness_jacobian"],
        [],
        [("fig2", "fig2", "fig2_sharpness_jacobian", ["--select", "seed=0"])],
    ),
    "fig3": (
        ["fig3_trajectory"],
        [],
        [("fig3", "fig3", "fig3_trajectory", ["--select", "seed=0"])],
    ),
    "fig4": (["fig4_arp"], [], [("fig4", "fig4", "fig4_arp", ["--select", "seed=0"])]),
    "fig5": (
        ["fig5_lr", "fig5_batch"],
        [],
        [
            ("fig5", "fig5_lr", "fig5_lr", ["--select", "seed=0", "--style-by", "optim.lr"]),
            (
                "fig5",
                "fig5_batch",
                "fig5_batch",
                ["--select", "seed=0", "--style-by", "data.batch_size"],
            ),
        ],
    ),
    "fig6": ([], ["fig6_ejr_wrn"], [("fig6", "fig6", "fig6_ejr_wrn", [])]),
    "fig12": (
        ["fig12_norms"],
        [],
        [
            (
                "curves",
                "fig12",
                "fig12_norms",
                [
                    "--metrics",
                    "probe/logit_norm,probe/logit_sum_abs,probe/weight_norm,probe/dist_from_init",
                ],
            )
        ],
    ),
    "fig15": (
        ["fig15_relation"],
        [],
        [
            (
                "curves",
                "fig15",
                "fig15_relation",
                [
                    "--metrics",
                    "probe/sharpness,probe/impurity_mean*probe/jacobian_ones_sq",
                    "--style-by",
                    "optim.lr",
                ],
            )
        ],
    ),
    "fig35": (["fig35_mse"], [], [("fig2", "fig35", "fig35_mse", ["--select", "seed=0"])]),
    # companion paper 002 (MacDonald et al.): results under <results>/<profile>/p002/
    "p002-fig1": (
        ["p002_fig1_label_smoothing"],
        [],
        [("p002-fig1", "p002/fig1", "p002_fig1_label_smoothing", [])],
    ),
    "p002-fig2": ([], ["p002_fig2_weight_decay"], [("p002-fig2", "p002/fig2", None, [])]),
    "p002-fig3": ([], ["p002_fig3_lr_batch"], [("p002-fig3", "p002/fig3", None, [])]),
    "p002-fig5": (
        [],
        [
            "p002_fig5_label_smoothing",
            "p002_fig5_mixup",
            "p002_fig5_augment",
            "p002_fig5_sam",
        ],
        [("p002-fig5", "p002/fig5", None, [])],
    ),
    "p002-fig28": (
        [],
        ["p002_fig28_first_epoch", "p002_fig29_long"],
        [("p002-fig28", "p002/fig28", None, [])],
    ),
    "p002-c3": (
        ["p002_c3_gaussian", "p002_c3_relu"],
        [],
        [("p002-tables", "p002/tables", None, []), ("p002-fig32", "p002/fig32", None, [])],
    ),
    # companion paper 002 (MacDonald et al.), App. C.2: results under <results>/<profile>/p002/
    "p002-input-scaling": (
        ["p002_input_scaling"],
        [],
        [
            (
                "curves",
                "p002/input_scaling",
                "p002_input_scaling",
                [
                    "--metrics",
                    "probe/sharpness,probe/io_jacobian_max",
                    "--style-by",
                    "data.input_scale,model.kwargs.activation,loss.label_smoothing",
                ],
            )
        ],
    ),
    # companion paper 004 (Li, Wang & Li): results under <results>/<profile>/p004/
    "p004-fig1": (
        ["p004_fig1_phases"],
        [],
        [
            ("p004-fig1", "p004/fig1", "p004_fig1_phases", []),
            ("p004-markers", "p004/fig1_markers", "p004_fig1_phases", []),
        ],
    ),
    "p004-fig2": (
        ["p004_fig2_anomalies"],
        [],
        [
            ("p004-fig2", "p004/fig2", "p004_fig2_anomalies", []),
            ("p004-markers", "p004/fig2_markers", "p004_fig2_anomalies", []),
        ],
    ),
    "p004-fig3": (
        ["p004_fig3_gram"],
        [],
        [
            ("p004-fig3", "p004/fig3", "p004_fig3_gram", []),
            ("p004-markers", "p004/fig3_markers", "p004_fig3_gram", []),
        ],
    ),
    "p004-sec4": (
        ["p004_sec4_linear"],
        [],
        [
            ("p004-sec4", "p004/sec4", "p004_sec4_linear", []),
            ("p004-markers", "p004/sec4_markers", "p004_sec4_linear", []),
        ],
    ),
    "fig36": (["fig36_ejr_grid"], [], [("fig36", "fig36", "fig36_ejr_grid", [])]),
    "fig7": ([], [], [("fig7", "fig7", None, [])]),  # the secular function: no runs
    "fig8": (
        ["fig10_subspace"],
        [],
        [
            ("fig8", "fig8", "fig10_subspace", ["--select", "seed=0"]),
            (
                "fig8",
                "fig30",
                "fig10_subspace",
                ["--select", "seed=0", "--steps", "100,500,1000,2000,4000,6000"],
            ),
        ],
    ),
    "fig9": (
        ["fig10_subspace"],
        [],
        [
            ("fig9", "fig9", "fig10_subspace", ["--select", "seed=0"]),
            ("fig11", "fig11", "fig10_subspace", ["--select", "seed=0"]),
            ("fig33", "fig33", "fig10_subspace", ["--select", "seed=0"]),
        ],
    ),
    "fig10": (
        ["fig10_subspace"],
        [],
        [("fig10", "fig10", "fig10_subspace", ["--select", "seed=0"])],
    ),
}
# `make figures`: what regenerates on a CPU in the quick profile, plus the GPU-scale ones in paper.
FIGURES = [
    "fig1",
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "fig7",
    "fig8",
    "fig9",
    "fig10",
    "fig12",
    "fig15",
    "fig35",
    "fig36",
]
FIGURES_PAPER_ONLY = ["fig6"]


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
    for name, stem, folder, report_args in TARGETS[target][2]:
        runs = Path(args.runs) / folder if folder else Path(args.runs)
        cmd = [str(BIN / "ijr-report"), name, "--runs", str(runs), "--out", str(out_dir / stem)]
        cmd += ["--profile", args.profile, *report_args, *extra_report_args]
        failed += run(cmd) != 0
    return failed


def reproduce(target: str, args: argparse.Namespace, extra: list[str]) -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*TARGETS, "figures"], help="what to regenerate")
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
    extra = shlex.split(args.overrides) + [e for e in extra if e != "--"]
    targets = (
        args.target == "figures"
        and FIGURES + (FIGURES_PAPER_ONLY if args.profile == "paper" else [])
        or [args.target]
    )
    return max(reproduce(t, args, extra) for t in targets)


if __name__ == "__main__":
    sys.exit(main())
