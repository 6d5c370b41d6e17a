"""``make claims``: train every experiment that has its own runs in a profile (one Hydra multirun
each, one after the other), draw paper 000's figures of the report registry from them (an experiment
with ``<profile>_scale.runs_of`` is drawn from that experiment's runs), then ``ijr-report
claims`` over them.

    python -m ijr.claims.runner --profile cpu --runs runs --results results --data-root data

Experiments marked ``<profile>_scale.gpu_scale`` are not trained (their claims report
``not run``); those with ``<profile>_scale.runs_of`` are checked on another experiment's runs.
Re-running skips finished runs and resumes killed ones (``ijr-train`` does). ``--jobs N`` runs N
copies of each experiment's multirun at once (one thread each): they share its runs through the run
directories' locks, so a 2-core machine trains two runs at a time.

With ``--records`` the finished runs are first copied (their measured files only) into
RESULTS/PROFILE/runs/ (:mod:`ijr.claims.records`, committed with the results), and the claims are
judged on that folder: the union of every session's runs, so a reproduction split over sessions is
judged whole. Figures are drawn from --runs (some read files a record leaves out, ``margins/``).
With ``--restore`` the completed records are first copied back into --runs under today's run keys
(:func:`ijr.claims.records.restore_records`), so training skips them: a clean clone goes on where
the committed records stop. A figure whose runs include a restored one is not redrawn (it may read
what records leave out); the runner names it, and ``ijr-report <name> --runs RESULTS/PROFILE/runs``
draws those that read only records.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from ijr.claims import records
from ijr.claims.evaluate import JUDGED_RUN_STATUSES
from ijr.claims.spec import CONF_DIR, load_experiments
from ijr.reporting import registry
from ijr.reporting.runs import load_runs

BIN = Path(sys.executable).parent
REPO = CONF_DIR.parent
# Order of the training queue where it matters (the experiments most claims depend on first);
# the others follow in file order.
PRIORITY = (
    "fig4_arp",
    "fig3_trajectory",
    "fig5_lr",
    "fig35_mse",
    "fig5_batch",
    "fig10_subspace",
    "table5_simplecnn",
    "table1_simplecnn",
)


def trained_experiments(profile: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """Experiments with their own runs in ``profile`` (not GPU-scale, not ``runs_of``), queued."""
    own = [e.name for e in load_experiments(profile, conf_dir) if not e.gpu_scale and not e.runs_of]
    first = [name for name in PRIORITY if name in own]
    return first + [name for name in own if name not in first]


def train_command(experiment: str, args: argparse.Namespace) -> list[str]:
    cmd = [
        str(BIN / "ijr-train"),
        "-m",
        f"experiment={experiment}",
        f"profile={args.profile}",
        f"hydra/launcher={args.launcher}",
        f"paths.runs={args.runs}",
        f"data.root={args.data_root}",
        "trainer.progress_bar=false",
    ]
    return cmd + ([f"data.archive={args.archive}"] if args.archive else [])


def records_command(args: argparse.Namespace, folder: str, restore: bool = False) -> list[str]:
    """Copy the finished runs' measured files into the records ``folder``
    (:mod:`ijr.claims.records`), or with ``restore`` its completed records back into --runs."""
    cmd = [sys.executable, "-m", "ijr.claims.records", "--runs", str(args.runs)]
    cmd += ["--profile", args.profile, "--out", folder]
    if restore:
        cmd += ["--restore", "--data-root", str(args.data_root)]
        cmd += ["--archive", str(args.archive)] if args.archive else []
    return cmd


def report_command(args: argparse.Namespace, runs: str | None = None) -> list[str]:
    out = Path(args.results) / args.profile / "claims"
    return [
        str(BIN / "ijr-report"),
        "claims",
        "--runs",
        str(runs or args.runs),
        "--profile",
        args.profile,
        "--out",
        str(out),
    ] + (["--keep-previous"] if args.keep_previous else [])


def _all_finished(folder: Path, profile: str) -> bool:
    """Whether ``folder`` holds runs of ``profile`` and all of them have finished (a figure is
    never drawn from a run still in progress)."""
    if not folder.is_dir():
        return False
    runs = load_runs(folder)
    runs = runs[runs["profile"].astype(str) == profile]
    return not runs.empty and bool(runs["status"].isin(JUDGED_RUN_STATUSES).all())


def _restored_runs(folder: Path) -> list[Path]:
    """The run directories of ``folder`` restored from records (:func:`records.is_restored`)."""
    return [run for run in sorted(folder.iterdir()) if records.is_restored(run)]


def figure_commands(args: argparse.Namespace) -> list[list[str]]:
    """``ijr-report`` for every output of every paper's figure targets (the report registry,
    :func:`ijr.reporting.registry.figure_targets`; outputs reading one experiment's folder) whose
    experiment is trained (or has
    ``runs_of``) in the profile, into RESULTS/PROFILE/; those without runs, or with a run still in
    progress, are skipped."""
    experiments = {e.name: e for e in load_experiments(args.profile)}
    out_dir = Path(args.results) / args.profile
    commands = []
    papers = sorted({e.paper for e in registry.targets().values() if e.paper})
    for entry in (e for paper in papers for e in registry.figure_targets(paper, "paper")):
        for output in entry.outputs:
            exp = experiments.get(output.folder) if output.folder else None
            if exp is None or exp.gpu_scale:
                continue
            runs = Path(args.runs) / (exp.runs_of or output.folder)
            if not _all_finished(runs, args.profile):
                continue
            name = registry.output_report(entry, output).command_name
            restored = _restored_runs(runs)
            if restored:
                print(
                    f"claims: {name} -> {output.stem} not redrawn: {len(restored)} of its runs "
                    f"in {runs} are restored records (no checkpoints, no margins/)",
                    flush=True,
                )
                continue
            cmd = [str(BIN / "ijr-report"), name, "--runs", str(runs)]
            cmd += ["--out", str(out_dir / output.stem), "--profile", args.profile]
            commands.append(cmd + list(output.args))
    return commands


def _call(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def train_env(profile: str, jobs: int) -> dict[str, str]:
    """The training processes' environment: one thread per run at cpu profile or with several
    jobs, unless ``OMP_NUM_THREADS`` is set (the committed cpu results are single-threaded, and
    the thread count moves a run's numbers: float summation order)."""
    env = dict(os.environ)
    if profile == "cpu" or jobs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


def call_jobs(cmd: list[str], jobs: int, env: dict[str, str], stagger_s: float = 5.0) -> int:
    """``jobs`` copies of one multirun at once: each run is trained once, by the copy that takes
    its lock first (a run another copy holds, or has completed, is skipped; ijr.rundir), so the
    copies share the sweep like a work queue. The worst exit status."""
    print(f"+ ({jobs} x) " + " ".join(cmd), flush=True)
    procs = []
    for i in range(jobs):
        if i:
            time.sleep(stagger_s)  # the first copy takes the first run's lock
        procs.append(subprocess.Popen(cmd, env=env))
    return max(p.wait() for p in procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="conf/profile/<name>.yaml")
    parser.add_argument("--runs", default="runs", help="paths.runs")
    parser.add_argument("--results", default="results", help="claims go to RESULTS/PROFILE/claims/")
    parser.add_argument("--data-root", default="data", help="data.root")
    parser.add_argument("--archive", default="", help="data.archive (CIFAR-10 ImageFolder .tar.gz)")
    parser.add_argument("--launcher", default="local", help="hydra/launcher")
    parser.add_argument(
        "--only", default="", help="comma-separated experiments to train (default: all)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="concurrent copies of each experiment's multirun, sharing its runs (e.g. 2 on 2 cores)",
    )
    parser.add_argument("--no-train", action="store_true", help="only the claims report")
    parser.add_argument("--no-report", action="store_true", help="only the training queue")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument(
        "--records",
        action="store_true",
        help="record the finished runs into RESULTS/PROFILE/runs and judge on those records",
    )
    parser.add_argument(
        "--restore",
        action="store_true",
        help="first copy the completed records of RESULTS/PROFILE/runs into --runs (not retrained)",
    )
    parser.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the claims of experiments with no run under --runs from the earlier report",
    )
    args = parser.parse_args(argv)
    queue = trained_experiments(args.profile)
    if args.only:
        wanted = [e.strip() for e in args.only.split(",") if e.strip()]
        unknown = [e for e in wanted if e not in queue]
        if unknown:
            print(
                f"claims: not trained in profile={args.profile}: {', '.join(unknown)}",
                file=sys.stderr,
            )
            return 2
        queue = wanted
    env = train_env(args.profile, args.jobs)
    failed = 0
    recorded = str(Path(args.results) / args.profile / "runs")
    if args.restore and Path(recorded).is_dir():
        failed += _call(records_command(args, recorded, restore=True)) != 0
    if not args.no_train:
        failed += sum(call_jobs(train_command(e, args), args.jobs, env) != 0 for e in queue)
    judged = args.runs
    if args.records:
        judged = recorded
        failed += _call(records_command(args, judged)) != 0
    if not args.no_report:
        if not args.no_figures:
            failed += sum(_call(cmd) != 0 for cmd in figure_commands(args))
        failed += _call(report_command(args, judged)) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
