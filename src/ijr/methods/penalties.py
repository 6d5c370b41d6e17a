"""Explicit penalties by double backpropagation.

:class:`ParameterGradientPenalty` minimises

    L_B(theta) + lambda / K * sum_k || grad_theta S_k(theta) ||^2,     S_k = <s_k(z, y)>_B,

exactly over the *whole* logical batch however it is split into physical chunks: with
S_k = sum_c w_c S_k^c (w_c = len(chunk)/len(batch)),

    grad_theta ||grad S_k||^2 = 2 sum_c w_c grad_theta (grad S_k^c . delta_k),
    delta_k = grad S_k = sum_c w_c grad S_k^c   (detached),

so a first pass accumulates delta_k and a second pass backpropagates through grad S_k^c (built
with ``create_graph``) dotted with delta_k. With one chunk the penalty is differentiated
directly in a single forward. Subclasses: EJR (eq. 51, s = u^T z, ``ijr.methods.ejr``) and the
gradient-norm penalty of Smith et al. 2021 (s = loss, :class:`GradientNormPenalty`).

:class:`InputJacobianRegularization` is the input-logit Jacobian penalty of Hoffman et al. 2019.

BatchNorm running statistics are updated by the first forward pass only (the second pass of the
chunked path restores every buffer). With lambda = 0 the update is bit-identical to plain SGD
(the penalty's graph only adds exact zeros). Under multi-device DDP the penalty uses each
device's share of the batch (``torch.autograd.grad`` does not all-reduce).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ijr.methods.base import TrainingModule, correct_count, register_method
from ijr.methods.common import (
    buffers_restored,
    direction_generator,
    dot_all,
    random_unit_vectors,
    trainable_parameters,
)
from ijr.schema import nonnegative_float, positive_int, setting


@dataclass
class GNPParams:
    """``conf/method/gnp.yaml``."""

    lambda_reg: float = setting(0.01, nonnegative_float)  # weight of ||<grad l>_B||^2


@dataclass
class InputJRParams:
    """``conf/method/input_jr.yaml``."""

    lambda_reg: float = setting(0.01, nonnegative_float)  # lambda_JR of Hoffman et al.
    num_projections: int = setting(1, positive_int)  # K random projections per step


class ParameterGradientPenalty(TrainingModule):
    """L_B + lambda_reg / K sum_k ||grad_theta <s_k>_B||^2 by double backpropagation (see the
    module docstring). Subclasses define the scalars s_k with :meth:`penalised_scalars` and
    name the logged columns with ``term_name`` (lambda times the penalty) and ``norm_name``
    (the mean squared gradient norm itself, times ``norm_scale``); their ``Params`` hold
    ``lambda_reg``. The loss is differentiated here, not through ``chunk_loss``."""

    computes_own_loss = True
    lambda_reg: float
    term_name = "penalty_term"
    norm_name = "penalty_grad_norm_sq"
    penalises_loss_gradient = (
        False  # True: s = loss, so delta is the loss gradient already in .grad
    )

    def penalised_scalars(self, step: int, logits: torch.Tensor) -> list:
        """Functions ``f(logits_c, y_c, loss_c) -> chunk-mean scalar`` for step ``step`` (given
        the first chunk's logits for the number of classes, device and dtype)."""
        raise NotImplementedError

    def norm_scale(self, num_classes: int) -> float:
        """Factor from the mean ||grad S_k||^2 to the logged ``norm_name`` quantity."""
        return 1.0

    # -------------------------------------------------------------- gradients
    def compute_gradients(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        params = trainable_parameters(self.model)
        if self.physical_batch_size is None or self.physical_batch_size >= x.shape[0]:
            loss, correct, penalty, num_classes = self._single_chunk(x, y, step, params)
        else:
            loss, correct, penalty, num_classes = self._chunked(x, y, step, params)
        return {
            "loss": loss,
            "correct": correct,
            self.term_name: self.lambda_reg * penalty,
            self.norm_name: self.norm_scale(num_classes) * penalty,
        }

    def _single_chunk(self, x, y, step, params):
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        scalars = self.penalised_scalars(step, logits)
        squared_norms = []
        for scalar in scalars:
            grads = torch.autograd.grad(
                scalar(logits, y, loss),
                params,
                create_graph=True,
                retain_graph=True,
                materialize_grads=True,
            )
            squared_norms.append(dot_all(grads, grads))
        penalty = torch.stack(squared_norms).mean()
        self.backward_scaled(loss + self.lambda_reg * penalty, 1.0)
        total_loss = torch.zeros(
            (), device=x.device
        )  # same accumulator as accumulate_loss_gradient
        total_loss += loss.detach() * 1.0
        return total_loss, correct_count(logits.detach(), y), penalty.detach(), logits.shape[-1]

    def _chunked(self, x, y, step, params):
        # pass 1: loss gradient into .grad and delta_k = grad S_k (whole batch), BN stats updated
        total_loss = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device, dtype=torch.long)
        scalars, deltas = None, None
        for xc, yc, weight in self.chunks(x, y):
            logits = self.model(xc)
            loss = self.loss_fn(logits, yc)
            if scalars is None:
                scalars = self.penalised_scalars(step, logits)
                deltas = [[torch.zeros_like(p) for p in params] for _ in scalars]
            if not self.penalises_loss_gradient:
                for scalar, delta in zip(scalars, deltas, strict=True):
                    grads = torch.autograd.grad(
                        scalar(logits, yc, loss), params, retain_graph=True, materialize_grads=True
                    )
                    for d, g in zip(delta, grads, strict=True):
                        d.add_(g, alpha=weight)
            self.backward_scaled(loss, weight)
            total_loss += loss.detach() * weight
            correct += correct_count(logits.detach(), yc)
        if self.penalises_loss_gradient:
            deltas = [
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
                    for p in params
                ]
            ]
        penalty = torch.stack([dot_all(d, d) for d in deltas]).mean()
        # pass 2: add 2 lambda / K sum_c w_c grad (grad S_k^c . delta_k); buffers as after pass 1
        coefficient = 2.0 * self.lambda_reg / len(deltas)
        with buffers_restored(self.model):
            for xc, yc, weight in self.chunks(x, y):
                logits = self.model(xc)
                loss = self.loss_fn(logits, yc)
                inner = []
                for scalar, delta in zip(scalars, deltas, strict=True):
                    grads = torch.autograd.grad(
                        scalar(logits, yc, loss),
                        params,
                        create_graph=True,
                        retain_graph=True,
                        materialize_grads=True,
                    )
                    inner.append(dot_all(grads, delta))
                objective = coefficient * torch.stack(inner).sum()
                if (
                    objective.requires_grad
                ):  # otherwise grad S_k^c does not depend on theta: its gradient is 0
                    self.backward_scaled(objective, weight)
        return total_loss, correct, penalty.detach(), logits.shape[-1]


@register_method("gnp")
class GradientNormPenalty(ParameterGradientPenalty):
    """The mini-batch gradient-norm penalty of Smith et al. (2021):
    L_B + lambda_reg ||<grad_theta l>_B||^2 (``method.lambda_reg``). Gradient descent with
    learning rate eta implicitly adds (eta / 4) ||grad L||^2 (Barrett & Dherin 2021), so
    lambda_reg = eta / 4 doubles that implicit term. Logs ``gnp_term`` = lambda ||<grad l>_B||^2
    and ``grad_norm_sq`` = ||<grad l>_B||^2 at theta."""

    Params = GNPParams
    term_name = "gnp_term"
    norm_name = "grad_norm_sq"
    penalises_loss_gradient = True

    def __init__(self, model, *, lambda_reg: float = GNPParams.lambda_reg, **base_kwargs) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(lambda_reg=lambda_reg)

    def penalised_scalars(self, step, logits):
        return [lambda logits_c, y_c, loss_c: loss_c]


@register_method("input_jr")
class InputJacobianRegularization(TrainingModule):
    """Input-logit Jacobian penalty of Hoffman, Roberts & Yaida (2019):

        L_B + lambda_reg / 2 * < ||d z / d x||_F^2 >_B,
        ||d z / d x||_F^2 ~= C / K sum_k ||d (v_k^T z) / d x||^2,   v_k ~ U(S^{C-1}),

    with a fresh v per example and projection (``method.num_projections`` = K), exactly the
    normalisation of their reference ``JacobianReg`` (R = C ||J v||^2 / (2 K B)). The batch mean
    is a sum of per-example terms, so chunking is exact (v is drawn for the whole batch, seeded
    by (seed, step)). With BatchNorm in training mode z_b also depends on the other inputs of its
    chunk, as in the reference. Logs ``input_jr_term`` (lambda/2 times the estimate) and
    ``input_jac_frob_sq`` (the estimate of <||dz/dx||_F^2>_B)."""

    Params = InputJRParams
    computes_own_loss = True

    def __init__(
        self,
        model,
        *,
        lambda_reg: float = InputJRParams.lambda_reg,
        num_projections: int = InputJRParams.num_projections,
        **base_kwargs,
    ) -> None:
        super().__init__(model, **base_kwargs)
        self.set_params(lambda_reg=lambda_reg, num_projections=num_projections)

    def compute_gradients(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        if not torch.is_floating_point(x):
            raise ValueError(f"method input_jr needs floating-point inputs, got dtype {x.dtype}")
        batch = x.shape[0]
        total_loss = torch.zeros((), device=x.device)
        total_jac = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device, dtype=torch.long)
        projections, start = None, 0
        for xc, yc, weight in self.chunks(x, y):
            inputs = xc.detach().requires_grad_(True)
            logits = self.model(inputs)
            loss = self.loss_fn(logits, yc)
            num_classes = logits.shape[-1]
            if projections is None:
                gen = direction_generator(self.seed, step, "input_jr_v")
                projections = random_unit_vectors(gen, self.num_projections * batch, num_classes)
                projections = projections.view(self.num_projections, batch, num_classes).to(
                    logits.device, logits.dtype
                )
            n = xc.shape[0]
            squared = []
            for k in range(self.num_projections):
                (jv,) = torch.autograd.grad(
                    (logits * projections[k, start : start + n]).sum(),
                    inputs,
                    create_graph=True,
                    retain_graph=True,
                )
                squared.append(jv.pow(2).sum())
            jac_frob_sq = num_classes * torch.stack(squared).sum() / (self.num_projections * n)
            self.backward_scaled(loss + 0.5 * self.lambda_reg * jac_frob_sq, weight)
            total_loss += loss.detach() * weight
            total_jac += jac_frob_sq.detach() * weight
            correct += correct_count(logits.detach(), yc)
            start += n
        return {
            "loss": total_loss,
            "correct": correct,
            "input_jr_term": 0.5 * self.lambda_reg * total_jac,
            "input_jac_frob_sq": total_jac,
        }


__all__ = [
    "GNPParams",
    "GradientNormPenalty",
    "InputJRParams",
    "InputJacobianRegularization",
    "ParameterGradientPenalty",
]
