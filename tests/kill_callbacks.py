"""Test-only Lightning callbacks that kill the training process at a given step (a real signal,
delivered to the process itself), so kill-and-resume tests are deterministic."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    def __init__(self, step: int, signum: int = int(signal.SIGKILL)) -> None:
        self.step = int(step)
        self.signum = int(signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) == self.step:
            os.kill(os.getpid(), self.signum)


class SignalAtSetup(pl.Callback):
    """Sends ``signum`` to this process while the trainer is being set up (before training
    starts): the "right at start-up" case."""

    def __init__(self, signum: int = int(signal.SIGTERM)) -> None:
        self.signum = int(signum)

    def setup(self, trainer, pl_module, stage):
        os.kill(os.getpid(), self.signum)


class DiskFullAtStep(pl.Callback):
    """At ``step``, leaves what an interrupted write on a full disk leaves (``last.ckpt.tmp``,
    an empty ``summary.json.tmp``) and raises ``OSError(ENOSPC)`` as the write would."""

    def __init__(self, step: int) -> None:
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) != self.step:
            return
        run = Path(trainer.default_root_dir)
        (run / "checkpoints").mkdir(exist_ok=True)
        (run / "checkpoints" / "last.ckpt.tmp").write_bytes(b"\0" * 4096)
        (run / "summary.json.tmp").write_text("")
        raise OSError(errno.ENOSPC, "No space left on device", str(run / "metrics.csv"))


class KillAt(pl.Callback):
    """SIGKILL at ``step`` from one of several points of the step: ``batch_start`` (before the
    update), ``batch_end`` (after the step's measurements and checkpoint) or
    ``save_checkpoint`` (while a checkpoint is being assembled)."""

    def __init__(self, step: int, hook: str = "batch_end") -> None:
        if hook not in ("batch_start", "batch_end", "save_checkpoint"):
            raise ValueError(f"unknown hook {hook!r}")
        self.step, self.hook = int(step), hook

    def _maybe(self, trainer, hook: str) -> None:
        if hook == self.hook and int(trainer.global_step) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._maybe(trainer, "batch_start")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._maybe(trainer, "batch_end")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self._maybe(trainer, "save_checkpoint")
