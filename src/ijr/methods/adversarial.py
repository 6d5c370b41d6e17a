"""Adversarial training (paper 000, Table 2 / Appendix R; Setting 4 of Table 4): AT (Madry et al.
2018) and TRADES (Zhang et al. 2019), composable with the training methods (``method=sgd`` gives
AT / TRADES, ``method=ejr_efficient`` gives AT-EJR / TRADES-EJR).

``adversary=at``: each batch is replaced by PGD examples (cross-entropy, random start) crafted at
the current parameters with the model in ``adversary.bn_mode`` (train, as Pang et al. 2020 do for
AT); the method then trains on them exactly as on clean data (for the two-pass methods: the
ascent and the descent pass both see the adversarial batch).

``adversary=trades``: the PGD examples maximise KL(p(x) || p(x_adv)) (crafted in eval mode, as
Pang et al. do for TRADES), and every loss the method differentiates through
:meth:`~ijr.methods.base.TrainingModule.accumulate_loss_gradient` becomes
CE(f(x), y) + beta KL(p(x) || p(x_adv)) per chunk; the EJR ascent direction <J>u is taken on the
clean batch. The double-backprop penalties (``ejr``, ``gnp``, ``input_jr``) differentiate their own
loss and are rejected with TRADES.

Examples are crafted per physical chunk of the batch (``data.physical_batch_size``, so full-batch
GD fits in memory), and crafting restores BatchNorm running statistics, so only the training passes
update them. The random starts come from a generator seeded by (seed, step, chunk), so resumed runs
craft the same examples. With eps = 0 and no random start (AT), or beta = 0 (TRADES), training is bit-identical
to training without an adversary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ijr.attacks import PixelBox, pgd
from ijr.methods.common import direction_generator
from ijr.state_guard import preserved

ADVERSARIES = ("none", "at", "trades")
ATTACK_STREAM = "adversary"


@dataclass
class AdversaryConfig:
    """``conf/adversary/*``: the threat model and the training attack (pixel units)."""

    name: str = "none"
    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 10
    random_start: bool = True
    beta: float = 6.0
    bn_mode: str = "train"
    eval_steps: int = 20
    eval_size: int | None = None
    eval_every_n_steps: int | None = None

    def validate(self) -> None:
        if self.name not in ADVERSARIES:
            raise ValueError(f"unknown adversary '{self.name}'; valid: {', '.join(ADVERSARIES)}")
        for key in ("eps", "alpha", "beta"):
            if not float(getattr(self, key)) >= 0:
                raise ValueError(f"adversary.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("steps", "eval_steps"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"adversary.{key} must be >= 0, got {getattr(self, key)}")
        if self.bn_mode not in ("train", "eval"):
            raise ValueError(f"adversary.bn_mode must be train or eval, got {self.bn_mode!r}")
        if self.eval_size is not None and int(self.eval_size) < 1:
            raise ValueError(f"adversary.eval_size must be >= 1 or null, got {self.eval_size}")

    @property
    def enabled(self) -> bool:
        return self.name != "none"


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
                generator=direction_generator(self.seed, step, f"{ATTACK_STREAM}/{chunk}"),
            )


__all__ = ["ADVERSARIES", "Adversary", "AdversaryConfig"]
