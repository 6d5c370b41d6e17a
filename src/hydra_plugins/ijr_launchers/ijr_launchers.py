"""ijr's multirun launchers: Hydra's basic launcher and hydra-submitit-launcher's local and SLURM
launchers, each with two additions (:mod:`ijr.multirun`):

* runs that already completed are dropped before anything is launched or submitted;
* at the end, one table (completed / diverged / failed / skipped, the directories of the runs that
  did not complete) and exit status 1 when a run failed. A job that ends without a result (a
  signal without requeue, ``scancel``, a time limit past ``max_num_timeout``) is a failed row, not
  an ``UncompletedJobError`` traceback.

They live in ``hydra_plugins`` because Hydra instantiates launchers only from that namespace.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf

from ijr import multirun


def _plan(launcher, job_overrides, initial_job_idx) -> multirun.Plan:
    def load(overrides):
        return launcher.hydra_context.config_loader.load_sweep_config(launcher.config, overrides)

    return multirun.plan(load, job_overrides, initial_job_idx)


def _error_of(ret: JobReturn) -> BaseException | None:
    return ret._return_value if ret.status == JobStatus.FAILED else None


class LocalLauncher(BasicLauncher):
    """The jobs one after another in this process (Hydra's basic launcher), completed ones skipped."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        todo = _plan(self, job_overrides, initial_job_idx)
        returns: list[JobReturn] = []
        for position, job in enumerate(todo.to_run):
            try:
                (ret,) = super().launch([job.overrides], job.index)
            except BaseException as exc:  # a signal or Ctrl-C stops the sweep: say where it stood
                multirun.settle(job, f"stopped: {type(exc).__name__} {exc}")
                for rest in todo.to_run[position + 1 :]:
                    rest.status, rest.reason = "failed", "not run: the sweep was stopped"
                print(multirun.format_table(todo.skipped + todo.to_run), flush=True)
                raise
            multirun.settle(job, _error_of(ret))
            if ret.status == JobStatus.COMPLETED:
                returns.append(ret)
        multirun.finish(todo.skipped + todo.to_run)
        return returns


class _SubmititMixin:
    """Submission of the jobs still to run as one array; every job waited for, none raising."""

    _EXECUTOR = "abstract"

    def _executor(self):
        import submitit

        params = {key: multirun.to_container(value) for key, value in self.params.items()}
        folder = params.pop("submitit_folder")
        init = {}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=folder, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()}
        )
        return executor

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        todo = _plan(self, job_overrides, initial_job_idx)
        if not todo.to_run:
            print("ijr multirun: nothing to submit", flush=True)
            multirun.finish(todo.skipped)
            return []
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        arguments = [
            (
                j.overrides,
                "hydra.sweep.dir",
                j.index,
                f"job_id_for_{j.index}",
                Singleton.get_state(),
            )
            for j in todo.to_run
        ]
        for job in todo.to_run:
            print(f"ijr multirun: #{job.index} {' '.join(filter_overrides(job.overrides))}")
        handles = self._executor().map_array(self, *zip(*arguments, strict=True))
        print(
            f"ijr multirun: submitted {len(handles)} job(s) ({self._EXECUTOR}), first id"
            f" {handles[0].job_id}; logs in {handles[0].paths.folder}",
            flush=True,
        )
        returns = [
            self._wait(job, handle) for job, handle in zip(todo.to_run, handles, strict=True)
        ]
        multirun.finish(todo.skipped + todo.to_run)
        return [r for r in returns if r is not None and r.status == JobStatus.COMPLETED]

    @staticmethod
    def _wait(job: multirun.Job, handle) -> JobReturn | None:
        job.log = str(handle.paths.stderr)
        from submitit.core.utils import UncompletedJobError

        try:
            ret = handle.results()[0]
        except UncompletedJobError:  # killed, cancelled, or a time limit without requeue
            multirun.settle(job, f"job {handle.job_id} ended without a result ({handle.state})")
            return None
        except Exception as exc:  # noqa: BLE001 - raised in the job outside the task (submitit)
            multirun.settle(job, f"job {handle.job_id}: {exc}")
            return None
        multirun.settle(job, _error_of(ret))
        return ret


class SubmititLocalLauncher(_SubmititMixin, BaseSubmititLauncher):
    """Local subprocesses through submitit: the same job machinery as SLURM on this machine."""

    _EXECUTOR = "local"


class SlurmLauncher(_SubmititMixin, BaseSubmititLauncher):
    """One SLURM array per multirun through submitit (needs accounting: ``sacct``)."""

    _EXECUTOR = "slurm"
