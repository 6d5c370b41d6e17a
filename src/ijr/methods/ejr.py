"""Explicit Jacobian Regularization (paper 000, Section 5.3 and Appendix Q).

* ``ejr`` (eqs. 51-52): minimise L + lambda_reg ||<J>||_F^2 / C. With the unbiased estimator
  ||<J>||_F^2 = C E_{u ~ U(S^{C-1})} ||<J>u||^2 = C E_u ||grad_theta <u^T z>||^2 and K directions
  per step the penalty is lambda_reg / K sum_k ||grad_theta <u_k^T z>_B||^2, differentiated by
  double backpropagation (:class:`~ijr.methods.penalties.ParameterGradientPenalty`, exact over
  physical chunks).
* ``ejr_efficient`` (eqs. 11-13 = 53-54): theta_hat = theta + rho_reg delta / ||delta||,
  delta = <J>u = grad_theta <z^T u> at theta with a fresh u per step; update with
  grad L(theta_hat) (two passes, like SAM with g replaced by <J>u).
* ``ejr_v2`` (eq. 55): the same perturbation, but the descent pass differentiates
  L_hat = L + mu_reg u^T <z> (same u) at theta_hat, i.e. the update direction is
  grad L(theta_hat) + mu_reg <J(theta_hat)> u; eqs. 56-60 show this adds about
  mu_reg rho_reg ||<J>||_F / sqrt(C) to the objective.

u is drawn uniformly on S^{C-1} from a generator seeded by (seed, step) (stream ``ejr_u``), so
runs are deterministic and resumed runs draw the same u.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ijr.methods.base import correct_count, register_method
from ijr.methods.common import direction_generator, global_norm, random_unit_vectors
from ijr.methods.penalties import ParameterGradientPenalty
from ijr.methods.two_pass import NORM_GUARD, TwoPassModule
from ijr.schema import nonnegative_float, positive_int, setting

EJR_DIRECTION_STREAM = "ejr_u"


def ejr_directions(seed: int, step: int, count: int, num_classes: int) -> torch.Tensor:
    """The ``count`` directions u ~ U(S^{C-1}) of step ``step``: shape (count, C), float32, CPU."""
    return random_unit_vectors(
        direction_generator(seed, step, EJR_DIRECTION_STREAM), count, num_classes
    )


@dataclass
class EJRParams:
    """``conf/method/ejr.yaml``."""

    lambda_reg: float = setting(0.01, nonnegative_float)  # lambda_reg of eq. (51)
    num_projections: int = setting(1, positive_int)  # K directions u per step


@dataclass
class EfficientEJRParams:
    """``conf/method/ejr_efficient.yaml``."""

    rho: float = setting(2.0, nonnegative_float)  # rho_reg of eq. (11)


@dataclass
class EfficientEJRv2Params:
    """``conf/method/ejr_v2.yaml``."""

    rho: float = setting(2.0, nonnegative_float)  # rho_reg of eq. (11)
    mu: float = setting(0.03, nonnegative_float)  # mu_reg of eq. (55)


@register_method("ejr")
class ExplicitJacobianRegularization(ParameterGradientPenalty):
    """EJR, eq. (51): L + lambda_reg ||<J>||_F^2 / C estimated as
    lambda_reg / K sum_k ||grad_theta <u_k^T z>_B||^2 (``method.lambda_reg``,
    ``method.num_projections`` = K). Logs ``ejr_term`` (the penalty added to the loss) and
    ``jac_frob_sq_est`` = C / K sum_k ||<J>u_k||^2, the unbiased estimate of ||<J>||_F^2."""

    Params = EJRParams
    term_name = "ejr_term"
    norm_name = "jac_frob_sq_est"

    def __init__(
        self,
        model,
        *,
        lambda_reg: float = EJRParams.lambda_reg,
        num_projections: int = EJRParams.num_projections,
        **base_kwargs,
    ) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(lambda_reg=lambda_reg, num_projections=num_projections)

    def penalised_scalars(self, step, logits):
        directions = ejr_directions(self.seed, step, self.num_projections, logits.shape[-1])
        directions = directions.to(logits.device, logits.dtype)
        return [lambda logits_c, y_c, loss_c, u=u: (logits_c @ u).mean() for u in directions]

    def norm_scale(self, num_classes):
        return float(num_classes)


@register_method("ejr_efficient")
class EfficientEJR(TwoPassModule):
    """Efficient EJR, eqs. (11)-(13) / (53)-(54): ascent pass delta = <J>u = grad <u^T z>_B at
    theta, epsilon = rho delta / ||delta|| (``method.rho``), update with grad L(theta + epsilon).
    Logs ``jac_u_norm`` = ||<J>u|| and ``u_dot_mean_logit`` = u^T <z>_B at theta."""

    Params = EfficientEJRParams

    def __init__(self, model, *, rho: float = EfficientEJRParams.rho, **base_kwargs) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(rho=rho)
        self.current_direction: torch.Tensor | None = None

    def ascent_pass(self, x, y, step):
        total_loss = torch.zeros((), device=x.device)
        projected_mean = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device, dtype=torch.long)
        u = None
        for xc, yc, weight in self.chunks(x, y):
            logits = self.model(xc)
            if u is None:
                u = ejr_directions(self.seed, step, 1, logits.shape[-1])[0].to(
                    logits.device, logits.dtype
                )
            projected = (logits @ u).mean()
            self.backward_scaled(projected, weight)
            total_loss += self.loss_fn(logits.detach(), yc) * weight
            projected_mean += projected.detach() * weight
            correct += correct_count(logits.detach(), yc)
        self.current_direction = u
        return {"loss": total_loss, "correct": correct, "u_dot_mean_logit": projected_mean}

    def perturbation(self, params, direction):
        norm = global_norm(direction)
        scale = self.rho / (norm + NORM_GUARD)
        return [d * scale for d in direction], {"jac_u_norm": norm}


@register_method("ejr_v2")
class EfficientEJRv2(EfficientEJR):
    """Efficient EJR.v2, eq. (55): the perturbation of :class:`EfficientEJR`, and the descent
    pass differentiates L_hat = L + mu_reg u^T <z> (``method.mu``) at theta_hat with the same u.
    Logs ``ejr_v2_term`` = mu_reg u^T <z>_B at theta besides the efficient-EJR columns."""

    Params = EfficientEJRv2Params

    def __init__(
        self,
        model,
        *,
        rho: float = EfficientEJRv2Params.rho,
        mu: float = EfficientEJRv2Params.mu,
        **base_kwargs,
    ) -> None:
        super().__init__(model, rho=rho, **base_kwargs)
        self.set_params(rho=rho, mu=mu)

    def ascent_pass(self, x, y, step):
        logs = super().ascent_pass(x, y, step)
        logs["ejr_v2_term"] = self.mu * logs["u_dot_mean_logit"]
        return logs

    def descent_extra_term(self):
        u, mu = self.current_direction, self.mu

        def projected_logit_term(logits, x, y):
            return mu * (logits @ u).mean()

        return projected_logit_term


__all__ = [
    "EJRParams",
    "EfficientEJRParams",
    "EfficientEJRv2Params",
    "EJR_DIRECTION_STREAM",
    "EfficientEJR",
    "EfficientEJRv2",
    "ExplicitJacobianRegularization",
    "ejr_directions",
]
