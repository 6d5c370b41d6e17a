"""SAM (Foret et al., 2021) and ASAM (Kwon et al., 2021): the sharpness-aware baselines of
Table 1 (WRN rows) of paper 000, run by :class:`~ijr.methods.two_pass.TwoPassModule`.

SAM:   epsilon = rho g / ||g||,                g = grad L_B(theta)
ASAM:  epsilon = rho T^2 g / ||T g||,          T = diag(|theta| + eta) on the scaled parameters,
                                               identity on the others
then the update uses grad L_B(theta + epsilon). Paper 000 (Table 3, footnote a) uses
rho = 0.05 / 0.1 for SAM and rho = 0.5 / 1.0 with eta = 0.01 for ASAM on CIFAR-10 / CIFAR-100.
Setting epsilon's direction to <J>u instead of g = <J(p - e^y)> gives efficient EJR (Section 5.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ijr.methods.base import register_method
from ijr.methods.common import global_norm
from ijr.methods.two_pass import NORM_GUARD, TwoPassModule
from ijr.schema import nonnegative_float, one_of, setting

# Which parameters ASAM rescales by T = |theta| + eta (the others get T = 1).
ASAM_SCALED_PARAMS = ("weight", "weight_except_norm", "all")

_NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


@dataclass
class SAMParams:
    """``conf/method/sam.yaml``."""

    rho: float = setting(0.05, nonnegative_float)  # neighbourhood radius (Table 3 footnote a)


@register_method("sam")
class SAM(TwoPassModule):
    """Sharpness-aware minimisation: ascent pass = the batch-loss gradient g at theta,
    epsilon = rho g / ||g|| (``method.rho``). Logs ``grad_norm`` = ||g||."""

    Params = SAMParams

    def __init__(self, model, *, rho: float = SAMParams.rho, **base_kwargs) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(rho=rho)

    def ascent_pass(self, x, y, step):
        loss, correct = self.accumulate_loss_gradient(x, y)
        return {"loss": loss, "correct": correct}

    def perturbation(self, params, direction):
        norm = global_norm(direction)
        scale = self.rho / (norm + NORM_GUARD)
        return [g * scale for g in direction], {"grad_norm": norm}


def asam_scaled_mask(model: nn.Module, scaled_params: str) -> list[bool]:
    """For each trainable parameter (``model.parameters()`` order): is it rescaled by ASAM?

    ``weight``: every parameter whose name ends in ``weight`` -- the reference implementation
    (SamsungLabs/ASAM ``asam.py`` tests ``'weight' in name``), which therefore rescales conv /
    linear weights *and* the scales of normalisation layers (BatchNorm ``weight``), not biases;
    ``weight_except_norm``: the same without normalisation layers (BN/GN/LN/IN);
    ``all``: every parameter, biases included."""
    if scaled_params not in ASAM_SCALED_PARAMS:
        raise ValueError(
            f"method.scaled_params must be one of {', '.join(ASAM_SCALED_PARAMS)}, got {scaled_params!r}"
        )
    norm_params = {
        id(p)
        for m in model.modules()
        if isinstance(m, _NORM_LAYERS)
        for p in m.parameters(recurse=False)
    }
    mask = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if scaled_params == "all":
            mask.append(True)
        elif scaled_params == "weight":
            mask.append(name.split(".")[-1].endswith("weight"))
        else:
            mask.append(name.split(".")[-1].endswith("weight") and id(p) not in norm_params)
    return mask


@dataclass
class ASAMParams:
    """``conf/method/asam.yaml``."""

    rho: float = setting(0.5, nonnegative_float)  # neighbourhood radius (Table 3 footnote a)
    eta: float = setting(0.01, nonnegative_float)  # eta added to |theta| in T
    scaled_params: str = setting("weight", one_of(*ASAM_SCALED_PARAMS, sep=", got"))


@register_method("asam")
class ASAM(TwoPassModule):
    """Adaptive SAM: epsilon = rho T^2 g / ||T g|| with the elementwise T = |theta| + eta
    (``method.eta``) on the parameters chosen by ``method.scaled_params`` (see
    :func:`asam_scaled_mask`; the default ``weight`` is the reference's choice). Logs
    ``scaled_grad_norm`` = ||T g||. Runs with full-batch GD too (paper 000 reports that it then
    trains poorly, Table 1)."""

    Params = ASAMParams

    def __init__(
        self,
        model,
        *,
        rho: float = ASAMParams.rho,
        eta: float = ASAMParams.eta,
        scaled_params: str = ASAMParams.scaled_params,
        **base_kwargs,
    ) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(rho=rho, eta=eta, scaled_params=scaled_params)
        self.scaled_mask = asam_scaled_mask(self.model, self.scaled_params)

    def ascent_pass(self, x, y, step):
        loss, correct = self.accumulate_loss_gradient(x, y)
        return {"loss": loss, "correct": correct}

    def perturbation(self, params, direction):
        scales = [
            p.detach().abs() + self.eta if scaled else None
            for p, scaled in zip(params, self.scaled_mask, strict=True)
        ]
        scaled_grad = [g if t is None else t * g for g, t in zip(direction, scales, strict=True)]
        norm = global_norm(scaled_grad)
        factor = self.rho / (norm + NORM_GUARD)
        epsilon = [
            tg * factor if t is None else t * tg * factor
            for tg, t in zip(scaled_grad, scales, strict=True)
        ]
        return epsilon, {"scaled_grad_norm": norm}


__all__ = ["ASAM", "ASAMParams", "ASAM_SCALED_PARAMS", "SAM", "SAMParams", "asam_scaled_mask"]
