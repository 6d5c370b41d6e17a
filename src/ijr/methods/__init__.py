"""Training methods as LightningModules (manual optimization, one ``training_step`` = one update).

``build_module(cfg, model, datamodule, total_steps)`` builds the module named by ``cfg.method.name``;
``names()`` lists the registered methods.
"""

from __future__ import annotations

from ijr.methods.base import OptimConfig, ScheduleConfig, TrainingModule
from ijr.methods.ejr import EfficientEJR, EfficientEJRv2, ExplicitJacobianRegularization
from ijr.methods.penalties import GradientNormPenalty, InputJacobianRegularization
from ijr.methods.sam import ASAM, SAM

METHODS: dict[str, type[TrainingModule]] = {
    "sgd": TrainingModule,
    "ejr": ExplicitJacobianRegularization,  # eq. 51, double backprop
    "ejr_efficient": EfficientEJR,  # eqs. 11-13 / 53-54, two passes
    "ejr_v2": EfficientEJRv2,  # eq. 55, two passes
    "sam": SAM,  # Foret et al. 2021
    "asam": ASAM,  # Kwon et al. 2021
    "gnp": GradientNormPenalty,  # Smith et al. 2021, double backprop
    "input_jr": InputJacobianRegularization,  # Hoffman et al. 2019, double backprop
}


def names() -> list[str]:
    return sorted(METHODS)


def method_kwargs(cfg) -> dict:
    """Method-specific constructor arguments: every key of ``cfg.method`` except ``name``."""
    return {k: v for k, v in dict(cfg.method).items() if k != "name"}


def build_module(cfg, model, datamodule, total_steps: int) -> TrainingModule:
    name = cfg.method.name
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}'; valid methods: {', '.join(names())}")
    return METHODS[name](
        model,
        loss=cfg.loss.name,
        label_smoothing=float(cfg.loss.get("label_smoothing", 0.0)),
        optim=OptimConfig(**dict(cfg.optim)),
        schedule=ScheduleConfig(**dict(cfg.sched)),
        total_steps=total_steps,
        physical_batch_size=datamodule.physical_batch_size,
        seed=int(cfg.seed),
        divergence_loss=float(cfg.trainer.get("divergence_loss", 1e6)),
        log_every_n_steps=int(cfg.trainer.get("log_every_n_steps", 10)),
        steps_per_epoch=datamodule.steps_per_epoch,
        **method_kwargs(cfg),
    )


__all__ = ["METHODS", "OptimConfig", "ScheduleConfig", "TrainingModule", "build_module", "names"]
