"""Test-only Lightning callbacks that kill the training process at a given step (a real signal,
delivered to the process itself), so kill-and-resume tests are deterministic."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    def __init__(self, step: int, signum: int = int(signal.SIGKILL)) -> None:
        self.step = int(step)
        self.signum = int(signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) == self.step:
            os.kill(os.getpid(), self.signum)
