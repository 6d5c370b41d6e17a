"""The training LightningModule shared by every method.

All methods use Lightning's *manual optimization*: one ``training_step`` is one parameter update.
The gradient of the mean loss over the (logical) batch is accumulated over physical chunks of
``physical_batch_size`` examples with weights ``len(chunk) / len(batch)``, so mini-batch SGD and
full-batch GD (``data.batch_size=full``) run the same code and the update does not depend on the
chunk size (up to float summation order). Two-pass methods (SAM, ASAM, EJR variants) subclass
:class:`TrainingModule` and override :meth:`TrainingModule.compute_gradients`.

Methods register like models: ``@register_method("name")`` on the class puts it in
:data:`METHODS` (the names ``method=...`` accepts). A method declares

* ``Params``: the dataclass schema of its ``conf/method/<name>.yaml`` keys (defaults and checks,
  :mod:`ijr.schema`), whose fields :meth:`TrainingModule.set_params` validates and sets;
* ``computes_own_loss``: ``True`` when it differentiates a loss it builds itself (double
  backprop) instead of :meth:`TrainingModule.chunk_loss`; an adversary that wraps the loss
  (TRADES) cannot reach such a method and is refused when the module is built, and a method
  that does not declare it but skips :meth:`chunk_loss` is stopped at its first TRADES step
  (:meth:`ijr.methods.adversarial.TradesTerm.check_reached`).

Step convention (used by every logged metric): ``step`` = number of updates already applied.
``train/loss`` at step t is the loss of batch t at the parameters theta_t, i.e. *before* update t;
probes and test evaluations at step t are measured at theta_t too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ijr.metrics_log import log_metrics
from ijr.schema import SettingError, boolean, nonnegative_float, parse_settings, setting

LOSSES = ("cross_entropy", "mse")
SCHEDULES = ("constant", "multistep", "cosine")


def _finite_nonnegative(key: str, value) -> float:
    """A finite number >= 0, kept as given (int or float: the optimizer sees the same value)."""
    nonnegative_float(key, value)
    return value


def _momentum(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise SettingError(f"{key} must be in [0, 1), got {value}")
    return value


def _at_least_zero(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingError(f"{key} must be >= 0, got {value}")
    return value


@dataclass
class OptimConfig:
    """Base optimizer settings (torch.optim.SGD, eq. 49 with optional momentum / weight decay);
    the schema of ``conf/optim/`` (:mod:`ijr.schema`)."""

    lr: float = setting(0.01, _finite_nonnegative)
    momentum: float = setting(0.0, _momentum)
    weight_decay: float = setting(0.0, _at_least_zero)
    nesterov: bool = setting(False, boolean)

    @classmethod
    def parse(cls, raw) -> OptimConfig:
        return parse_settings(cls, raw, "optim")

    def cross_check(self) -> None:
        if self.nesterov and self.momentum == 0:
            raise SettingError("optim.nesterov=true needs optim.momentum > 0")

    def validate(self) -> None:
        parse_settings(type(self), vars(self), "optim")


def _schedule_name(key: str, value) -> str:
    if value not in SCHEDULES:
        raise SettingError(f"unknown sched '{value}'; valid: {', '.join(SCHEDULES)}")
    return value


def _milestones(key: str, value) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(m, (int, float)) and not isinstance(m, bool) for m in value
    ):
        raise SettingError(f"{key} must be a list of fractions of training, got {value!r}")
    return list(value)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule as a multiplier of ``optim.lr`` by step (Table 4); the schema of
    ``conf/sched/`` (each file holds the keys its schedule uses)."""

    name: str = setting("constant", _schedule_name)
    gamma: float = setting(0.2, _at_least_zero)
    milestones: list[float] = setting(check=_milestones, factory=lambda: [0.3, 0.6, 0.8])
    eta_min: float = setting(0.0, _at_least_zero)

    @classmethod
    def parse(cls, raw) -> ScheduleConfig:
        return parse_settings(cls, raw, "sched")

    def cross_check(self) -> None:
        if self.name == "multistep" and not all(0 < m < 1 for m in self.milestones):
            raise SettingError(
                f"sched.milestones are fractions of training in (0, 1), got {self.milestones}"
            )

    def validate(self) -> None:
        parse_settings(type(self), vars(self), "sched")


def lr_factor(schedule: ScheduleConfig, step: int, total_steps: int, base_lr: float) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based) of ``total_steps``."""
    if schedule.name == "constant":
        return 1.0
    if schedule.name == "multistep":
        passed = sum(step >= int(round(m * total_steps)) for m in schedule.milestones)
        return schedule.gamma**passed
    # cosine annealing from base_lr to eta_min over total_steps
    if base_lr == 0:
        return 1.0
    frac = min(step, total_steps) / max(total_steps, 1)
    lr = schedule.eta_min + 0.5 * (base_lr - schedule.eta_min) * (1 + math.cos(math.pi * frac))
    return lr / base_lr


def loss_function(name: str, label_smoothing: float = 0.0):
    """Mean loss over a batch: cross-entropy (l = -log p_y, with optional label smoothing) or
    MSE summed over outputs and averaged over examples ((f(x) - y)^2, paper 004)."""
    if name == "cross_entropy":
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"loss.label_smoothing must be in [0, 1), got {label_smoothing}")

        def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

        return cross_entropy
    if name == "mse":

        def mse(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return (logits - targets.reshape(logits.shape)).pow(2).sum(dim=-1).mean()

        return mse
    raise ValueError(f"unknown loss '{name}'; valid: {', '.join(LOSSES)}")


def smoothed_label_entropy(label_smoothing: float, num_classes: int) -> float:
    """H(y_alpha) of the smoothed one-hot label y_alpha = (1 - alpha) e_y + alpha / C: the minimum
    over logits of the smoothed cross-entropy, subtracted from the loss in paper 002's Figure 1
    ("cross entropy loss (with label entropies subtracted)"); 0 without smoothing."""
    if not 0 <= label_smoothing < 1 or num_classes < 1:
        raise ValueError(
            f"label entropy needs label_smoothing in [0, 1) and num_classes >= 1, got {label_smoothing}, {num_classes}"
        )
    rest = label_smoothing / num_classes
    top = 1.0 - label_smoothing + rest
    return 0.0 - sum(p * math.log(p) for p in (top, *([rest] * (num_classes - 1))) if p > 0)


def correct_count(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions: argmax for classification, sign for the +-1 MSE task,
    argmax against argmax for one-hot MSE targets."""
    if targets.dtype in (torch.int64, torch.int32):
        return (logits.argmax(dim=-1) == targets).sum()
    if logits.shape[-1] == 1:
        return (torch.sign(logits.reshape(-1)) == torch.sign(targets.reshape(-1))).sum()
    return (logits.argmax(dim=-1) == targets.argmax(dim=-1)).sum()


class Diverged(RuntimeError):
    """Raised inside training when the loss is non-finite or exceeds the divergence threshold."""


@dataclass
class NoParams:
    """``conf/method/sgd.yaml``: plain SGD has no method-specific keys."""


METHODS: dict[str, type[TrainingModule]] = {}


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`TrainingModule` subclass as ``method=<name>``."""

    def decorate(cls: type) -> type:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return decorate


@register_method("sgd")
class TrainingModule(pl.LightningModule):
    """Plain SGD / full-batch GD on a classifier (``method=sgd``); base of every method."""

    method_name: ClassVar[str] = "sgd"
    Params: ClassVar[type] = NoParams  # schema of conf/method/<name>.yaml (besides name)
    computes_own_loss: ClassVar[bool] = False  # True: never differentiates chunk_loss

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        optim: OptimConfig | None = None,
        schedule: ScheduleConfig | None = None,
        total_steps: int = 1,
        physical_batch_size: int | None = None,
        seed: int = 0,
        divergence_loss: float = 1e6,
        log_every_n_steps: int = 10,
        steps_per_epoch: int = 1,
        adversary=None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.loss_name = loss
        self.label_smoothing = label_smoothing
        self.loss_fn = loss_function(loss, label_smoothing)
        self.optim_cfg = optim or OptimConfig()
        self.optim_cfg.validate()
        self.schedule = schedule or ScheduleConfig()
        self.schedule.validate()
        if total_steps < 1:
            raise ValueError(f"total training steps must be >= 1, got {total_steps}")
        self.total_steps = int(total_steps)
        if physical_batch_size is not None and physical_batch_size < 1:
            raise ValueError(f"data.physical_batch_size must be >= 1, got {physical_batch_size}")
        self.physical_batch_size = physical_batch_size
        self.seed = int(seed)
        self.divergence_loss = float(divergence_loss)
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.adversary = adversary  # ijr.methods.adversarial.Adversary (AT / TRADES) or None
        self._loss_term = None  # this step's loss wrapper from the adversary (TRADES) or None

    def set_params(self, **given) -> None:
        """Validate the method's own settings against ``Params`` (:mod:`ijr.schema`, one-line
        errors naming ``method.<key>``) and set each as an attribute."""
        params = parse_settings(type(self).Params, given, "method")
        for key, value in vars(params).items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ model
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self):
        opt = torch.optim.SGD(
            self.model.parameters(),
            lr=self.optim_cfg.lr,
            momentum=self.optim_cfg.momentum,
            weight_decay=self.optim_cfg.weight_decay,
            nesterov=self.optim_cfg.nesterov,
        )
        base_lr = self.optim_cfg.lr
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: lr_factor(self.schedule, step, self.total_steps, base_lr)
        )
        return [opt], [sched]

    # ------------------------------------------------------------- gradients
    def chunks(self, x: torch.Tensor, y: torch.Tensor):
        """Physical chunks of a logical batch, each with its weight len(chunk)/len(batch)."""
        n = x.shape[0]
        size = self.physical_batch_size or n
        for start in range(0, n, size):
            xc, yc = x[start : start + size], y[start : start + size]
            yield xc, yc, xc.shape[0] / n

    def chunk_loss(self, logits: torch.Tensor, targets: torch.Tensor, start: int) -> torch.Tensor:
        """The training loss of the chunk whose first example is example ``start`` of the batch:
        ``loss_fn``, wrapped by the adversary's loss term this step (TRADES adds
        beta KL(p(x) || p(x_adv)), :class:`ijr.methods.adversarial.TradesTerm`)."""
        loss = self.loss_fn(logits, targets)
        if self._loss_term is not None:
            loss = self._loss_term(loss, logits, start)
        return loss

    def accumulate_loss_gradient(self, x: torch.Tensor, y: torch.Tensor, extra=None):
        """Add the gradient of the batch-mean :meth:`chunk_loss` (plus ``extra(logits, x, y)``, a
        per-chunk mean term, if given) to ``.grad``, chunk by chunk. Returns (mean loss, correct
        count) as detached tensors."""
        total_loss = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device, dtype=torch.long)
        start = 0
        for xc, yc, weight in self.chunks(x, y):
            logits = self.model(xc)
            loss = self.chunk_loss(logits, yc, start)
            start += xc.shape[0]
            objective = loss if extra is None else loss + extra(logits, xc, yc)
            self.backward_scaled(objective, weight)
            total_loss += loss.detach() * weight
            correct += correct_count(logits.detach(), yc)
        return total_loss, correct

    def backward_scaled(self, objective: torch.Tensor, weight: float = 1.0) -> None:
        """Accumulate d(weight * objective)/d(theta) into ``.grad`` (Lightning's manual_backward
        inside a Trainer, plain autograd when the module is used on its own)."""
        if self._trainer is None:
            (objective * weight).backward()
        else:
            self.manual_backward(objective * weight)

    def compute_gradients(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        """Fill ``.grad`` with the update direction for batch (x, y) at ``step``; return logs.
        Must include ``loss`` (batch-mean training loss at the current parameters) and
        ``correct``. Subclasses (two-pass methods) override this."""
        loss, correct = self.accumulate_loss_gradient(x, y)
        return {"loss": loss, "correct": correct}

    # ---------------------------------------------------------------- train
    def step_gradients(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        """:meth:`compute_gradients` for batch (x, y) at ``step``, composed with the adversary:
        AT replaces the batch by its attack, TRADES wraps :meth:`chunk_loss` for the step and
        checks afterwards that the wrapped loss reached every example."""
        if self.adversary is None:
            return self.compute_gradients(x, y, step)
        x_train, term = self.adversary.attack_step(self.model, x, y, step, self.chunks(x, y))
        self._loss_term = term
        try:
            logs = self.compute_gradients(x_train, y, step)
        finally:
            self._loss_term = None
        if term is not None:
            term.check_reached(self.method_name)
        return logs

    def training_step(self, batch, batch_idx):
        x, y = batch
        step = int(self.trainer.global_step)
        opt = self.optimizers()
        sched = self.lr_schedulers()
        opt.zero_grad(set_to_none=True)
        logs = self.step_gradients(x, y, step)
        loss = float(logs.pop("loss"))
        correct = logs.pop("correct")
        if not math.isfinite(loss) or loss > self.divergence_loss:
            raise Diverged(
                f"training loss {loss:.4g} at step {step} (threshold {self.divergence_loss:g})"
            )
        opt.step()
        sched.step()
        if step % self.log_every_n_steps == 0:
            metrics = {
                "train/loss": loss,
                "train/acc": float(correct) / x.shape[0],
                "train/lr": sched.get_last_lr()[0],
            }
            metrics.update({f"train/{k}": float(v) for k, v in logs.items()})
            log_metrics(self.trainer, metrics, step)
        self.last_train_loss = loss
        return None

    # ------------------------------------------------------------- evaluate
    @torch.no_grad()
    def evaluate(self, batches) -> tuple[float, float]:
        """Mean loss and accuracy over ``batches`` in eval mode; the train/eval flag is restored."""
        was_training = self.model.training
        self.model.eval()
        try:
            total, correct, n = 0.0, 0, 0
            for xb, yb in batches:
                logits = self.model(xb)
                total += float(self.loss_fn(logits, yb)) * xb.shape[0]
                correct += int(correct_count(logits, yb))
                n += xb.shape[0]
        finally:
            self.model.train(was_training)
        return total / max(n, 1), correct / max(n, 1)
