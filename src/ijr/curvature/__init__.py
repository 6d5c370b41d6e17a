"""Curvature of the training loss, pure torch (no Lightning, no Hydra): usable in a notebook.

Paper 000 (Lee, Park & Lee, ICML 2023): the logit Hessian M = diag(p) - p p^T (eq. 7) and its
top eigenvalue, the impurity (Theorem 4.1); the sharpness ||H|| and the Gauss-Newton ||G||
(eq. 9); the norms of the mean logit-weight Jacobian <J> (eq. 8, Algorithm 2); rho_B and the
threshold 2 rho_B / eta (Proposition 5.2); lambda_hat = ||H|| / ||<J>||^2 (Section 5.1); the
input-output Jacobian of the softmaxed model (paper 002); weight and logit norms (Appendix F).

Every function leaves the model exactly as found: parameters, buffers (BatchNorm running
statistics), ``.grad``, the train/eval flag and the global RNG. The caller chooses the mode.
"""

from ijr.curvature._common import EigenResult
from ijr.curvature.hessian import (
    gauss_newton_top_eigenvalue,
    gauss_newton_vector_product,
    hessian_top_eigenvalue,
    hessian_vector_product,
    lanczos_top,
    power_top,
)
from ijr.curvature.jacobian import (
    JacobianNorms,
    io_jacobian_max,
    jacobian_norms,
    lambda_hat,
    per_example_jacobian_norms,
    rho_b,
    sgd_threshold,
)
from ijr.curvature.logit import (
    gini_bounds,
    impurity,
    impurity_power_iteration,
    logit_hessian,
    logit_hessian_eigh,
)
from ijr.curvature.norms import (
    LogitStats,
    dist_from_init,
    layer_weight_norms,
    logit_stats,
    output_layer_norm,
    weight_norm,
)

__all__ = [
    "EigenResult",
    "JacobianNorms",
    "LogitStats",
    "dist_from_init",
    "gauss_newton_top_eigenvalue",
    "gauss_newton_vector_product",
    "gini_bounds",
    "hessian_top_eigenvalue",
    "hessian_vector_product",
    "impurity",
    "impurity_power_iteration",
    "io_jacobian_max",
    "jacobian_norms",
    "lambda_hat",
    "lanczos_top",
    "layer_weight_norms",
    "logit_hessian",
    "logit_hessian_eigh",
    "logit_stats",
    "output_layer_norm",
    "per_example_jacobian_norms",
    "power_top",
    "rho_b",
    "sgd_threshold",
    "weight_norm",
]
