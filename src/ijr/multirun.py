"""What a multirun did, run by run: the launchers of ``conf/hydra/launcher/`` (local,
submitit_local, slurm, slurm_cpu) use this module to

* drop the runs that already completed before anything is launched (a re-launch of a finished
  sweep submits nothing), by computing each job's run directory from its composed config exactly as
  ``ijr-train`` does (:func:`run_dir_for`);
* print ONE table at the end (:func:`format_table`): completed / diverged / failed / skipped, with
  the run directory and reason of every run that did not complete, and exit non-zero when a run
  failed. A diverged run is a result (the training loss blew up at that setting, which the paper's
  sweeps expect), not a failure.

A run's outcome is read from its ``summary.json``; a job that never wrote one (killed, cancelled, a
time limit without requeue) is ``failed`` with the launcher's reason.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ijr.rundir import RunDir

COLUMNS = ("completed", "diverged", "failed", "skipped")
NOTES = {
    "completed": "",
    "diverged": "a result (the loss blew up at that setting), not a failure",
    "failed": "fix the reason below, then run the same command again (it resumes them)",
    "skipped": "completed before this launch (not launched again), or running elsewhere",
}


@dataclass
class Job:
    """One point of the sweep: its Hydra overrides, job number and run directory."""

    overrides: list[str]
    index: int
    run_dir: Path | None
    status: str = ""  # one of COLUMNS once known
    reason: str = ""  # why it did not complete (or why it was skipped)
    log: str = ""  # the launcher's log of the job (submitit's stderr), if any


@dataclass
class Plan:
    """The jobs of one launch: those to launch and those skipped as already completed."""

    to_run: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)


def task_config(sweep_config: DictConfig) -> DictConfig:
    """The config the task function receives: the composed job config without its ``hydra`` node."""
    cfg = sweep_config.copy()
    with read_write(cfg), open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def run_dir_for(sweep_config: DictConfig) -> tuple[Path | None, bool]:
    """The run directory ``ijr-train`` writes for this job, and whether the run would skip as
    completed. Same steps as :func:`ijr.train.train` (profile caps, validation, the data caps that
    need the dataset's size), so the key is the one the job computes. A config that does not
    validate or whose data cannot load gets the directory ``ijr-train`` records its failure in."""
    from ijr.train import apply_profile, locate_run

    cfg = apply_profile(task_config(sweep_config))
    run, can_start = locate_run(cfg)  # the key includes the dataset's identity, as in train
    if run is None or not can_start:
        return (run.path if run else None), False
    summary = run.read_summary() or {}
    done = bool(cfg.get("resume", True)) and summary.get("status") == "completed"
    return run.path, done


def plan(load_sweep_config, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Plan:
    """Split the jobs into those to launch and those already completed (``load_sweep_config``
    composes one job's config from its overrides, as the launcher would)."""
    result = Plan()
    for offset, overrides in enumerate(job_overrides):
        run_dir, done = run_dir_for(load_sweep_config(list(overrides)))
        job = Job(list(overrides), initial_job_idx + offset, run_dir)
        if done:
            job.status, job.reason = "skipped", "completed before"
            result.skipped.append(job)
        else:
            result.to_run.append(job)
    if result.skipped:
        print(
            f"ijr multirun: {len(result.skipped)} of {len(job_overrides)} runs already completed,"
            f" not launched; {len(result.to_run)} to launch",
            flush=True,
        )
    return result


def _first_line(text: str) -> str:
    """A reason on one line: the first line of a message, the last of a job's traceback."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if len(lines) > 1 and "trace" in lines[0].lower():  # submitit's FailedJobError
        return f"{lines[0].split(' failed')[0]} failed: {lines[-1]}"
    return lines[0] if lines else ""


def settle(job: Job, error: BaseException | str | None = None) -> Job:
    """Set ``job.status`` from its summary.json (after the job ended); ``error`` is what the
    launcher saw go wrong (an exception from the job, a job that never finished)."""
    summary = (RunDir(job.run_dir).read_summary() if job.run_dir else None) or {}
    status = summary.get("status")
    if error is not None and status != "completed":
        job.status, job.reason = (
            "failed",
            _first_line(
                f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
            ),
        )
    elif status in ("completed", "diverged", "failed"):
        job.status, job.reason = status, _first_line(summary.get("error") or "")
    elif status == "running" and _locked_elsewhere(job.run_dir):
        job.status, job.reason = "skipped", "another process holds its lock (running elsewhere)"
    elif status == "running":
        job.status, job.reason = "failed", "summary.json still says running: the job was killed"
    else:
        job.status, job.reason = "failed", "no summary.json was written"
    return job


def _locked_elsewhere(run_dir: Path) -> bool:
    """Whether another process holds the run's lock (``ijr-train`` skips such a run)."""
    handle = RunDir(run_dir).try_lock()
    if handle is None:
        return True
    handle.close()
    return False


def format_table(jobs: Sequence[Job]) -> str:
    """The end-of-multirun table: counts per outcome, then one line per run that did not complete."""
    counts = {c: sum(j.status == c for j in jobs) for c in COLUMNS}
    lines = [f"ijr multirun: {len(jobs)} runs"]
    for column in COLUMNS:
        note = NOTES[column] if counts[column] and NOTES[column] else ""
        lines.append(f"  {column:<10}{counts[column]:>5}  {note}".rstrip())
    rows = [j for j in jobs if j.status in ("diverged", "failed") or j.reason.startswith("another")]
    if rows:
        lines.append("  not completed (status, run directory, reason):")
    for job in sorted(rows, key=lambda j: (COLUMNS.index(j.status), j.index)):
        where = str(job.run_dir) if job.run_dir else " ".join(job.overrides)
        lines.append(f"  {job.status:<10}{where}  {job.reason}".rstrip())
        if job.log and job.status == "failed":
            lines.append(f"  {'':<10}log: {job.log}")
    return "\n".join(lines)


def finish(jobs: Sequence[Job]) -> None:
    """Print the table; exit with status 1 when a run failed (diverged runs do not count)."""
    print(format_table(sorted(jobs, key=lambda j: j.index)), flush=True)
    failed = sum(j.status == "failed" for j in jobs)
    if failed:
        print(f"ijr multirun: {failed} run(s) failed: exit status 1", file=sys.stderr, flush=True)
        sys.exit(1)


def to_container(value):
    """Plain Python values of a (possibly OmegaConf) launcher parameter."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
