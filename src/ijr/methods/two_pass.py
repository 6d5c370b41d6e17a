"""Two-pass ("perturb, then descend") methods: SAM, ASAM, efficient EJR and EJR.v2.

Every one of them updates theta with the gradient of the loss at a perturbed point,

    theta_hat = theta + epsilon(theta),     theta <- optimizer step with grad = grad L(theta_hat)

(eq. 53 of paper 000 with epsilon of eq. 54 for efficient EJR; Foret et al. 2021 for SAM; Kwon et
al. 2021 for ASAM). One training step is

1. the *ascent pass* at theta (subclass): fills ``.grad`` with the ascent direction
   (grad L_B for SAM/ASAM, <J>u = grad <u^T z>_B for EJR, eq. 13) chunk by chunk over the whole
   logical batch, and measures the batch loss at theta (the logged ``train/loss``). BatchNorm
   running statistics are updated by this pass only;
2. epsilon from the direction (subclass), theta saved, theta += epsilon;
3. the *descent pass* at theta_hat: ``.grad`` = gradient of the batch-mean loss (plus an optional
   per-chunk term, EJR.v2's mu u^T<z>, eq. 55), accumulated over the same chunks -- every module
   buffer is restored afterwards, so running_mean / running_var / num_batches_tracked are exactly
   those after pass 1;
4. theta restored from the saved copies (exact, not theta_hat - epsilon), so the base optimizer's
   momentum and weight decay act on theta (as in davda54/sam) and the probes that run between
   steps see the unperturbed parameters.

The perturbation divides by ``norm + 1e-12`` (davda54/sam's guard), so a zero direction gives
epsilon = 0 instead of NaN. With rho = 0 the update is bit-identical to plain SGD.
"""

from __future__ import annotations

import torch

from ijr.methods.base import TrainingModule
from ijr.methods.common import (
    buffers_restored,
    global_norm,
    grads_or_zeros,
    trainable_parameters,
)

NORM_GUARD = 1e-12


class TwoPassModule(TrainingModule):
    """Base of the perturb-then-descend methods (see the module docstring); subclasses implement
    :meth:`ascent_pass` and :meth:`perturbation` and may add a term to the descent objective
    with :meth:`descent_extra_term`. Subclasses' ``Params`` hold ``rho``, the radius of epsilon."""

    rho: float

    # ------------------------------------------------------------------ hooks
    def ascent_pass(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        """Fill ``.grad`` with the ascent direction at theta; return logs with ``loss`` (batch
        mean at theta) and ``correct``. Runs first, in training mode, updating BN statistics."""
        raise NotImplementedError

    def perturbation(
        self, params: list[torch.Tensor], direction: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], dict]:
        """epsilon for each parameter from the ascent ``direction``; also extra logs."""
        raise NotImplementedError

    def descent_extra_term(self):
        """Per-chunk mean term ``f(logits, x, y)`` added to the loss in the descent pass, or None."""
        return None

    # ------------------------------------------------------------ one update
    def compute_gradients(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict:
        params = trainable_parameters(self.model)
        logs = self.ascent_pass(x, y, step)
        with torch.no_grad():
            direction = [g.detach() for g in grads_or_zeros(params)]
            epsilon, extra_logs = self.perturbation(params, direction)
            saved = [p.detach().clone() for p in params]
            for p, e in zip(params, epsilon, strict=True):
                p.add_(e)
        for p in params:
            p.grad = None
        try:
            with buffers_restored(self.model):
                perturbed_loss, _ = self.accumulate_loss_gradient(
                    x, y, extra=self.descent_extra_term()
                )
        finally:
            with torch.no_grad():
                for p, value in zip(params, saved, strict=True):
                    p.copy_(value)
        logs.update(extra_logs)
        logs["perturbation_norm"] = global_norm(epsilon)
        logs["perturbed_loss"] = perturbed_loss
        return logs
