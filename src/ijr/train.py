"""``ijr-train``: a plain :func:`train` (config in, summary out) wrapped by ``@hydra.main``.

``train(cfg)`` owns the run directory (DESIGN.md contract 1): it writes the resolved config,
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
from pathlib import Path

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
)
from ijr.claims.scale import apply_scale_overrides
from ijr.data import build_datamodule
from ijr.methods import build_module
from ijr.methods import names as method_names
from ijr.methods.base import Diverged
from ijr.metrics_log import RunCSVLogger
from ijr.models import build as build_model
from ijr.models import names as model_names
from ijr.rundir import RunDir

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
log = logging.getLogger("ijr")


class ConfigError(ValueError):
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
    """Cheap checks before anything is created; each failure is one clear line."""
    if cfg.model.name not in model_names():
        raise ConfigError(
            f"unknown model '{cfg.model.name}'; valid models: {', '.join(model_names())}"
        )
    if cfg.method.name not in method_names():
        raise ConfigError(
            f"unknown method '{cfg.method.name}'; valid methods: {', '.join(method_names())}"
        )
    lr = cfg.optim.lr
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ConfigError(f"optim.lr must be a finite number >= 0, got {lr}")
    t = cfg.trainer
    if t.get("max_steps") is None and t.get("max_epochs") is None and t.get("until_loss") is None:
        raise ConfigError(
            "no stopping criterion: set trainer.max_steps, trainer.max_epochs or trainer.until_loss"
        )
    for key in ("max_steps", "max_epochs"):
        if t.get(key) is not None and t[key] < 1:
            raise ConfigError(f"trainer.{key} must be >= 1 (or null), got {t[key]}")


def total_steps_for(cfg: DictConfig, steps_per_epoch: int) -> int:
    """Training length in optimizer updates: the smallest of max_steps and max_epochs (converted),
    or 100k as the paper's "until convergence (< 100k)" cap when only until_loss is set."""
    limits = []
    if cfg.trainer.get("max_steps") is not None:
        limits.append(int(cfg.trainer.max_steps))
    if cfg.trainer.get("max_epochs") is not None:
        limits.append(int(math.ceil(cfg.trainer.max_epochs * steps_per_epoch)))
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


def _configure_torch(cfg: DictConfig) -> None:
    allow_tf32 = bool(cfg.trainer.get("allow_tf32", False))
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    if cfg.trainer.get("deterministic", True):
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


def _record_setup_failure(cfg: DictConfig, exc: Exception) -> dict:
    """In a multirun, a run that cannot even start (bad setting, missing data) still gets a run
    directory with status ``failed``, so the sweep goes on and reports show it."""
    run = RunDir.for_config(cfg, _identity_or_location(cfg))
    run.write_config(cfg, _task_overrides())
    error = f"{type(exc).__name__}: {exc}"
    print(f"ijr-train: run failed before starting: {error} ({run.path})", flush=True)
    return run.write_summary(
        status="failed",
        run_key=run.key,
        experiment=str(cfg.get("experiment_name") or "default"),
        profile=str((cfg.get("profile") or {}).get("name", "paper")),
        seed=int(cfg.get("seed", 0)),
        error=error,
        final={},
        markers={},
        steps=0,
        wall_time_s=0.0,
    )


def _want_progress_bar(cfg: DictConfig) -> bool:
    mode = cfg.trainer.get("progress_bar", "auto")
    if mode == "auto":
        return sys.stderr.isatty()
    return bool(mode)


# ------------------------------------------------------------------------------ train
def train(cfg: DictConfig) -> dict:
    """Train one run described by ``cfg`` (the composed config of ``conf/train.yaml``) and
    return its final ``summary.json`` content."""
    multirun = _is_multirun()
    cfg = apply_profile(cfg)
    try:
        validate(cfg)
        dm = resolve_data_cap(cfg)
    except Exception as exc:
        if not multirun:
            raise
        return _record_setup_failure(cfg, exc)
    run = RunDir.for_config(cfg, dm.identity)
    lock = run.try_lock()
    if lock is None:
        print(f"ijr-train: another process is running {run.path}; skipping", flush=True)
        return run.read_summary() or {"status": "running", "run_key": run.key}
    try:
        return _train_in(run, cfg, dm, multirun)
    finally:
        lock.close()


def _train_in(run: RunDir, cfg: DictConfig, dm, multirun: bool) -> dict:
    previous = run.read_summary()
    if cfg.get("resume", True) and previous and previous.get("status") == "completed":
        print(f"ijr-train: already completed, skipping: {run.path}", flush=True)
        return previous
    if not cfg.get("resume", True):
        run.clear()
    run.write_config(cfg, _task_overrides())
    ckpt = run.checkpoint if (cfg.get("resume", True) and run.checkpoint.exists()) else None
    started = time.time()
    previous_wall = float((previous or {}).get("wall_time_s") or 0.0) if ckpt else 0.0
    run.write_summary(
        status="running",
        run_key=run.key,
        experiment=str(cfg.get("experiment_name") or "default"),
        profile=str(cfg.profile.name),
        seed=int(cfg.seed),
        tags=list(cfg.get("tags") or []),
        resumed_from_step=None,
        error=None,
    )
    _quiet_lightning()
    _configure_torch(cfg)
    status, error, csv_logger, trainer, module = "failed", None, None, None, None
    stop_reason = None
    terminated = None
    old_handlers = {}
    try:
        pl.seed_everything(int(cfg.seed), workers=False, verbose=False)
        model = build_model(
            cfg.model.name, dm.num_classes, tuple(dm.in_shape), **(cfg.model.get("kwargs") or {})
        )
        total_steps = total_steps_for(cfg, dm.steps_per_epoch)
        module = build_module(cfg, model, dm, total_steps)
        csv_logger, loggers = _make_loggers(cfg, run, dm.steps_per_epoch)
        resume_step = None
        if ckpt is not None:
            resume_step = int(
                torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
            )
            csv_logger.csv.truncate_from(resume_step)
            run.write_summary(status="running", resumed_from_step=resume_step)
            print(f"ijr-train: resuming {run.path} from step {resume_step}", flush=True)
        signal_cb = SignalCheckpoint(
            run.checkpoint if cfg.trainer.get("checkpoint", True) else None
        )
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                old_handlers[sig] = signal.signal(sig, signal_cb.handle)
            except (ValueError, OSError):  # not the main thread
                pass
        callbacks = [
            EvaluateEvery(
                dm,
                every_n_steps=cfg.trainer.get("eval_every_n_steps"),
                eval_train=bool(cfg.trainer.get("eval_train", False)),
                until_loss=cfg.trainer.get("until_loss"),
                convergence_check_every=int(cfg.trainer.get("convergence_check_every", 100)),
            ),
            *_probe_callbacks(cfg, dm, run),
            *_robust_callbacks(cfg, dm, module),
        ]
        if cfg.trainer.get("checkpoint", True):
            callbacks.append(
                CheckpointEvery(run.checkpoint, cfg.trainer.get("checkpoint_every_n_steps"))
            )
        callbacks.extend(_extra_callbacks(cfg))
        callbacks.append(signal_cb)
        progress_bar = _want_progress_bar(cfg)
        if not progress_bar:
            callbacks.append(PlainProgress(total_steps))
        trainer = pl.Trainer(
            max_steps=total_steps,
            max_epochs=-1,
            accelerator=cfg.trainer.get("accelerator", "auto"),
            devices=cfg.trainer.get("devices", 1),
            precision=cfg.trainer.get("precision", "32-true"),
            logger=loggers,
            callbacks=callbacks,
            enable_checkpointing=False,
            enable_progress_bar=progress_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            log_every_n_steps=1,
            default_root_dir=str(run.path),
            use_distributed_sampler=False,
            deterministic=False,  # set by _configure_torch (warn-only for ops without a deterministic kernel)
        )
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
        status = "completed"
        stop_reason = getattr(callbacks[0], "stop_reason", None) or "max_steps"
    except Diverged as exc:
        status, error = "diverged", str(exc)
        print(f"ijr-train: diverged: {exc}", flush=True)
    except Terminated as exc:
        status, error = "failed", str(exc)
        print(f"ijr-train: {exc}; resume with the same command", flush=True)
        terminated = exc
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised outside multiruns
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        (run.path / "error.log").write_text(traceback.format_exc())
        if not multirun:
            raise
        print(f"ijr-train: run failed: {error} (traceback in {run.path / 'error.log'})", flush=True)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        summary = _finalise(
            run,
            cfg,
            status,
            error,
            csv_logger,
            trainer,
            module,
            started,
            previous_wall,
            stop_reason,
        )
    if terminated is not None:
        raise terminated  # a signalled process stops (a local sweep too); the run resumes later
    return summary


def _finalise(
    run, cfg, status, error, csv_logger, trainer, module, started, previous_wall, stop_reason
) -> dict:
    final, markers, steps = {}, {}, None
    if csv_logger is not None:
        csv_logger.csv.flush()
        final = dict(csv_logger.last)
    if trainer is not None:
        steps = int(trainer.global_step)
        for cb in trainer.callbacks:
            markers.update(getattr(cb, "markers", {}) or {})
        for lg in trainer.loggers:
            if lg is not csv_logger:
                try:
                    lg.finalize(status)
                except Exception:  # noqa: BLE001
                    pass
    if cfg.logger.name == "wandb":
        from ijr.wandb_logger import finish_wandb

        finish_wandb(1 if status == "failed" else 0)
    return run.write_summary(
        status=status,
        error=error,
        final=final,
        markers=markers,
        steps=steps,
        stop_reason=stop_reason if status == "completed" else status,
        wall_time_s=round(previous_wall + time.time() - started, 3),
    )


# ------------------------------------------------------------------------------- CLI
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _hydra_entry(cfg: DictConfig) -> None:
    try:
        summary = train(cfg)
    except Terminated as exc:
        print(f"ijr-train: stopped: {exc}", file=sys.stderr, flush=True)
        sys.exit(128 + (exc.signum or 15))
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"ijr-train: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - one line; the traceback is in the run directory
        print(f"ijr-train: run failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    run_dir = (
        Path(cfg.paths.runs) / str(cfg.get("experiment_name") or "default") / summary["run_key"]
    )
    print(f"ijr-train: {summary['status']}: {run_dir} (metrics.csv, summary.json)", flush=True)


def main() -> None:
    """Console entry point ``ijr-train``."""
    _hydra_entry()


if __name__ == "__main__":
    # `python -m ijr.train`: run the importable module's copy, so launchers that pickle the task
    # (submitit) refer to ijr.train._hydra_entry instead of pickling this __main__ module by value.
    from ijr.train import main as _main

    _main()
