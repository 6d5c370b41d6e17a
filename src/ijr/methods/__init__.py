"""Training methods as LightningModules (manual optimization, one ``training_step`` = one update).

``build_module(cfg, model, datamodule, total_steps)`` builds the module named by ``cfg.method.name``;
``names()`` lists the registered methods. A method registers itself with
``@register_method(name)`` (:mod:`ijr.methods.base`), declares its ``Params`` schema (the keys of
``conf/method/<name>.yaml``) and whether it ``computes_own_loss``; nothing here lists methods.
"""

from __future__ import annotations

import dataclasses

from ijr.attacks import PixelBox
from ijr.methods import ejr, penalties, sam  # noqa: F401  (register the methods)
from ijr.methods.adversarial import Adversary, AdversaryConfig
from ijr.methods.base import (
    METHODS,
    OptimConfig,
    ScheduleConfig,
    TrainingModule,
    register_method,
)
from ijr.methods.ejr import EfficientEJR, EfficientEJRv2, ExplicitJacobianRegularization
from ijr.methods.penalties import GradientNormPenalty, InputJacobianRegularization
from ijr.methods.sam import ASAM, SAM
from ijr.schema import SettingError, parse_settings


def names() -> list[str]:
    return sorted(METHODS)


def method_class(name: str) -> type[TrainingModule]:
    """The registered class of ``method=<name>`` (one-line error listing the valid names)."""
    if name not in METHODS:
        raise SettingError(f"unknown method '{name}'; valid methods: {', '.join(names())}")
    return METHODS[name]


def method_kwargs(cfg) -> dict:
    """``cfg.method`` checked against the method's ``Params`` schema (:mod:`ijr.schema`:
    unknown keys and bad values are one-line errors), as constructor keywords."""
    cls = method_class(cfg.method.name)
    params = parse_settings(
        cls.Params, dict(cfg.method), "method", ignore=("name",), label=f"method={cls.method_name}"
    )
    return dataclasses.asdict(params)


def own_loss_methods() -> list[str]:
    """Methods that differentiate a loss of their own (``computes_own_loss``): TRADES' loss
    wrapper cannot reach them."""
    return [n for n in names() if METHODS[n].computes_own_loss]


def build_adversary(cfg, datamodule) -> Adversary | None:
    """The training attack of ``cfg.adversary`` (None for ``adversary=none`` or no such group)."""
    raw = cfg.get("adversary")
    if raw is None or raw.get("name", "none") == "none":
        return None
    config = AdversaryConfig.parse(dict(raw))
    if cfg.data.name == "synthetic":
        raise ValueError(
            "adversarial training needs images with pixels in [0, 1] (its threat model); data=synthetic has unbounded inputs"
        )
    if cfg.loss.name != "cross_entropy" or datamodule.target_kind != "index":
        raise ValueError("adversarial training needs loss=cross_entropy with class-index targets")
    if config.name == "trades" and method_class(cfg.method.name).computes_own_loss:
        raise ValueError(
            f"adversary=trades cannot be combined with method={cfg.method.name} (it differentiates its own loss); "
            f"use one of {', '.join(n for n in names() if n not in own_loss_methods())}"
        )
    return Adversary(config, pixel_box(datamodule), int(cfg.seed))


def pixel_box(datamodule) -> PixelBox:
    """The [0, 1] pixel cube in the datamodule's standardised coordinates."""
    return PixelBox(
        tuple(float(v) for v in datamodule.channel_mean),
        tuple(float(v) for v in datamodule.channel_std),
    )


def build_module(cfg, model, datamodule, total_steps: int) -> TrainingModule:
    """The module of ``cfg.method``, its settings checked against the method's ``Params``."""
    from ijr.trainer_config import TrainerConfig

    cls = method_class(cfg.method.name)
    kwargs = method_kwargs(cfg)
    trainer = TrainerConfig.parse(cfg.trainer)
    adversary = build_adversary(cfg, datamodule)
    return cls(
        model,
        loss=cfg.loss.name,
        label_smoothing=float(cfg.loss.get("label_smoothing", 0.0)),
        optim=OptimConfig.parse(cfg.optim),
        schedule=ScheduleConfig.parse(cfg.sched),
        total_steps=total_steps,
        physical_batch_size=datamodule.physical_batch_size,
        seed=int(cfg.seed),
        divergence_loss=float(trainer.divergence_loss),
        log_every_n_steps=int(trainer.log_every_n_steps),
        steps_per_epoch=datamodule.steps_per_epoch,
        adversary=adversary,
        **kwargs,
    )


__all__ = [
    "ASAM",
    "METHODS",
    "SAM",
    "EfficientEJR",
    "EfficientEJRv2",
    "ExplicitJacobianRegularization",
    "GradientNormPenalty",
    "InputJacobianRegularization",
    "OptimConfig",
    "ScheduleConfig",
    "TrainingModule",
    "build_adversary",
    "build_module",
    "method_class",
    "method_kwargs",
    "names",
    "own_loss_methods",
    "pixel_box",
    "register_method",
]
