"""Training-loop callbacks that are not curvature probes: test evaluation and convergence, robust
test accuracy under PGD (adversarial training, Table 2), checkpointing (periodic and on SIGTERM / SIGUSR1), plain progress lines for non-interactive runs.

Every measurement at step t is taken at theta_t (after t updates): at ``on_train_start`` for the
first step of a (possibly resumed) run and at ``on_train_batch_end`` afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from ijr.data.rng import derive_seed
from ijr.metrics_log import log_metrics


def _due(step: int, every: int | None) -> bool:
    return bool(every) and step % int(every) == 0


class EvaluateEvery(pl.Callback):
    """Test loss/accuracy every ``every_n_steps`` (and at the end); optionally the full training
    loss (``train_full/*``). With ``until_loss`` it stops training once the full training loss is
    below it (Setting 1's "until convergence"), checked every ``convergence_check_every`` steps."""

    def __init__(
        self, dm, every_n_steps=None, eval_train=False, until_loss=None, convergence_check_every=100
    ):
        self.dm = dm
        self.every = every_n_steps
        self.eval_train = eval_train
        self.until_loss = until_loss
        self.check_every = max(1, int(convergence_check_every))
        self.stop_reason: str | None = None
        self._last_eval_step: int | None = None

    def _evaluate(self, trainer, module, step: int) -> None:
        chunk = self.dm.physical_batch_size
        loss, acc = module.evaluate(self.dm.eval_batches("test", chunk))
        metrics = {"test/loss": loss, "test/acc": acc}
        if self.eval_train:
            tl, ta = module.evaluate(self.dm.eval_batches("train", chunk))
            metrics.update({"train_full/loss": tl, "train_full/acc": ta})
        log_metrics(trainer, metrics, step)
        self._last_eval_step = step

    def _maybe(self, trainer, module) -> None:
        step = int(trainer.global_step)
        if _due(step, self.every):
            self._evaluate(trainer, module, step)
        if self.until_loss is not None and step > 0 and step % self.check_every == 0:
            loss, acc = module.evaluate(self.dm.eval_batches("train", self.dm.physical_batch_size))
            log_metrics(trainer, {"train_full/loss": loss, "train_full/acc": acc}, step)
            if loss < float(self.until_loss):
                self.stop_reason = (
                    f"converged: train loss {loss:.3g} < {self.until_loss:g} at step {step}"
                )
                trainer.should_stop = True

    def on_train_start(self, trainer, pl_module):
        self._maybe(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._maybe(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        step = int(trainer.global_step)
        if self._last_eval_step != step:
            self._evaluate(trainer, pl_module, step)


class RobustEvaluate(pl.Callback):
    """Robust test accuracy against PGD-``adversary.eval_steps`` (PGD-20 in Table 2) at the end of
    training and every ``adversary.eval_every_n_steps``: ``test/robust_acc`` and
    ``test/robust_loss`` on the first ``adversary.eval_size`` test examples (all when null), with
    the model in eval mode and the training attack's eps and step size."""

    def __init__(self, dm, config, box, seed: int) -> None:
        self.dm, self.config, self.box, self.seed = dm, config, box, int(seed)
        self._last_step: int | None = None

    def _evaluate(self, trainer, module, step: int) -> None:
        from ijr.attacks import robust_accuracy

        cfg = self.config
        size = (
            self.dm.test_size
            if cfg.eval_size is None
            else min(int(cfg.eval_size), self.dm.test_size)
        )
        chunk = self.dm.physical_batch_size
        x, y = self.dm.test_x[:size], self.dm.test_y[:size]
        batches = [(x[i : i + chunk], y[i : i + chunk]) for i in range(0, size, chunk)]
        gen = torch.Generator(device="cpu").manual_seed(derive_seed("robust_eval", self.seed, step))
        acc, loss = robust_accuracy(
            module.model,
            batches,
            eps=float(cfg.eps),
            alpha=float(cfg.alpha),
            steps=int(cfg.eval_steps),
            box=self.box,
            generator=gen,
        )
        log_metrics(trainer, {"test/robust_acc": acc, "test/robust_loss": loss}, step)
        self._last_step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = int(trainer.global_step)
        if _due(step, self.config.eval_every_n_steps):
            self._evaluate(trainer, pl_module, step)

    def on_train_end(self, trainer, pl_module):
        step = int(trainer.global_step)
        if self._last_step != step:
            self._evaluate(trainer, pl_module, step)


def save_checkpoint_atomic(trainer: pl.Trainer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(str(tmp))
    os.replace(tmp, path)


class CheckpointEvery(pl.Callback):
    """``checkpoints/last.ckpt`` every n steps and at the end (written atomically)."""

    def __init__(self, path: Path, every_n_steps: int | None):
        self.path = Path(path)
        self.every = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if _due(int(trainer.global_step), self.every):
            save_checkpoint_atomic(trainer, self.path)

    def on_train_end(self, trainer, pl_module):
        save_checkpoint_atomic(trainer, self.path)


class Terminated(RuntimeError):
    """Training stopped by a signal after writing a checkpoint; the run can be resumed."""

    def __init__(self, message: str, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum


class SignalCheckpoint(pl.Callback):
    """On SIGTERM / SIGUSR1 (SLURM preemption, ``kill``): finish the current step, write
    ``last.ckpt`` and stop with :class:`Terminated` so the run is recorded and resumable."""

    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.signum: int | None = None

    def handle(self, signum, frame) -> None:
        self.signum = signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.signum is None:
            return
        if self.path is not None:
            save_checkpoint_atomic(trainer, self.path)
        raise Terminated(
            f"terminated by signal {self.signum} at step {trainer.global_step}", self.signum
        )


class PlainProgress(pl.Callback):
    """One log line every ~5% of training (for SLURM logs and pipes, where a bar is noise)."""

    def __init__(self, total_steps: int, lines: int = 20):
        self.total = int(total_steps)
        self.every = max(1, self.total // lines)
        self._t0 = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = int(trainer.global_step)
        if step % self.every and step != self.total:
            return
        last = {}
        for lg in trainer.loggers:
            last.update(getattr(lg, "last", {}) or {})
        parts = [f"step {step}/{self.total}"]
        for key in ("train/loss", "test/acc", "probe/sharpness"):
            if key in last:
                parts.append(f"{key} {last[key]:.4g}")
        parts.append(f"{time.time() - self._t0:.0f}s")
        print("ijr-train: " + "  ".join(parts), flush=True)
