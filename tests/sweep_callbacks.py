"""Test-only Lightning callbacks for sweep and SLURM tests, chosen per sweep point by the learning
rate (a sweep axis), loaded by ``callbacks:`` in the jobs (observers: not in the run key)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytorch_lightning as pl


def _lr(trainer) -> float:
    return float(trainer.optimizers[0].param_groups[0]["lr"])


class KillIfLr(pl.Callback):
    """SIGKILL this process at ``step`` when the run's learning rate is ``lr`` (a job that dies
    without a result, as after a signal nobody handles)."""

    def __init__(self, lr: float, step: int) -> None:
        self.lr, self.step = float(lr), int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) == self.step and _lr(trainer) == self.lr:
            os.kill(os.getpid(), signal.SIGKILL)


class HoldIfLr(pl.Callback):
    """At ``step``, when the run's learning rate is ``lr``: write ``held`` (the SLURM job id, ``<array>_<task>``) in the
    run directory and sleep ``seconds``, so a test can act on a job known to be running."""

    def __init__(self, lr: float, step: int, seconds: float) -> None:
        self.lr, self.step, self.seconds = float(lr), int(step), float(seconds)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) == self.step and _lr(trainer) == self.lr:
            marker = Path(trainer.default_root_dir) / "held"
            array = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
            job = "_".join(array) if all(array) else os.environ.get("SLURM_JOB_ID", "")
            marker.write_text(job or str(os.getpid()))
            time.sleep(self.seconds)


class SleepPerStep(pl.Callback):
    """Sleep ``seconds`` after every step: a run long enough to meet a time limit, whose
    computation (and so its metrics) is that of the same run without this callback. With
    ``first_attempt_only``, only in a job's first run (SLURM_RESTART_COUNT unset or 0), so a
    requeued job finishes without meeting its limit again."""

    def __init__(self, seconds: float, first_attempt_only: bool = False) -> None:
        self.seconds = float(seconds)
        requeued = int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0
        self.active = not (first_attempt_only and requeued)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.active:
            time.sleep(self.seconds)
