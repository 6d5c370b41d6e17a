"""L-infinity adversarial examples for adversarial training and robust evaluation (paper 000,
Table 2 and Appendix R: AT of Madry et al. 2018 and TRADES of Zhang et al. 2019, settings of Pang
et al. 2020). Pure torch: usable without Lightning or Hydra.

The datasets of this suite are standardised per channel (``(pixel - mean) / std``), while the
threat model is a ball in *pixel* space: ||x_adv - x||_inf <= eps with pixels in [0, 1].
:class:`PixelBox` maps both into standardised coordinates (per-channel radius eps / std_c and
bounds (0 - mean_c) / std_c, (1 - mean_c) / std_c), so the attack steps on the standardised input
the model sees and the result is exactly a valid image within eps of the clean one.

* :func:`pgd` -- projected gradient ascent (Madry et al.): ``steps`` signed-gradient steps of
  size ``alpha`` on the cross-entropy (``objective="ce"``, random uniform start in the ball) or on
  KL(p(x) || p(x_adv)) (``objective="kl"``, TRADES: start x + 0.001 N(0, 1)), each followed by the
  projection onto the ball and the pixel box.
* :func:`trades_loss` -- CE(f(x), y) + beta KL(p(x) || p(x_adv)) (batch means), TRADES' objective.
* :func:`robust_accuracy` -- accuracy on PGD examples (e.g. PGD-20 of Table 2), in chunks.

Every function leaves the model's parameters, ``.grad``, buffers and the global RNG untouched
(randomness from a ``torch.Generator``); the caller chooses the model's train/eval mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ijr.state_guard import preserved

OBJECTIVES = ("ce", "kl")
TRADES_INIT_SCALE = 0.001  # TRADES' start: x + 0.001 * N(0, 1) (pixel units)


@dataclass(frozen=True)
class PixelBox:
    """The pixel cube [0, 1]^d and L-inf balls in the standardised coordinates of a dataset."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def identity(cls, channels: int) -> PixelBox:
        """Inputs that are pixels already (``data.standardize=false``)."""
        return cls((0.0,) * channels, (1.0,) * channels)

    def _view(self, values, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != len(values):
            raise ValueError(
                f"inputs of shape {tuple(x.shape)} do not have the box's {len(values)} channels in dim 1"
            )
        shape = (1, len(values)) + (1,) * (x.ndim - 2)
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(shape)

    def radius(self, eps: float, x: torch.Tensor) -> torch.Tensor:
        """A pixel-space radius in standardised units, per channel, broadcastable to ``x``."""
        return eps / self._view(self.std, x)

    def bounds(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised values of pixels 0 and 1, per channel."""
        mean, std = self._view(self.mean, x), self._view(self.std, x)
        return (0.0 - mean) / std, (1.0 - mean) / std

    def project(self, x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
        """The nearest point of {||x' - x||_inf <= eps (pixels), pixels in [0, 1]} (a box: clamp)."""
        r = self.radius(eps, x)
        lo, hi = self.bounds(x)
        return torch.minimum(
            torch.maximum(x_adv, torch.maximum(x - r, lo)), torch.minimum(x + r, hi)
        )


def _check(eps: float, alpha: float, steps: int, objective: str) -> None:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if not alpha >= 0:
        raise ValueError(f"alpha (step size) must be >= 0, got {alpha}")
    if int(steps) < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown attack objective '{objective}'; valid: {', '.join(OBJECTIVES)}")


def kl_divergence(logits_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """KL(p(x) || p(x_adv)) summed over classes, mean over the batch."""
    return F.kl_div(
        F.log_softmax(logits_adv, dim=-1), F.softmax(logits_clean, dim=-1), reduction="batchmean"
    )


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    eps: float,
    alpha: float,
    steps: int,
    box: PixelBox,
    objective: str = "ce",
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD in the L-inf ball of pixel radius ``eps`` around ``x`` (see the module docstring).

    Args:
        model: returns logits; used in the mode the caller set (AT crafts in train mode, TRADES
            in eval mode, Pang et al. 2020). Its parameters get no ``.grad``; BatchNorm running
            statistics are restored afterwards.
        x: standardised inputs (N, C, ...); y: class indices (``objective="ce"``; ignored for
            ``"kl"``, whose target is the model's own p(x)).
        eps, alpha: radius and step size in pixel units (8/255 and 2/255 in Table 2).
        steps: number of ascent steps (10 for training, 20 for PGD-20).
        random_start: ``ce``: uniform in the ball; ``kl``: x + 0.001 N(0, 1) (TRADES).
        generator: source of the random start (default: seeded with 0).

    Returns:
        the adversarial inputs, detached, same shape and dtype as ``x``.
    """
    _check(eps, alpha, steps, objective)
    gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(0)
    x = x.detach()
    with preserved(model, buffers=True, modes=False):
        with torch.no_grad():
            target = model(x).detach() if objective == "kl" else None
            if random_start and eps > 0:
                if objective == "kl":
                    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
                    start = x + TRADES_INIT_SCALE * noise * box.radius(1.0, x)
                else:
                    noise = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device)
                    start = x + (2 * noise - 1) * box.radius(eps, x)
                x_adv = box.project(start, x, eps)
            else:
                x_adv = x.clone()
        step = box.radius(alpha, x)
        for _ in range(int(steps)):
            x_adv.requires_grad_(True)
            logits = model(x_adv)
            loss = (
                kl_divergence(target, logits) if objective == "kl" else F.cross_entropy(logits, y)
            )
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = box.project(x_adv.detach() + step * grad.sign(), x, eps)
    return x_adv.detach()


def trades_loss(
    logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float
) -> torch.Tensor:
    """TRADES' objective CE(f(x), y) + beta KL(p(x) || p(x_adv)) (Zhang et al. 2019, batch means)."""
    return F.cross_entropy(logits_clean, y) + beta * kl_divergence(logits_clean, logits_adv)


def robust_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    eps: float,
    alpha: float,
    steps: int,
    box: PixelBox,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on PGD-``steps`` examples (random start) over ``batches``,
    with the model in eval mode (its train/eval flags are restored)."""
    gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(0)
    correct, total, loss_sum = 0, 0, 0.0
    with preserved(model, buffers=False, modes=True):
        model.eval()
        for x, y in batches:
            x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, box=box, generator=gen)
            with torch.no_grad():
                logits = model(x_adv)
            correct += int((logits.argmax(-1) == y).sum())
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            total += x.shape[0]
    if total == 0:
        raise ValueError("robust_accuracy got no examples")
    return correct / total, loss_sum / total


__all__ = ["OBJECTIVES", "PixelBox", "kl_divergence", "pgd", "robust_accuracy", "trades_loss"]
