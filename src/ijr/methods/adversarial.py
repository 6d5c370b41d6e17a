"""Adversarial training (paper 000, Table 2 / Appendix R; Setting 4 of Table 4): AT (Madry et al.
2018) and TRADES (Zhang et al. 2019), composable with the training methods (``method=sgd`` gives
AT / TRADES, ``method=ejr_efficient`` gives AT-EJR / TRADES-EJR).

``adversary=at``: each batch is replaced by PGD examples (cross-entropy, random start) crafted at
the current parameters with the model in ``adversary.bn_mode`` (train, as Pang et al. 2020 do for
AT); the method then trains on them exactly as on clean data (for the two-pass methods: the
ascent and the descent pass both see the adversarial batch).

``adversary=trades``: the PGD examples maximise KL(p(x) || p(x_adv)) (crafted in eval mode, as
Pang et al. do for TRADES), and the adversary wraps the method's loss: for the step,
:meth:`~ijr.methods.base.TrainingModule.chunk_loss` becomes CE(f(x), y) + beta KL(p(x) || p(x_adv))
per chunk (:class:`TradesTerm`); the EJR ascent direction <J>u is taken on the clean batch. Methods
that declare ``computes_own_loss`` (the double-backprop penalties ``ejr``, ``gnp``, ``input_jr``)
cannot be wrapped and are rejected with TRADES; a method that does not declare it but never
calls ``chunk_loss`` is stopped at its first step (:meth:`TradesTerm.check_reached`), so the KL
term is never lost silently.

Examples are crafted per physical chunk of the batch (``data.physical_batch_size``, so full-batch
GD fits in memory), and crafting restores BatchNorm running statistics, so only the training passes
update them. The random starts come from a generator seeded by (seed, step, chunk), so resumed runs
craft the same examples. With eps = 0 and no random start (AT), or beta = 0 (TRADES), training is bit-identical
to training without an adversary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ijr.attacks import PixelBox, kl_divergence, pgd
from ijr.schema import SettingError, at_least_zero, boolean, integer, parse_settings, setting
from ijr.seeds import stream_generator
from ijr.state_guard import preserved

ADVERSARIES = ("none", "at", "trades")
ATTACK_STREAM = "adversary"
# What each conf/adversary/<name>.yaml changes from AdversaryConfig's defaults (none.yaml holds
# only its name: the other keys are unused without an attack).
PRESETS: dict[str, dict[str, Any]] = {"none": {}, "at": {}, "trades": {"bn_mode": "eval"}}


def _adversary_name(key: str, value: Any) -> str:
    if value not in ADVERSARIES:
        raise SettingError(f"unknown adversary '{value}'; valid: {', '.join(ADVERSARIES)}")
    return value


def _bn_mode(key: str, value: Any) -> str:
    if value not in ("train", "eval"):
        raise SettingError(f"{key} must be train or eval, got {value!r}")
    return value


def _eval_size(key: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SettingError(f"{key} must be >= 1 or null, got {value}")
    return value


@dataclass
class AdversaryConfig:
    """``conf/adversary/*``: the threat model and the training attack (pixel units); the schema
    of the group (:mod:`ijr.schema`), defaults = ``conf/adversary/at.yaml``."""

    name: str = setting("none", _adversary_name)
    eps: float = setting(8 / 255, at_least_zero)  # L-inf radius (pixels in [0, 1])
    alpha: float = setting(2 / 255, at_least_zero)  # PGD step size
    steps: int = setting(10, integer(minimum=0))  # PGD steps for training
    random_start: bool = setting(True, boolean)  # uniform start in the eps-ball
    beta: float = setting(6.0, at_least_zero)  # TRADES' KL weight (unused by AT)
    bn_mode: str = setting("train", _bn_mode)  # BatchNorm mode while crafting
    eval_steps: int = setting(20, integer(minimum=0))  # PGD steps of the robust test accuracy
    eval_size: int | None = setting(None, _eval_size)  # test examples for it; None = all
    eval_every_n_steps: int | None = setting(None, integer(minimum=1, allow_none=True))

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> AdversaryConfig:
        """``cfg.adversary`` checked against this schema, missing keys from the preset of its
        ``name`` (:data:`PRESETS`)."""
        name = _adversary_name("adversary.name", raw.get("name", "none"))
        return parse_settings(cls, {**PRESETS[name], **raw}, "adversary", label=f"adversary={name}")

    def validate(self) -> None:
        """Check the values set (one-line :class:`~ijr.schema.SettingError`)."""
        parse_settings(type(self), dataclasses.asdict(self), "adversary")

    @property
    def enabled(self) -> bool:
        return self.name != "none"


class TradesTerm:
    """TRADES' loss wrapper for one step: ``loss + beta KL(p(x) || p(x_adv))`` for the chunk
    starting at example ``start`` (Zhang et al. 2019, eq. 5; paper 000 App. R). Remembers which
    examples it reached, so a method that differentiated a loss of its own is caught."""

    def __init__(self, model: nn.Module, x_adv: torch.Tensor, beta: float) -> None:
        self.model, self.x_adv, self.beta = model, x_adv, beta
        self.reached = torch.zeros(x_adv.shape[0], dtype=torch.bool)

    def __call__(self, loss: torch.Tensor, logits: torch.Tensor, start: int) -> torch.Tensor:
        stop = start + logits.shape[0]
        self.reached[start:stop] = True
        return loss + self.beta * kl_divergence(logits, self.model(self.x_adv[start:stop]))

    def check_reached(self, method: str) -> None:
        """Raise unless every example's loss went through the wrapper this step."""
        if not bool(self.reached.all()):
            missed = int((~self.reached).sum())
            raise RuntimeError(
                f"method={method} differentiated a loss without TRADES' KL term for {missed} of "
                f"{self.reached.numel()} examples: build its loss with TrainingModule.chunk_loss, "
                "or declare computes_own_loss = True so adversary=trades is refused"
            )


class Adversary:
    """Crafts the training attack of one step (see the module docstring)."""

    def __init__(self, config: AdversaryConfig, box: PixelBox, seed: int) -> None:
        config.validate()
        if not config.enabled:
            raise ValueError("Adversary needs adversary.name at or trades")
        self.config = config
        self.box = box
        self.seed = int(seed)

    @property
    def is_trades(self) -> bool:
        return self.config.name == "trades"

    def attack_step(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int, chunks: Iterable
    ) -> tuple[torch.Tensor, TradesTerm | None]:
        """The batch the method trains on and the loss wrapper of this step: AT returns the
        attack and no wrapper, TRADES the clean batch and its :class:`TradesTerm`. Examples are
        crafted chunk by chunk (``chunks``: the physical chunks), each with its own seeded start."""
        x_adv = torch.cat(
            [self.craft(model, xc, yc, step, chunk=k) for k, (xc, yc, _) in enumerate(chunks)]
        )
        if self.is_trades:
            return x, TradesTerm(model, x_adv, self.config.beta)
        return x_adv, None

    def craft(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int, chunk: int = 0
    ) -> torch.Tensor:
        """PGD examples for (x, y) at ``step`` (``chunk``: which physical chunk of the batch)."""
        cfg = self.config
        with preserved(model, buffers=False, modes=True):
            model.train(cfg.bn_mode == "train")
            return pgd(
                model,
                x,
                y,
                eps=float(cfg.eps),
                alpha=float(cfg.alpha),
                steps=int(cfg.steps),
                box=self.box,
                objective="kl" if self.is_trades else "ce",
                random_start=bool(cfg.random_start),
                generator=stream_generator(self.seed, step, f"{ATTACK_STREAM}/{chunk}"),
            )


__all__ = ["ADVERSARIES", "PRESETS", "Adversary", "AdversaryConfig", "TradesTerm"]
