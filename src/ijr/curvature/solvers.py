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
from ._precise import Float64Reductions

MatVec = Callable[[torch.Tensor], torch.Tensor]

# Lanczos stops only when the residual ||A y - theta y|| <= RESIDUAL_FACTOR * tol * |theta| (see
# lanczos_top: guards against converging on lambda_2).
RESIDUAL_FACTOR = 3.0
# a second Gram-Schmidt pass only when the first kept less than this fraction of the norm
REORTH_KEEP = 1 / math.sqrt(2)
# error estimates and residuals are never reported below this many eps of the products' dtype
# (see rounding_floor)
ROUNDING_FACTOR = 8.0


@dataclass
class EigenResult:
    """A top eigenvalue with the vector and the solver's diagnostics.

    Attributes:
        value: the eigenvalue estimate (largest algebraic for ``lanczos``; largest magnitude for
            ``power`` and for the PyHessian reference of scripts/bench, ``method="pyhessian"``).
        vector: unit eigenvector estimate, a flat tensor over the trainable parameters in
            ``named_parameters`` order (use :func:`ijr.curvature.split_like_parameters` to get
            per-parameter tensors); pass it back as ``init=`` to warm-start the next probe.
        n_products: operator applications used (Hessian-, Gauss-Newton- or Gram-vector products).
        residual: relative residual ||A v - value v|| / |value| of the returned pair (Lanczos:
            the recurrence estimate beta_k |s_k|; never below :func:`rounding_floor`; NaN where
            the backend does not expose it).
        converged: whether the stopping criterion was met within ``max_iter`` products.
        error_estimate: estimated relative error of ``value`` (Lanczos: min(r, r^2/gap)/|value|
            with the Ritz gap, at least the last change of theta_1; power: the last change
            extrapolated over the remaining geometric convergence; both never below
            :func:`rounding_floor`; tests/test_curvature_precision.py checks the true error is
            at most twice this at 0.66 M-36.5 M entries with float32 products).
        method: the solver used.
        ritz_values: Lanczos only: every Ritz value of the last tridiagonal matrix, descending.
        history: the eigenvalue estimate after each product, ``len(history) == n_products``
            (Lanczos: the top Ritz value, non-decreasing in exact arithmetic, restarts included;
            power: the Rayleigh quotient; empty for PyHessian, which does not expose it).
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


def _unit(v: torch.Tensor, reductions: Float64Reductions) -> torch.Tensor:
    norm = reductions.norm(v)
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("the start vector must be finite and non-zero")
    return v / norm


def rounding_floor(dtype: torch.dtype) -> float:
    """Relative error of a Ritz value that rounding alone can cause, with products in ``dtype``.

    The products A v carry a relative error of ~eps per entry and the basis is stored in
    ``dtype`` (its entries rounded to eps), so theta = y^T T y is known to about eps |theta|
    even with every reduction in float64; ``ROUNDING_FACTOR`` eps is a safe margin (measured on
    diagonal operators with float32 products, 0.66 M-36.5 M entries: the true error at tol 1e-7
    stayed below 2 eps). With float64 accumulation the floor does not grow with the length n."""
    return ROUNDING_FACTOR * torch.finfo(dtype).eps


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

    Precision: the basis and the products stay in the dtype of ``init`` (float32 for a float32
    model), but every reduction over the n entries -- alpha = q^T A q, the norms (beta) and the
    Gram-Schmidt coefficients -- is accumulated in float64 (:mod:`ijr.curvature._precise`), and
    the tridiagonal matrix and its eigenproblem are float64. With float32 reductions the Ritz
    value was off by 3.7e-3 relative at 36.5 M entries (WRN-28-10's size) while reporting
    convergence at tol 1e-4 with an error estimate of 1.4e-7 (tests/test_curvature_precision.py);
    with float64 reductions the error is <= 1e-7 at 0.66 M-36.5 M entries, below the estimate. Cost: no extra
    vector memory (the basis stays ``max_basis`` vectors in the products' dtype; two reused
    float64 buffers of at most 8 MB each); time: the solver's own work per step (excluding the
    product) was 1.1-2.0x that with float32 reductions on one CPU thread (20 steps, 20-vector
    basis: 50 vs 24 ms at 0.66 M entries, 0.82 vs 0.36 s at 9.75 M, 2.5 vs 2.1 s at 36.5 M;
    a shared, loaded machine) -- small against one HVP of a model that size. The reported
    ``error_estimate`` and ``residual`` are never below :func:`rounding_floor`, the error that
    rounding of the products alone can cause, so a ``tol`` below it cannot report convergence.

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
    reductions = Float64Reductions(init.device)
    v = _unit(init, reductions)
    state = _LanczosState(v, min(max_basis, v.numel()), reductions)
    while True:
        state.start(v)
        for j in range(state.basis_size):
            state.extend(matvec, j)
            result = state.check(j, tol, max_iter)
            if result is not None:
                return result
            state.append(j)
        # explicit restart from the top Ritz vector
        v = _unit(state.ritz_vector(state.basis_size), reductions)


class _LanczosState:
    """The Krylov basis, the tridiagonal matrix and the work vector of :func:`lanczos_top`."""

    def __init__(self, v: torch.Tensor, basis_size: int, reductions: Float64Reductions):
        self.n, self.device, self.dtype = v.numel(), v.device, v.dtype
        self.basis_size = basis_size
        self.red = reductions
        self.products = 0
        self.history: list[float] = []
        self.work = torch.empty_like(v)  # reused: fresh multi-MB temporaries cost page faults
        self.basis = torch.empty(basis_size, self.n, device=self.device, dtype=self.dtype)
        self.floor = rounding_floor(self.dtype)

    def start(self, v: torch.Tensor) -> None:
        self.basis[0] = v
        self.alphas: list[float] = []
        self.betas: list[float] = []

    def extend(self, matvec: MatVec, j: int) -> None:
        """w = A q_j - alpha q_j - beta q_{j-1}, then full reorthogonalisation against the whole
        basis, repeated only if it removed more than 1 - 1/sqrt(2) of the norm ("twice is
        enough"). The norm compared is that of the computed w, rounding noise of the recurrence
        included: folding the recurrence into one Gram-Schmidt pass of A q_j, with the exact
        recurrence residual as the reference, lost orthogonality on clustered spectra (measured:
        Ritz values 4x lambda_1 on a 10 x 10 Gram)."""
        work, basis = self.work, self.basis
        work.copy_(matvec(basis[j]))
        self.products += 1
        alpha = self.red.dot(work, basis[j])
        self.alphas.append(alpha)
        work.add_(basis[j], alpha=-alpha)
        if j > 0:
            work.add_(basis[j - 1], alpha=-self.betas[-1])
        active = basis[: j + 1]
        norm = self.red.norm(work)
        for _ in range(2):
            # float64 accumulation: the terms q_i,k w_k are not random-signed (for i = j they
            # are (lambda_k - alpha) q_k^2 for a diagonal A), and float32 coefficients left the
            # Ritz value 3e-4 low at 36.5 M entries (measured)
            coefficients = self.red.rows_dot(active, work).to(self.dtype)
            work.addmv_(active.T, coefficients, alpha=-1.0)
            before, norm = norm, self.red.norm(work)
            if norm > REORTH_KEEP * before:
                break
        self.beta = norm

    def check(self, j: int, tol: float, max_iter: int) -> EigenResult | None:
        """The Ritz pair after step j, returned as the result if the run stops here."""
        t = torch.diag(torch.tensor(self.alphas, dtype=torch.float64))
        if j > 0:
            off = torch.tensor(self.betas, dtype=torch.float64)
            t += torch.diag(off, 1) + torch.diag(off, -1)
        theta, s = torch.linalg.eigh(t)
        self.s = s
        top = float(theta[-1])
        self.history.append(top)
        scale = max(abs(top), torch.finfo(self.dtype).tiny)
        residual = max(self.beta * abs(float(s[-1, -1])), self.floor * scale)
        gap = float(theta[-1] - theta[-2]) if j > 0 else math.inf
        error = min(residual, residual * residual / gap) if gap > 0 else residual
        # and the change of theta_1 in the last step (none yet after the first product)
        history = self.history
        error = max(error, abs(top - history[-2]) if len(history) > 1 else math.inf)
        error = max(error, self.floor * scale)
        invariant = self.beta <= 64 * torch.finfo(self.dtype).eps * max(
            scale, max(abs(a) for a in self.alphas)
        )
        converged = invariant or (
            error <= tol * scale and residual <= RESIDUAL_FACTOR * tol * scale
        )
        if not (converged or self.products >= max_iter or j + 1 == self.n):
            return None
        vector = self.ritz_vector(j + 1)
        return EigenResult(
            value=top,
            vector=vector / self.red.norm(vector),
            n_products=self.products,
            residual=residual / scale,
            converged=bool(converged or j + 1 == self.n),
            error_estimate=error / scale,
            method="lanczos",
            ritz_values=theta.flip(0).tolist(),
            history=history,
        )

    def ritz_vector(self, size: int) -> torch.Tensor:
        """The top Ritz vector of the first ``size`` basis vectors (not normalised)."""
        return self.basis[:size].T @ self.s[:, -1].to(dtype=self.dtype, device=self.device)

    def append(self, j: int) -> None:
        if j + 1 < self.basis_size:
            torch.div(self.work, self.beta, out=self.basis[j + 1])
            self.betas.append(self.beta)


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
    A has a more negative eigenvalue (an indefinite Hessian).

    Stopping: the Rayleigh quotient converges geometrically, its error and its change per step
    both shrinking by rho = (lambda_2 / lambda_1)^2, so the error left after a change delta is
    about delta rho / (1 - rho). The error estimate is max(delta, delta rho / (1 - rho)) with rho
    the ratio of the last two changes (the residual ||A v - value v|| / |value| while the changes
    do not shrink); the run stops when it is <= tol. PyHessian stops on delta <= tol alone, which
    with lambda_2 / lambda_1 = 0.98 leaves an error 25x tol. Reductions are in float64, as in
    :func:`lanczos_top`.
    """
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    reductions = Float64Reductions(init.device)
    v = _unit(init, reductions)
    floor = rounding_floor(v.dtype)
    value = math.nan
    products = 0
    converged = False
    changes: list[float] = []
    error = math.inf
    history: list[float] = []
    av = v
    norm = residual = math.nan
    while products < max_iter:
        av = matvec(v)
        if shift:
            av = av - shift * v
        products += 1
        new = reductions.dot(v, av)
        history.append(new + shift)
        if math.isfinite(value):
            changes.append(abs(new - value) / max(abs(new), 1e-300))
        value = new
        norm = reductions.norm(av)
        # ||A v - value v||^2 = ||A v||^2 - value^2 for a unit v (float64: accurate to ~1e-8)
        residual = math.sqrt(max(norm * norm - value * value, 0.0)) / max(abs(value), 1e-300)
        if norm == 0.0:
            converged, error = True, floor
            break
        error = max(_extrapolated_error(changes, residual), floor)
        if error <= tol:
            converged = True
            break
        v = av / norm
    return EigenResult(
        value=value + shift,
        vector=v,
        n_products=products,
        residual=max(residual, floor),
        converged=converged,
        error_estimate=error,
        method="power",
        history=history,
    )


def _extrapolated_error(changes: list[float], residual: float) -> float:
    """The error left in the Rayleigh quotient after geometric convergence (see power_top)."""
    if not changes:
        return math.inf
    delta = changes[-1]
    if len(changes) >= 2 and changes[-2] > 0:
        rho = delta / changes[-2]
        if rho < 1:
            return max(delta, delta * rho / (1 - rho))
    # not (yet) shrinking: the residual bounds the distance to some eigenvalue
    return max(delta, residual)
