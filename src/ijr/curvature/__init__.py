"""Curvature of the training loss, pure torch (no Lightning, no Hydra): usable in a notebook.

Paper 000 (Lee, Park & Lee, ICML 2023):

* the logit Hessian M = diag(p) - p p^T (eq. 7) and its eigensystem (Theorem 4.1):
  :func:`logit_hessian_eigh`, the impurity lambda^(1) (:func:`impurity`; Algorithm 1 as
  :func:`impurity_power_iteration`) and the Gini bounds of Figure 1 (:func:`gini_bounds`);
* the sharpness ||H||_sigma and the Gauss-Newton ||G||_sigma with G = <J M J^T> (eq. 9):
  :func:`hessian_top_eigenvalue`, :func:`gauss_newton_top_eigenvalue` (Lanczos, power; the PyHessian reference lives in scripts/bench);
* the norms of the mean logit-weight Jacobian <J> (eq. 8, Algorithm 2, Appendices G-I):
  :func:`jacobian_norms`, per-example :func:`per_example_jacobian_norms`, and
  :func:`lambda_hat` = ||H|| / ||<J>||^2 (Section 5.1);
* rho_B and the threshold 2 rho_B / eta (Proposition 5.2): :func:`rho_b`, :func:`sgd_threshold`;
* gradient descent in the top Hessian subspace (Appendix D, Figures 8 and 10): the rank-ordered
  <Q Lambda^{1/2}> (:func:`logit_eigvec_heatmap`), the class means of m = sqrt(lambda^(1)) J q^(1)
  (:func:`margin_directions`), the alignment A_S of eq. 48 (:func:`subspace_alignment`),
  cos(-g, J q^(1)) (:func:`gradient_margin_cosine`) and the total gradient (:func:`mean_gradient`);
* weight and logit norms (Appendix F): :func:`weight_norm`, :func:`layer_weight_norms`,
  :func:`dist_from_init`, :func:`logit_stats`.

Paper 002 (MacDonald et al.): :func:`io_jacobian_max`, the spectral norm of the input-output
Jacobian of the softmaxed model, maximised over the probe set. Paper 004 (Li, Wang & Li):
:func:`output_layer_norm`.

Every function leaves the model exactly as found: parameters, buffers (BatchNorm running
statistics and ``num_batches_tracked``), ``.grad``, every module's train/eval flag (the caller
chooses the mode) and the global RNG; randomness comes from a ``torch.Generator`` argument
(default: a fresh one seeded with 0). ``dtype=torch.float64`` computes on a float64 copy of the
parameters and inputs. The device is that of the model's parameters.
"""

from .hessian import (
    gauss_newton_top_eigenvalue,
    gauss_newton_vector_product,
    hessian_top_eigenvalue,
    hessian_vector_product,
    split_like_parameters,
)
from .jacobian import (
    JacobianNorms,
    io_jacobian_max,
    io_jacobian_norms,
    jacobian_norms,
    lambda_hat,
    per_example_jacobian_norms,
)
from .logit_eigensystem import (
    PowerIterationResult,
    gini_bounds,
    impurity,
    impurity_power_iteration,
    logit_hessian_eigh,
    logit_hessian_matrix,
)
from .norms import (
    LogitStats,
    dist_from_init,
    layer_weight_norms,
    logit_stats,
    output_layer_norm,
    weight_norm,
)
from .sgd_noise import RhoB, mean_gradient, rho_b, sgd_threshold
from .solvers import EigenResult, lanczos_top, power_top
from .top_subspace import (
    MarginDirections,
    MarginStatistics,
    cosine,
    eigvec_jacobian_statistics,
    expected_random_cosine,
    gradient_margin_cosine,
    logit_eigvec_heatmap,
    margin_directions,
    margin_statistics,
    subspace_alignment,
    top_logit_eigvec,
)

logit_hessian = logit_hessian_matrix  # short alias: M = diag(p) - p p^T (eq. 7)

__all__ = [
    "EigenResult",
    "JacobianNorms",
    "LogitStats",
    "MarginDirections",
    "MarginStatistics",
    "PowerIterationResult",
    "RhoB",
    "cosine",
    "dist_from_init",
    "eigvec_jacobian_statistics",
    "expected_random_cosine",
    "gauss_newton_top_eigenvalue",
    "gauss_newton_vector_product",
    "gini_bounds",
    "gradient_margin_cosine",
    "hessian_top_eigenvalue",
    "hessian_vector_product",
    "impurity",
    "impurity_power_iteration",
    "io_jacobian_max",
    "io_jacobian_norms",
    "jacobian_norms",
    "lambda_hat",
    "lanczos_top",
    "layer_weight_norms",
    "logit_hessian",
    "logit_hessian_eigh",
    "logit_hessian_matrix",
    "logit_eigvec_heatmap",
    "logit_stats",
    "margin_directions",
    "margin_statistics",
    "mean_gradient",
    "output_layer_norm",
    "per_example_jacobian_norms",
    "power_top",
    "rho_b",
    "sgd_threshold",
    "split_like_parameters",
    "subspace_alignment",
    "top_logit_eigvec",
    "weight_norm",
]
