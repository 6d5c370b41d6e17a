"""Sweeps through a real SLURM (``hydra/launcher=slurm`` / ``slurm_cpu``), marked ``slurm``:
``make test-slurm`` starts a single-node cluster with accounting (scripts/ci/slurm_cluster.sh) and
runs this module. Without ``sbatch``/``sacct`` the tests skip, unless IJR_REQUIRE_SLURM=1 (set by
``make test-slurm``), where they fail.

The jobs run on this machine as the user running pytest, with its environment (SLURM's default
``--export=ALL``), so they import the test helpers in tests/ and see the same file system.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, compose_cfg, run_cli, tiny_overrides
from ijr.data.fake import make_fake_cifar
from ijr.reporting import load_runs
from ijr.train import train

pytestmark = pytest.mark.slurm

# One CPU and 1 GB per job so two jobs share a 2-CPU node; the default partition.
SLURM_CPU = [
    "hydra/launcher=slurm_cpu",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]


def _sacct_ok() -> bool:
    if not (shutil.which("sbatch") and shutil.which("sacct")):
        return False
    return subprocess.run(["sacct", "-n", "-X"], capture_output=True).returncode == 0


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    if not _sacct_ok():
        message = "no SLURM with accounting here (sbatch/sacct); `make test-slurm` starts one"
        if os.environ.get("IJR_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _jobs() -> dict[str, str]:
    """Every job (array elements included) SLURM accounting knows: id -> state."""
    out = subprocess.run(
        ["sacct", "-a", "-n", "-X", "-P", "-S", "2000-01-01", "-o", "JobID,State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|")[:2] for line in out.splitlines() if line.strip())


ACTIVE_STATES = ("PENDING", "RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING", "SUSPENDED")


def _settled(read, active, settle_s: float = 120):
    """``read()`` once ``active`` of it is false, or after ``settle_s`` seconds, whichever comes
    first: slurmctld sends a job's end to slurmdbd asynchronously, so sacct can still say RUNNING
    for jobs whose results submitit has already collected (seen in CI)."""
    deadline = time.time() + settle_s
    while True:
        value = read()
        if not active(value) or time.time() > deadline:
            return value
        time.sleep(2)


def _history(job_id: str) -> list[str]:
    """The states of every run of one job (``-D``: requeued runs too), once its last run has left
    the active states (:func:`_settled`)."""

    def read() -> list[str]:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-D", "-P", "-j", job_id, "-o", "State"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    return _settled(read, lambda states: not states or states[-1].startswith(ACTIVE_STATES))


def _settled_new_jobs(before: dict[str, str]) -> dict[str, str]:
    """The jobs accounting knows that ``before`` did not, once none of them is active."""
    return _settled(
        lambda: {k: v for k, v in _jobs().items() if k not in before},
        lambda jobs: any(state.startswith(ACTIVE_STATES) for state in jobs.values()),
    )


def _table(out: str) -> str:
    assert "ijr multirun:" in out, out[-3000:]
    return out[out.rindex("ijr multirun: ") :]


def _counts(table: str, **counts: int) -> None:
    for column, count in counts.items():
        assert f"  {column:<10}{count:>5}" in table, table


def test_sweep_completes_and_a_relaunch_submits_nothing(runs_dir):
    args = ["-m", *tiny_overrides(runs_dir, "trainer.max_steps=8"), *SLURM_CPU]
    args.append("optim.lr=0.02,0.05,0.1,0.2")
    before = _jobs()
    proc = run_cli(*args, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    _counts(_table(out), completed=4, diverged=0, failed=0, skipped=0)
    new = _settled_new_jobs(before)
    assert len(new) == 4 and set(new.values()) == {"COMPLETED"}, new
    assert list(load_runs(runs_dir)["status"]) == ["completed"] * 4
    # the same command again: every run is complete, so no job is submitted
    proc = run_cli(*args, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "4 of 4 runs already completed" in out and "nothing to submit" in out
    _counts(_table(out), completed=0, failed=0, skipped=4)
    assert len(_jobs()) == len(before) + 4


def test_failing_point_and_a_cancelled_job_make_the_launcher_exit_1_with_the_table(runs_dir):
    # lr 0.05 completes, 1000 diverges, -1 is rejected at setup, 0.07 holds at step 2 until the
    # test cancels its job (SIGTERM, then SIGKILL: a job that ends without a result)
    hold = [
        "+callbacks.hold._target_=sweep_callbacks.HoldIfLr",
        "+callbacks.hold.lr=0.07",
        "+callbacks.hold.step=2",
        "+callbacks.hold.seconds=600",
    ]
    args = ["-m", *tiny_overrides(runs_dir, "trainer.max_steps=8"), *SLURM_CPU, *hold]
    args.append("optim.lr=0.05,1000,-1,0.07")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "ijr.train", *args]
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) as proc:
        deadline = time.time() + 300
        while not (held := list(runs_dir.glob("default/*/held"))) and time.time() < deadline:
            time.sleep(2)
        assert held, "the held job never reached step 2"
        job_id = held[0].read_text().strip()
        subprocess.run(["scancel", job_id], check=True)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "UncompletedJobError" not in out.split("ijr multirun: 4")[0]
    table = _table(out)
    _counts(table, completed=1, diverged=1, failed=2, skipped=0)
    assert "optim.lr must be a finite number" in table
    assert f"job {job_id} ended without a result (CANCELLED" in table, table
    assert str(held[0].parent) in table
    assert _history(job_id)[-1].startswith("CANCELLED")


def test_a_job_cut_by_its_time_limit_resumes_from_the_signal_checkpoint(runs_dir, tmp_path):
    """SLURM sends SIGUSR2 ``signal_delay_s`` before the 2-minute limit; ijr writes last.ckpt at
    that step (periodic checkpoints are off) and submitit requeues the job, which resumes from it.
    In the job's first run each step sleeps 0.25 s (an observer callback, outside the run key), so
    300 steps outlast the 60 s before the signal; the requeued run does not sleep and finishes.
    The metrics must equal those of the same run uninterrupted, byte for byte."""
    common = ("trainer.max_steps=300", "trainer.checkpoint_every_n_steps=null")
    reference = train(compose_cfg(*tiny_overrides(tmp_path / "reference", *common)))
    reference_csv = tmp_path / "reference" / "default" / reference["run_key"] / "metrics.csv"
    slow = ["+callbacks.slow._target_=sweep_callbacks.SleepPerStep", "+callbacks.slow.seconds=0.25"]
    slow.append("+callbacks.slow.first_attempt_only=true")
    limit = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=60"]
    limit.append("hydra.launcher.max_num_timeout=4")
    proc = run_cli(
        "-m", *tiny_overrides(runs_dir, *common), *SLURM_CPU, *limit, *slow, "seed=0", timeout=900
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    _counts(_table(out), completed=1, failed=0)
    (summary,) = load_runs(runs_dir).to_dict("records")
    assert summary["status"] == "completed" and summary["steps"] == 300
    run_dir = Path(summary["run_dir"])
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["resumed_from_step"] and 0 < resumed["resumed_from_step"] < 300, resumed
    logs = list((runs_dir / "default" / ".multirun" / ".submitit").glob("*/*_log.err"))
    job_id = logs[0].name.split("_log")[0].rsplit("_", 1)[0]
    history = _history(job_id)
    assert history == ["REQUEUED", "COMPLETED"], history
    assert any("SIGUSR2" in p.read_text() for p in logs)
    assert (run_dir / "metrics.csv").read_bytes() == reference_csv.read_bytes()


def test_make_fig5_through_slurm_writes_its_figures(tmp_path):
    data = tmp_path / "data"
    make_fake_cifar(data, n_train=160, n_test=32, seed=0)
    cut_down = [  # the quick profile cut to 4 steps on 160 fake images, tiny probes
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=10",
        "profile.max_steps=4",
        "profile.data_subset=160",
        "profile.probe_size=16",
        "data.test_subset=32",
        "data.physical_batch_size=32",
        "probes.every_n_steps=2",
        "probes.expensive_every_n_steps=2",
        "probes.physical_batch_size=16",
        "probes.sharpness.max_iter=3",
        "probes.jacobian.max_iter=3",
        "probes.rho_b_batches=2",
        "trainer.eval_every_n_steps=2",
    ]
    results = tmp_path / "results"
    command = ["make", "--no-print-directory", "fig5", "PROFILE=quick", "LAUNCHER=slurm"]
    command += [f"RUNS={tmp_path / 'runs'}", f"RESULTS={results}", f"DATA_ROOT={data}"]
    command += ["CIFAR_ARCHIVE=", f"OVERRIDES={' '.join(cut_down)}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count("submitted 3 job(s) (slurm)") == 2, out[-3000:]
    for stem in ("fig5_lr", "fig5_batch"):
        assert (results / "quick" / f"{stem}.png").stat().st_size > 10_000
