"""Top-eigenvalue solvers for a symmetric operator given only by its products (flat vectors).

* :func:`lanczos_top` -- Lanczos with full reorthogonalisation and explicit restarts; returns the
  largest *algebraic* eigenvalue (the top Ritz value), which is what the sharpness ||H||_sigma
  means in paper 000 (eq. 9) and paper 002 when H is indefinite.
* :func:`power_top` -- power iteration (the method of PyHessian and of the paper's Algorithms 1-2);
  it converges to the eigenvalue of largest *magnitude*, which is the sharpness only when that
  eigenvalue is positive. ``shift`` runs it on A - shift I instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._functional import check_positive_int, check_tol

MatVec = Callable[[torch.Tensor], torch.Tensor]

# Lanczos stops only when the residual ||A y - theta y|| <= RESIDUAL_FACTOR * tol * |theta| (see
# lanczos_top: guards against converging on lambda_2).
RESIDUAL_FACTOR = 3.0
# a second Gram-Schmidt pass only when the first kept less than this fraction of the norm
REORTH_KEEP = 1 / math.sqrt(2)


@dataclass
class EigenResult:
    """A top eigenvalue with the vector and the solver's diagnostics.

    Attributes:
        value: the eigenvalue estimate (largest algebraic for ``lanczos``; largest magnitude for
            ``power`` and ``pyhessian``).
        vector: unit eigenvector estimate, a flat tensor over the trainable parameters in
            ``named_parameters`` order (use :func:`ijr.curvature.split_like_parameters` to get
            per-parameter tensors); pass it back as ``init=`` to warm-start the next probe.
        n_products: operator applications used (Hessian-, Gauss-Newton- or Gram-vector products).
        residual: relative residual ||A v - value v|| / |value| of the returned pair (Lanczos:
            the exact recurrence estimate beta_k |s_k|; NaN where the backend does not expose it).
        converged: whether the stopping criterion was met within ``max_iter`` products.
        error_estimate: estimated relative error of ``value`` (Lanczos: min(r, r^2/gap)/|value|
            with the Ritz gap; power: relative change of the last step).
        method: the solver used.
        ritz_values: Lanczos only: every Ritz value of the last tridiagonal matrix, descending.
        history: the eigenvalue estimate after each product, ``len(history) == n_products``
            (Lanczos: the top Ritz value, non-decreasing in exact arithmetic, restarts included;
            power: the Rayleigh quotient; empty for ``pyhessian``, which does not expose it).
            With a converged reference it tells how many products an ideal stopping rule would
            have needed (scripts/bench/bench_curvature.py reports that).
    """

    value: float
    vector: torch.Tensor
    n_products: int
    residual: float
    converged: bool
    error_estimate: float = math.nan
    method: str = ""
    ritz_values: list[float] = field(default_factory=list)
    history: list[float] = field(default_factory=list)


def _unit(v: torch.Tensor) -> torch.Tensor:
    norm = torch.linalg.vector_norm(v)
    if not bool(torch.isfinite(norm)) or float(norm) == 0.0:
        raise ValueError("the start vector must be finite and non-zero")
    return v / norm


def lanczos_top(
    matvec: MatVec,
    init: torch.Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    max_basis: int = 30,
) -> EigenResult:
    """Largest algebraic eigenvalue of the symmetric operator ``matvec`` by Lanczos.

    Full reorthogonalisation (classical Gram-Schmidt against the whole basis after the three-term
    recurrence, a second pass when the first removed much of the norm: Kahan's "twice is enough") keeps
    the basis orthonormal to working precision, so no spurious copies of converged Ritz values
    appear; after ``max_basis`` steps the iteration restarts from the current top Ritz vector
    (explicit restart; memory is ``max_basis`` vectors).

    Stopping: with the top Ritz pair (theta, y), residual r = ||A y - theta y|| = beta_k |s_k| and
    Ritz gap g = theta_1 - theta_2, the eigenvalue error is estimated by min(r, r^2 / g)
    (Parlett, "The Symmetric Eigenvalue Problem", 11.7). Early on the Ritz gap overestimates the
    true gap (theta_2 is still far below lambda_2), so the estimate used is the larger of that and
    the change of theta_1 in the last step (theta_1 increases monotonically to lambda_1). The run
    stops when this estimate is <= tol |theta| and r <= RESIDUAL_FACTOR * tol |theta| (so at least
    two products), when the Krylov space becomes invariant (beta ~ 0: theta is exact), or after
    ``max_iter`` products (``converged=False``).

    Why the residual condition is that strict: r bounds the distance from theta to *some*
    eigenvalue, and r^2 / g is small as soon as theta has settled on one -- which, while the start
    vector's component along the top eigenvector is still small, can be lambda_2 (Lanczos
    misconvergence; a warm start from the previous probe's vector is exactly that case when the
    top two eigenvectors swap, as they do at the edge of stability). Measured on the 51 probes of a
    500-step fcn3 SGD trajectory (scripts/bench/bench_curvature.py): with the looser
    r <= sqrt(tol) |theta| two warm-started probes (and three cold ones) stopped on lambda_2
    (errors up to 13 %); with r <= 3 tol |theta| none did (worst error 2.7e-4 at tol 1e-3) for
    22 % more products. On the 51 probes of a 500-step cnn6 trajectory it used 374 products where
    an ideal stop (the first product within 1e-3, known only in hindsight from ``history``) needed
    264 -- the price of that guard. Other start vectors, tried offline on its first 11 probes (the
    probe-set gradient, which at the edge of stability is well aligned with the top eigenvector;
    its sum with the previous vector; the top vector of a 50-example sub-Hessian) saved at most one
    product per probe, and the gradient starts cost 6-21 % more on fcn3: not used.

    Args:
        matvec: v -> A v for flat vectors (A symmetric).
        init: start vector (e.g. the previous probe's eigenvector: a warm start).
        tol: relative tolerance on the eigenvalue.
        max_iter: cap on the number of products.
        max_basis: Krylov basis size before an explicit restart (>= 2).
    """
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    if check_positive_int("max_basis", max_basis) < 2:
        raise ValueError("max_basis must be >= 2")
    v = _unit(init)
    n, device, dtype = v.numel(), v.device, v.dtype
    products = 0
    history: list[float] = []
    basis_size = min(max_basis, n)
    work = torch.empty_like(v)  # reused: fresh multi-MB temporaries per step cost page faults
    while True:
        basis = torch.empty(basis_size, n, device=device, dtype=dtype)
        basis[0] = v
        alphas: list[float] = []
        betas: list[float] = []
        for j in range(basis_size):
            work.copy_(matvec(basis[j]))
            products += 1
            alpha = float(torch.dot(work, basis[j]))
            alphas.append(alpha)
            # three-term recurrence, then full reorthogonalisation against the whole basis,
            # repeated only if it removed more than 1 - 1/sqrt(2) of the norm ("twice is enough")
            work.add_(basis[j], alpha=-alpha)
            if j > 0:
                work.add_(basis[j - 1], alpha=-betas[-1])
            active = basis[: j + 1]
            norm = float(torch.linalg.vector_norm(work))
            for _ in range(2):
                work.addmv_(active.T, active @ work, alpha=-1.0)
                before, norm = norm, float(torch.linalg.vector_norm(work))
                if norm > REORTH_KEEP * before:
                    break
            beta = norm
            t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
            if j > 0:
                off = torch.tensor(betas, dtype=torch.float64)
                t += torch.diag(off, 1) + torch.diag(off, -1)
            theta, s = torch.linalg.eigh(t)
            top = float(theta[-1])
            history.append(top)
            scale = max(abs(top), torch.finfo(dtype).tiny)
            residual = beta * abs(float(s[-1, -1]))
            gap = float(theta[-1] - theta[-2]) if j > 0 else math.inf
            error = min(residual, residual * residual / gap) if gap > 0 else residual
            # and the change of theta_1 in the last step (none yet after the first product)
            error = max(error, abs(top - history[-2]) if len(history) > 1 else math.inf)
            invariant = beta <= 64 * torch.finfo(dtype).eps * max(
                scale, max(abs(a) for a in alphas)
            )
            converged = invariant or (
                error <= tol * scale and residual <= RESIDUAL_FACTOR * tol * scale
            )
            if converged or products >= max_iter or j + 1 == n:
                vector = active.T @ s[:, -1].to(dtype=dtype, device=device)
                return EigenResult(
                    value=top,
                    vector=vector / torch.linalg.vector_norm(vector),
                    n_products=products,
                    residual=residual / scale,
                    converged=bool(converged or j + 1 == n),
                    error_estimate=error / scale,
                    method="lanczos",
                    ritz_values=theta.flip(0).tolist(),
                    history=history,
                )
            if j + 1 < basis_size:
                torch.div(work, beta, out=basis[j + 1])
                betas.append(beta)
        # explicit restart from the top Ritz vector
        v = _unit(basis.T @ s[:, -1].to(dtype=dtype, device=device))


def power_top(
    matvec: MatVec,
    init: torch.Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    shift: float = 0.0,
) -> EigenResult:
    """Power iteration on A - shift I: v <- (A - shift I) v / ||.||.

    Converges to the eigenvalue of A - shift I of largest magnitude (plus ``shift``): with
    ``shift=0`` that is the largest-magnitude eigenvalue of A, NOT the largest algebraic one when
    A has a more negative eigenvalue (an indefinite Hessian). Stops when the Rayleigh quotient
    changes by <= tol (relative) between two steps, as PyHessian does.
    """
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    v = _unit(init)
    value = math.nan
    products = 0
    converged = False
    change = math.nan
    history: list[float] = []
    av = v
    while products < max_iter:
        av = matvec(v) - shift * v
        products += 1
        new = float(torch.dot(v, av))
        history.append(new + shift)
        change = abs(new - value) / max(abs(new), 1e-300) if math.isfinite(value) else math.inf
        value = new
        norm = torch.linalg.vector_norm(av)
        if float(norm) == 0.0:
            converged = True
            break
        if change <= tol:
            converged = True
            break
        v = av / norm
    residual = float(torch.linalg.vector_norm(av - value * v)) / max(abs(value), 1e-300)
    return EigenResult(
        value=value + shift,
        vector=v,
        n_products=products,
        residual=residual,
        converged=converged,
        error_estimate=change,
        method="power",
        history=history,
    )
