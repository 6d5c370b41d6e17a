"""Training methods as LightningModules (manual optimization, one ``training_step`` = one update).

``build_module(cfg, model, datamodule, total_steps)`` builds the module named by ``cfg.method.name``;
``names()`` lists the registered methods.
"""

from __future__ import annotations

from ijr.attacks import PixelBox
from ijr.methods.adversarial import Adversary, AdversaryConfig
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


# Methods that differentiate their own loss (double backprop), not accumulate_loss_gradient's:
# TRADES' KL term would not reach them.
OWN_LOSS_METHODS = ("ejr", "gnp", "input_jr")


def build_adversary(cfg, datamodule) -> Adversary | None:
    """The training attack of ``cfg.adversary`` (None for ``adversary=none`` or no such group)."""
    raw = cfg.get("adversary")
    if raw is None or raw.get("name", "none") == "none":
        return None
    config = AdversaryConfig(**dict(raw))
    config.validate()
    if cfg.data.name == "synthetic":
        raise ValueError(
            "adversarial training needs images with pixels in [0, 1] (its threat model); data=synthetic has unbounded inputs"
        )
    if cfg.loss.name != "cross_entropy" or datamodule.target_kind != "index":
        raise ValueError("adversarial training needs loss=cross_entropy with class-index targets")
    if config.name == "trades" and cfg.method.name in OWN_LOSS_METHODS:
        raise ValueError(
            f"adversary=trades cannot be combined with method={cfg.method.name} (it differentiates its own loss); "
            f"use one of {', '.join(n for n in names() if n not in OWN_LOSS_METHODS)}"
        )
    return Adversary(config, pixel_box(datamodule), int(cfg.seed))


def pixel_box(datamodule) -> PixelBox:
    """The [0, 1] pixel cube in the datamodule's standardised coordinates."""
    return PixelBox(
        tuple(float(v) for v in datamodule.channel_mean),
        tuple(float(v) for v in datamodule.channel_std),
    )


def build_module(cfg, model, datamodule, total_steps: int) -> TrainingModule:
    name = cfg.method.name
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}'; valid methods: {', '.join(names())}")
    adversary = build_adversary(cfg, datamodule)
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
        adversary=adversary,
        **method_kwargs(cfg),
    )


__all__ = [
    "METHODS",
    "OptimConfig",
    "ScheduleConfig",
    "TrainingModule",
    "build_adversary",
    "build_module",
    "names",
    "pixel_box",
]
