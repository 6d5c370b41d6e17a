"""``ijr-train``: a plain :func:`train` (config in, summary out) wrapped by ``@hydra.main``.

``train(cfg)`` owns the run directory (docs/design.md contract 1): it writes the resolved config,
``summary.json`` (``running`` first, always finalised), ``metrics.csv`` and
``checkpoints/last.ckpt``; it skips a completed run and resumes a killed one in the same
directory. It never raises for a diverged run (status ``diverged``); in a multirun it records a
failing run as ``failed`` and returns, so one bad run never stops a sweep.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from ijr.callbacks import (
    CheckpointEvery,
    EvaluateEvery,
    PlainProgress,
    SignalCheckpoint,
    Terminated,
    signal_name,
)
from ijr.claims.scale import apply_scale_overrides
from ijr.code_version import attempts_code
from ijr.data import build_datamodule
from ijr.methods import build_module, method_kwargs
from ijr.methods.adversarial import AdversaryConfig
from ijr.methods.base import Diverged, OptimConfig, ScheduleConfig
from ijr.metrics_log import LedgerInCheckpoint, RunCSVLogger
from ijr.models import build as build_model
from ijr.models import names as model_names
from ijr.rundir import RunDir, check_plain_name
from ijr.schema import SettingError
from ijr.trainer_config import TrainerConfig

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
log = logging.getLogger("ijr")


class ConfigError(SettingError):
    """A bad setting: reported as one line, exit code 2."""


# ----------------------------------------------------------------------------- config
def apply_profile(cfg: DictConfig) -> DictConfig:
    """Return a copy of ``cfg`` with the profile's step cap applied (``profile=quick`` shrinks
    it; ``profile=paper`` changes nothing). The training-set and probe-set sizes need the
    dataset's size and are applied by :func:`resolve_data_cap`. The returned config, after
    that, is what runs, what is hashed into the run key and what is saved."""
    cfg = apply_scale_overrides(cfg.copy())  # profile=cpu: the experiment's cpu_scale.overrides
    prof = cfg.get("profile") or {}
    with open_dict(cfg):
        cap = prof.get("max_steps")
        if cap is not None:
            if cfg.trainer.get("max_steps") is None or cfg.trainer.max_steps > cap:
                cfg.trainer.max_steps = int(cap)
    return cfg


def resolve_data_cap(cfg: DictConfig):
    """Apply ``profile.data_subset`` (a cap on the training-set size) to ``cfg.data.subset`` and
    ``profile.probe_size`` to ``cfg.probes.size`` (:func:`apply_probe_size`) in place and return
    the set-up datamodule. A dataset already smaller than the cap is used whole
    (digits under ``profile=quick``)."""
    cap = (cfg.get("profile") or {}).get("data_subset")
    subset = cfg.data.get("subset")
    if cap is not None and subset is not None and subset > cap:
        with open_dict(cfg):
            cfg.data.subset = int(cap)
    dm = build_datamodule(cfg.data, int(cfg.seed))
    dm.setup()
    if cap is not None and subset is None and dm.train_size > cap:
        with open_dict(cfg):
            cfg.data.subset = int(cap)
        dm = build_datamodule(cfg.data, int(cfg.seed))
        dm.setup()
    apply_probe_size(cfg, dm.train_size)
    return dm


def apply_probe_size(cfg: DictConfig, train_size: int) -> None:
    """Apply ``profile.probe_size`` to ``cfg.probes.size`` in place: a fraction (the paper's
    5-25 % of 50,000 images, meaningless on a 2,000-image quick subset) or ``null`` (the whole
    set) becomes ``profile.probe_size`` examples, an integer count is capped by it; never more
    than the training set."""
    cap = (cfg.get("profile") or {}).get("probe_size")
    probes = cfg.get("probes")
    if cap is None or probes is None or "size" not in probes:
        return
    size = probes.size
    if size is None or isinstance(size, float) or size > cap:
        with open_dict(cfg):
            cfg.probes.size = int(min(int(cap), int(train_size)))


def validate(cfg: DictConfig) -> None:
    """Cheap checks before anything is created; each failure is one clear line. The groups with
    a schema (``method``, ``adversary``, ``trainer``, ``optim``, ``sched``; ``data`` in
    :func:`resolve_data_cap`) are checked by :mod:`ijr.schema`."""
    if cfg.model.name not in model_names():
        raise ConfigError(
            f"unknown model '{cfg.model.name}'; valid models: {', '.join(model_names())}"
        )
    method_kwargs(cfg)
    if cfg.get("adversary") is not None:
        AdversaryConfig.parse(dict(cfg.adversary))
    TrainerConfig.parse(cfg.trainer)
    OptimConfig.parse(cfg.optim)
    ScheduleConfig.parse(cfg.sched)
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    for key in ("run_key", "experiment_name"):
        if cfg.get(key) is not None:
            check_plain_name(key, cfg.get(key))


def total_steps_for(cfg: DictConfig, steps_per_epoch: int) -> int:
    """Training length in optimizer updates: the smallest of max_steps and max_epochs (converted),
    or 100k as the paper's "until convergence (< 100k)" cap when only until_loss is set."""
    trainer = TrainerConfig.parse(cfg.trainer)
    limits = []
    if trainer.max_steps is not None:
        limits.append(int(trainer.max_steps))
    if trainer.max_epochs is not None:
        limits.append(int(math.ceil(trainer.max_epochs * steps_per_epoch)))
    return min(limits) if limits else 100_000


def _is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001 - no Hydra context (plain train(cfg) call)
        return False


def _task_overrides() -> list[str] | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return list(HydraConfig.get().overrides.task)
    except Exception:  # noqa: BLE001
        return None
    return None


def _quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import warnings

    for pattern in (
        ".*does not have many workers.*",
        ".*LightningModule.*has parameters that were not used.*",
        ".*You're resuming from a checkpoint that ended before the epoch ended.*",
        ".*The number of training batches.*",
        ".*Checkpoint directory.*exists and is not empty.*",
        ".*litmodels.*",
        ".*ModelSummary.*",
        ".*but have no `validation_step`.*",
        ".*LeafSpec.*is deprecated.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _configure_torch(trainer: TrainerConfig) -> None:
    allow_tf32 = bool(trainer.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    if trainer.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _make_loggers(cfg: DictConfig, run: RunDir, steps_per_epoch: int):
    csv_logger = RunCSVLogger(run.metrics_csv, steps_per_epoch)
    loggers = [csv_logger]
    if cfg.logger.name == "wandb":
        from ijr.wandb_logger import make_wandb_logger

        loggers.append(make_wandb_logger(cfg, run))
    elif cfg.logger.name != "csv":
        raise ConfigError(f"unknown logger '{cfg.logger.name}'; valid: csv, wandb")
    return csv_logger, loggers


def _robust_callbacks(cfg: DictConfig, dm, module):
    """PGD robust test accuracy for adversarially trained runs (adversary=at|trades)."""
    if module.adversary is None:
        return []
    from ijr.callbacks import RobustEvaluate

    return [RobustEvaluate(dm, module.adversary.config, module.adversary.box, int(cfg.seed))]


def _probe_callbacks(cfg: DictConfig, dm, run: RunDir):
    if cfg.get("probes") is None or cfg.probes.get("name", "none") == "none":
        return []
    from ijr.probes import build_callbacks

    return build_callbacks(cfg, dm, run)


def _extra_callbacks(cfg: DictConfig) -> list:
    """User callbacks from ``callbacks:`` (name -> ``_target_`` config). They are left out of the
    run key, so they must observe training, not change it."""
    from hydra.utils import instantiate

    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def _identity_or_location(cfg: DictConfig) -> str | None:
    """The dataset's identity for the key of a run that failed while being set up; where the
    files cannot be read, their location instead (two missing roots stay two failed runs)."""
    from ijr.data import data_identity, parse_data_config

    try:
        return data_identity(parse_data_config(cfg.data))
    except Exception:  # noqa: BLE001 - the data is what failed; key the failure by its location
        root = (cfg.get("data") or {}).get("root")
        return f"unreadable:{Path(str(root)).expanduser().absolute()}" if root else None


def locate_run(cfg: DictConfig) -> tuple[RunDir | None, bool]:
    """The run directory ``train`` uses for ``cfg`` (profile already applied, as by
    :func:`apply_profile`; ``cfg`` gets the data caps in place) and whether the run can start
    (``False``: it would be recorded as failed in that directory). ``None``: no directory at all
    (``run_key`` / ``experiment_name`` not a plain name). For launchers that skip completed
    runs before submitting them."""
    try:
        validate(cfg)
        return RunDir.for_config(cfg, resolve_data_cap(cfg).identity), True
    except Exception:  # noqa: BLE001 - the run records the failure itself
        try:
            return RunDir.for_config(cfg, _identity_or_location(cfg)), False
        except ValueError:
            return None, False


def _record_setup_failure(cfg: DictConfig, exc: Exception) -> dict:
    """In a multirun, a run that cannot even start (bad setting, missing data) still gets a run
    directory with status ``failed``, so the sweep goes on and reports show it (unless the
    directory itself cannot be named: a ``run_key`` that is not a plain name)."""
    error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    try:
        run = RunDir.for_config(cfg, _identity_or_location(cfg))
    except ValueError:
        print(f"ijr-train: run failed before starting: {error}", flush=True)
        return {"status": "failed", "run_key": None, "error": error}
    run.write_config(cfg, _task_overrides())
    print(f"ijr-train: run failed before starting: {error} ({run.path})", flush=True)
    return run.write_summary(
        status="failed",
        run_key=run.key,
        experiment=str(cfg.get("experiment_name") or "default"),
        profile=str((cfg.get("profile") or {}).get("name", "paper")),
        seed=int(cfg.get("seed", 0)) if isinstance(cfg.get("seed"), int) else None,
        error=error,
        stop_reason="failed",
        final={},
        markers={},
        steps=0,
        wall_time_s=0.0,
    )


def _want_progress_bar(trainer: TrainerConfig) -> bool:
    mode = trainer.progress_bar
    if mode == "auto":
        return sys.stderr.isatty()
    return bool(mode)


class RunDataError(ConfigError):
    """The run directory holds data that resuming could lose; nothing was changed."""


# ------------------------------------------------------------------------------ train
def train(cfg: DictConfig) -> dict:
    """Train one run described by ``cfg`` (the composed config of ``conf/train.yaml``) and
    return its final ``summary.json`` content (plus, for a run not trained, ``skipped``: why, and
    ``run_dir``).

    Signals (:func:`ijr.callbacks.caught_signals`) are caught from the start: during training
    the step finishes, ``last.ckpt`` is written, the status and reason are recorded, then the
    handler installed before ours (submitit's requeue) is called and :class:`Terminated` raised."""
    guard = SignalCheckpoint().install()
    try:
        summary = _train_guarded(cfg, guard)
        if guard.signum is not None:  # arrived while the run was being finalised
            raise Terminated(
                f"terminated by signal {guard.signum} ({signal_name(guard.signum)}) after the run "
                f"ended ({summary.get('status')}); nothing to resume",
                guard.signum,
            )
        return summary
    except Terminated as exc:
        guard.restore()
        guard.chain(exc.signum)
        raise
    finally:
        guard.restore()


def _train_guarded(cfg: DictConfig, guard: SignalCheckpoint) -> dict:
    multirun = _is_multirun()
    cfg = apply_profile(cfg)
    try:
        validate(cfg)
        dm = resolve_data_cap(cfg)
    except Terminated:
        raise
    except Exception as exc:
        if not multirun:
            raise
        return _record_setup_failure(cfg, exc)
    run = RunDir.for_config(cfg, dm.identity)
    lock = run.try_lock()
    if lock is None:
        print(f"ijr-train: another process is running {run.path}; skipping", flush=True)
        summary = run.read_summary() or {"status": "running", "run_key": run.key}
        return {**summary, "skipped": "another process is running it", "run_dir": str(run.path)}
    try:
        return _train_in(run, cfg, dm, guard)
    except RunDataError as exc:
        if not multirun:
            raise
        print(f"ijr-train: error: {exc}", flush=True)
        return {"status": "failed", "run_key": run.key, "error": str(exc)}
    finally:
        lock.close()


def _start_summary(run: RunDir, cfg: DictConfig) -> dict | None:
    """Decide from what the directory holds: a completed run is skipped (returns its summary
    with ``skipped``); data without a readable summary stops (:class:`RunDataError`); a run
    without a checkpoint starts over from an empty directory. Then records ``running``."""
    resume = bool(cfg.get("resume", True))
    previous = run.read_summary()
    run.remove_temp_files()  # left by a killed write; never a file that is read
    if resume and previous and previous.get("status") == "completed":
        print(f"ijr-train: already completed, skipping: {run.path}", flush=True)
        return {**previous, "skipped": "already completed", "run_dir": str(run.path)}
    if resume and previous is None and run.data_files():
        raise RunDataError(
            f"{run.summary_json} is missing or unreadable but the run holds "
            f"{', '.join(run.data_files())}; nothing was changed: restore summary.json, or "
            "rerun with resume=false to start the run over"
        )
    fresh = not resume or not run.checkpoint.exists()
    if fresh:
        run.clear()  # a restart from step 0 keeps nothing of an earlier attempt
    run.write_config(cfg, _task_overrides())
    run.write_summary(
        status="running",
        code=attempts_code(None if fresh else (previous or {}).get("code")),
        run_key=run.key,
        experiment=str(cfg.get("experiment_name") or "default"),
        profile=str(cfg.profile.name),
        seed=int(cfg.seed),
        tags=list(cfg.get("tags") or []),
        resumed_from_step=None,
        error=None,
        stop_reason=None,
    )
    return None


def _read_checkpoint(path: Path) -> tuple[int, dict | None]:
    """The ``global_step`` of a checkpoint and its metrics ledger
    (:meth:`ijr.metrics_log.MetricsCSV.ledger`); a file that cannot be read is one clear line."""
    from ijr.metrics_log import LEDGER_KEY

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return int(ckpt["global_step"]), ckpt.get(LEDGER_KEY)
    except Exception as exc:  # noqa: BLE001 - any failure to read it means the same to the user
        raise RunDataError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); delete it to start the run over from step 0"
        ) from None


def _callbacks(cfg: DictConfig, run: RunDir, dm, module, guard, total_steps: int) -> list:
    trainer = TrainerConfig.parse(cfg.trainer)
    callbacks = [
        EvaluateEvery(
            dm,
            every_n_steps=trainer.eval_every_n_steps,
            eval_train=trainer.eval_train,
            until_loss=trainer.until_loss,
            convergence_check_every=int(trainer.convergence_check_every),
        ),
        *_probe_callbacks(cfg, dm, run),
        *_robust_callbacks(cfg, dm, module),
    ]
    if trainer.checkpoint:
        callbacks.append(CheckpointEvery(run.checkpoint, trainer.checkpoint_every_n_steps))
    callbacks.extend(_extra_callbacks(cfg))
    guard.path = run.checkpoint if trainer.checkpoint else None
    callbacks.append(guard)
    if not _want_progress_bar(trainer):
        callbacks.append(PlainProgress(total_steps))
    return callbacks


def _stop_reason(callbacks: list) -> str:
    """Why training ended: the :class:`EvaluateEvery` callback's reason (``until_loss``
    reached), else the step limit."""
    evaluators = [cb for cb in callbacks if isinstance(cb, EvaluateEvery)]
    reason = getattr(evaluators[0], "stop_reason", None) if evaluators else None
    return reason or "max_steps"


def _make_trainer(cfg: DictConfig, run: RunDir, loggers, callbacks, total_steps: int):
    trainer = TrainerConfig.parse(cfg.trainer)
    return pl.Trainer(
        max_steps=total_steps,
        max_epochs=-1,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        precision=trainer.precision,
        logger=loggers,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=_want_progress_bar(trainer),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        log_every_n_steps=1,
        default_root_dir=str(run.path),
        use_distributed_sampler=False,
        deterministic=False,  # set by _configure_torch (warn-only for ops without a deterministic kernel)
    )


@dataclass
class RunState:
    """What :func:`_finalise` needs from a run that may stop anywhere: when this attempt started,
    the wall time of earlier attempts, the steps done, and the logger / trainer once built."""

    started: float
    previous_wall: float
    steps: int = 0
    csv_logger: Any = None
    trainer: Any = None


@dataclass
class Outcome:
    """How a run ended: ``status`` (completed / diverged / failed), the one-line ``error``,
    the ``stop_reason`` and, for a failure, the traceback written to ``error.log``."""

    status: str
    stop_reason: str
    error: str | None = None
    trace: str | None = field(default=None, repr=False)


def _begin(run: RunDir, cfg: DictConfig):
    """Record ``running`` with the caught signals blocked. Returns (the summary of a skipped
    run, None, None, None) with the signal mask restored, or (None, the run state, the
    checkpoint to resume from, the mask to restore) with the signals still blocked: the caller
    restores the mask inside its ``try``, so a signal pending since is recorded like any other."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _blockable())
    try:
        previous = run.read_summary()
        skipped = _start_summary(run, cfg)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    if skipped is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return skipped, None, None, None
    resume = bool(cfg.get("resume", True))
    ckpt = run.checkpoint if (resume and run.checkpoint.exists()) else None
    previous_wall = float((previous or {}).get("wall_time_s") or 0.0) if ckpt else 0.0
    return None, RunState(started=time.time(), previous_wall=previous_wall), ckpt, mask


def _train_in(run: RunDir, cfg: DictConfig, dm, guard: SignalCheckpoint) -> dict:
    """Train in ``run`` (locked by the caller) and record the outcome on every exit path:
    a signal (:class:`Terminated`, re-raised), divergence, any other failure (re-raised unless
    in a multirun)."""
    skipped, state, ckpt, mask = _begin(run, cfg)
    if skipped is not None:
        return skipped
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal pending since is handled here
        _quiet_lightning()
        _configure_torch(TrainerConfig.parse(cfg.trainer))
        return _fit(run, cfg, dm, guard, ckpt, state)
    except Terminated as exc:
        reason = f"signal {signal_name(exc.signum)}" if exc.signum else "signal"
        print(f"ijr-train: {exc}", flush=True)
        _finalise(run, cfg, state, Outcome("failed", reason, str(exc)))
        raise
    except Diverged as exc:
        print(f"ijr-train: diverged: {exc}", flush=True)
        return _finalise(run, cfg, state, Outcome("diverged", "diverged", str(exc)))
    except BaseException as exc:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        _finalise(run, cfg, state, Outcome("failed", "failed", error, traceback.format_exc()))
        if not _is_multirun() or not isinstance(exc, Exception):
            raise
        print(f"ijr-train: run failed: {error} (traceback in {run.path / 'error.log'})", flush=True)
        return run.read_summary() or {}


def _fit(run: RunDir, cfg: DictConfig, dm, guard, ckpt: Path | None, state: RunState) -> dict:
    pl.seed_everything(int(cfg.seed), workers=False, verbose=False)
    model = build_model(
        cfg.model.name, dm.num_classes, tuple(dm.in_shape), **(cfg.model.get("kwargs") or {})
    )
    total_steps = total_steps_for(cfg, dm.steps_per_epoch)
    module = build_module(cfg, model, dm, total_steps)
    csv_logger, loggers = _make_loggers(cfg, run, dm.steps_per_epoch)
    state.csv_logger = csv_logger
    if ckpt is not None:
        resume_step, ledger = _read_checkpoint(ckpt)
        state.steps = resume_step
        csv_logger.csv.truncate_from(resume_step, ledger)
        run.write_summary(status="running", resumed_from_step=resume_step)
        print(f"ijr-train: resuming {run.path} from step {resume_step}", flush=True)
    callbacks = _callbacks(cfg, run, dm, module, guard, total_steps)
    callbacks.append(LedgerInCheckpoint(csv_logger.csv))
    trainer = _make_trainer(cfg, run, loggers, callbacks, total_steps)
    state.trainer = trainer
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
    return _finalise(run, cfg, state, Outcome("completed", _stop_reason(callbacks)))


def _collect_final(state: RunState, status: str) -> tuple[dict, dict, str | None]:
    """The last logged metrics and the callbacks' markers of the run; the loggers are closed.
    Also an error if metrics.csv could not be flushed."""
    final, markers, flush_error = {}, {}, None
    if state.csv_logger is not None:
        try:
            state.csv_logger.csv.flush()
        except OSError as exc:
            flush_error = f"{type(exc).__name__}: {exc}"
        final = dict(state.csv_logger.last)
    if state.trainer is not None:
        state.steps = int(state.trainer.global_step)
        for cb in state.trainer.callbacks:
            markers.update(getattr(cb, "markers", {}) or {})
        for lg in state.trainer.loggers:
            if lg is not state.csv_logger:
                try:
                    lg.finalize(status)
                except Exception:  # noqa: BLE001
                    pass
    return final, markers, flush_error


def _finalise(run: RunDir, cfg: DictConfig, state: RunState, outcome: Outcome) -> dict:
    """Record the final status on every exit path: temporary files go first (on a full disk
    they hold the space the status needs), then error.log, then summary.json."""
    guard_deferred = signal.pthread_sigmask(signal.SIG_BLOCK, _blockable())
    try:
        run.remove_temp_files()
        final, markers, flush_error = _collect_final(state, outcome.status)
        if cfg.logger.name == "wandb":
            from ijr.wandb_logger import finish_wandb

            finish_wandb(1 if outcome.status == "failed" else 0)
        run.remove_temp_files()
        if outcome.trace is not None:
            try:
                (run.path / "error.log").write_text(outcome.trace)
            except OSError:
                pass  # the summary below still names the error
        return run.write_summary(
            status=outcome.status,
            error=outcome.error or flush_error,
            final=final,
            markers=markers,
            steps=int(state.steps or 0),
            stop_reason=outcome.stop_reason,
            wall_time_s=round(state.previous_wall + time.time() - state.started, 3),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, guard_deferred)


def _blockable() -> set[int]:
    from ijr.callbacks import caught_signals

    return set(caught_signals())


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _existing_files(run_dir: Path) -> str:
    names = [n for n in ("metrics.csv", "summary.json") if (run_dir / n).exists()]
    return f" ({', '.join(names)})" if names else ""


# ------------------------------------------------------------------------------- CLI
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _hydra_entry(cfg: DictConfig) -> None:
    try:
        summary = train(cfg)
    except Terminated as exc:
        print(f"ijr-train: stopped: {exc}", file=sys.stderr, flush=True)
        sys.exit(128 + (exc.signum or 15))
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"ijr-train: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - one line; the traceback is in the run directory
        message = f"{type(exc).__name__}: {_one_line(exc)}"
        print(f"ijr-train: run failed: {message}", file=sys.stderr, flush=True)
        sys.exit(1)
    if summary.get("run_key") is None:
        print(f"ijr-train: failed: {summary.get('error')}", flush=True)
        return
    run_dir = summary.get("run_dir") or (  # a skipped run names its directory (a record
        # restored under today's key keeps the key it was made under in its summary)
        Path(cfg.paths.runs) / str(cfg.get("experiment_name") or "default") / summary["run_key"]
    )
    if summary.get("skipped"):
        print(f"ijr-train: skipped ({summary['skipped']}): {run_dir}", flush=True)
        return
    print(f"ijr-train: {summary['status']}: {run_dir}{_existing_files(run_dir)}", flush=True)


def main() -> None:
    """Console entry point ``ijr-train``: the overrides are checked first (one line and exit 2
    for an unknown choice or key, :mod:`ijr.overrides`), then Hydra runs :func:`train`."""
    from ijr.overrides import check_overrides

    try:
        problem = check_overrides(sys.argv[1:], CONF_DIR)
    except Exception as exc:  # noqa: BLE001 - a config that does not compose: one line
        problem = f"the config does not compose: {' '.join(str(exc).split())}"
    if problem:
        print(f"ijr-train: error: {problem}", file=sys.stderr, flush=True)
        sys.exit(2)
    _hydra_entry()


if __name__ == "__main__":
    # `python -m ijr.train`: run the importable module's copy, so launchers that pickle the task
    # (submitit) refer to ijr.train._hydra_entry instead of pickling this __main__ module by value.
    from ijr.train import main as _main

    _main()
