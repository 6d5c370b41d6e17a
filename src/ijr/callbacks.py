"""Training-loop callbacks that are not curvature probes: test evaluation and convergence, robust
test accuracy under PGD (adversarial training, Table 2), checkpointing (periodic and at a signal: SIGTERM, SIGINT,
SIGUSR1, SIGUSR2, ``SUBMITIT_PREEMPT_SIGNAL``), plain progress lines for non-interactive runs.

Every measurement at step t is taken at theta_t (after t updates): at ``on_train_start`` for the
first step of a (possibly resumed) run and at ``on_train_batch_end`` afterwards.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from ijr.metrics_log import log_metrics
from ijr.seeds import derive_seed


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
    """Write ``path`` through ``path.tmp`` (removed if the write fails, e.g. on a full disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        trainer.save_checkpoint(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


class Terminated(BaseException):
    """Training stopped by a signal; ``checkpointed`` says whether ``last.ckpt`` was written at
    the signal (the run resumes from there) or not (stopped while being set up: nothing to
    save). A ``BaseException`` like ``KeyboardInterrupt``, so that no library's ``except
    Exception`` (Hydra's instantiate, a callback) turns a stop into an ordinary error."""

    def __init__(self, message: str, signum: int | None = None, checkpointed: bool = False):
        super().__init__(message)
        self.signum = signum
        self.checkpointed = checkpointed


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def preempt_signal() -> int | None:
    """The signal ``SUBMITIT_PREEMPT_SIGNAL`` names (``USR2``, ``SIGUSR2`` or a number), if set."""
    raw = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return int(raw)
    name = raw.upper() if raw.upper().startswith("SIG") else "SIG" + raw.upper()
    if not hasattr(signal, name):
        raise ValueError(
            f"SUBMITIT_PREEMPT_SIGNAL={raw!r} is not a signal name; use e.g. USR2 or unset it"
        )
    return int(getattr(signal, name))


def caught_signals() -> tuple[int, ...]:
    """SIGTERM (kill, SLURM's final notice), SIGINT (Ctrl-C), SIGUSR1/SIGUSR2 (``scancel
    --signal``, submitit's time-limit and preemption notice) and ``SUBMITIT_PREEMPT_SIGNAL``."""
    sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2]
    extra = preempt_signal()
    return tuple(dict.fromkeys([int(s) for s in sigs] + ([extra] if extra else [])))


class SignalCheckpoint(pl.Callback):
    """Stop at a signal (any of :func:`caught_signals`) with a checkpoint taken at the signal.

    :meth:`install` replaces the handlers, remembering the previous ones. While training runs
    (from ``on_train_start``) the handler only records the signal; the step in progress finishes,
    ``last.ckpt`` is written and :class:`Terminated` is raised (``checkpointed=True``). Before that
    (the run being set up: nothing to save), or at a second signal, the handler raises
    :class:`Terminated` at once. :meth:`chain` then calls the handler that was there before
    (submitit's, which requeues the job), after the run recorded its status."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.signum: int | None = None
        self.deferring = False
        self.previous: dict[int, Any] = {}

    def install(self) -> SignalCheckpoint:
        for sig in caught_signals():
            try:
                self.previous[sig] = signal.signal(sig, self.handle)
            except (ValueError, OSError):  # not the main thread: leave signals to the caller
                pass
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def chain(self, signum: int | None) -> None:
        """Call the handler installed before ours for ``signum`` (if it is a Python callable
        other than Python's own Ctrl-C handler, whose KeyboardInterrupt would only hide the
        recorded stop)."""
        handler = self.previous.get(signum) if signum is not None else None
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, None)

    def handle(self, signum, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if not first:
            raise Terminated(
                f"terminated by signal {signum} ({signal_name(signum)}) again before the "
                "checkpoint: stopped at once; resume with the same command",
                signum,
            )
        if not self.deferring:
            raise Terminated(
                f"terminated by signal {signum} ({signal_name(signum)}) while the run was being "
                "set up; run the same command again",
                signum,
            )

    def on_train_start(self, trainer, pl_module):
        self.deferring = True
        self.on_train_batch_end(trainer, pl_module, None, None, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.signum is None:
            return
        if self.path is not None:
            save_checkpoint_atomic(trainer, self.path)
        saved = (
            "checkpoint written"
            if self.path is not None
            else "no checkpoint (trainer.checkpoint=false)"
        )
        raise Terminated(
            f"terminated by signal {self.signum} ({signal_name(self.signum)}) at step "
            f"{trainer.global_step}; {saved}, resume with the same command",
            self.signum,
            checkpointed=self.path is not None,
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
