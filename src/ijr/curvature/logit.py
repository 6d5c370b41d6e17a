"""The logit Hessian M = diag(p) - p p^T (eq. 7) and its top eigenvalue, the *impurity*
lambda^(1) (Theorem 4.1 of paper 000).

``impurity`` solves the secular equation (eq. 10) v(lambda) = 1 - sum_i p_i^2 / (p_i - lambda) = 0
for its largest root, which lies in (p_(2), p_(1)) (Theorem 4.1 (c)) and in
[Gini(p_(1))/2, Gini(p_(1))] (Theorem 4.1 (d)); v is strictly decreasing there, so a safeguarded
Newton iteration inside that bracket converges for every row at once (O(N C) per iteration,
instead of an O(C^3) eigen-decomposition per row).
"""

from __future__ import annotations

import torch


def _check_probs(p: torch.Tensor) -> torch.Tensor:
    if p.dim() < 1 or p.shape[-1] < 2:
        raise ValueError(f"p must have shape (..., C) with C >= 2, got {tuple(p.shape)}")
    if not torch.is_floating_point(p):
        raise ValueError(f"p must be a floating-point tensor, got {p.dtype}")
    return p


def logit_hessian(p: torch.Tensor) -> torch.Tensor:
    """M = diag(p) - p p^T for every row of ``p`` (eq. 7 / eq. 4)."""
    p = _check_probs(p)
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def logit_hessian_eigh(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of M = diag(p) - p p^T per row.

    Computed by a symmetric eigensolver on the explicit C x C matrix, which is exact and robust
    for ties, zeros and near-one-hot p. Theorem 4.1 (a)-(b) (the eigenvalues are the roots of the
    secular equation (10), q^(i) is parallel to (diag(p) - lambda^(i) I)^-1 p) and (c)-(d) are
    verified against it in the tests; use :func:`impurity` for the top eigenvalue alone (fast).
    """
    evals, evecs = torch.linalg.eigh(logit_hessian(p))
    return evals.flip(-1), evecs.flip(-1)


def gini_bounds(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Theorem 4.1 (c)-(d) bounds on the impurity: (Gini(p_(1))/2, min{p_(1), Gini(p_(1))}) with
    Gini(q) = 2 q (1 - q)."""
    p1 = _check_probs(p).max(dim=-1).values
    half_gini = p1 * (1 - p1)
    return half_gini, torch.minimum(p1, 2 * half_gini)


def impurity(p: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
    """lambda^(1), the largest eigenvalue of M = diag(p) - p p^T, for every row of ``p``
    (Theorem 4.1 (a): the largest root of the secular equation (10)).

    Safeguarded Newton on v(lambda) inside the bracket
    [max(p_(2), Gini(p_(1))/2), min(p_(1), Gini(p_(1)))]; when p_(1) = p_(2) the answer is p_(1)
    (Theorem 4.1 (c)). Vectorised over rows; float64 input gives float64 accuracy.
    """
    p = _check_probs(p)
    shape = p.shape[:-1]
    q = p.reshape(-1, p.shape[-1])
    top2 = q.topk(2, dim=-1).values
    p1, p2 = top2[:, 0], top2[:, 1]
    lo = torch.maximum(p2, p1 * (1 - p1))
    hi = torch.minimum(p1, 2 * p1 * (1 - p1))
    tied = p2 >= p1  # Theorem 4.1 (c): p_(2) <= lambda <= p_(1)
    squares = q * q
    x = 0.5 * (lo + hi)
    eps = torch.finfo(q.dtype).eps
    for _ in range(max_iter):
        diff = q - x[:, None]
        # p_i == x only for p_i in {p_(1), p_(2)} at a bracket end; push x off the pole
        diff = torch.where(diff == 0, torch.full_like(diff, eps), diff)
        terms = squares / diff
        value = 1 - terms.sum(-1)  # v(x): > 0 left of the root, < 0 right of it
        slope = -(terms / diff).sum(-1)  # v'(x) < 0
        lo = torch.where(value > 0, x, lo)
        hi = torch.where(value < 0, x, hi)
        newton = x - value / slope
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        x_new = torch.where(inside, newton, 0.5 * (lo + hi))
        done = (
            ((x_new - x).abs() <= 4 * eps * x.abs())
            | (hi - lo <= 4 * eps * hi.abs())
            | (value == 0)
        )
        x = x_new
        if bool((done | tied).all()):
            break
    x = torch.where(tied, p1, x)
    return x.reshape(shape)


def impurity_power_iteration(
    p: torch.Tensor,
    max_iter: int = 1000,
    tol: float = 1e-12,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Algorithm 1 of paper 000 (Appendix E.5): power iteration on M per row, the paper's
    reference method. M is PSD, so the largest-magnitude eigenvalue is lambda^(1)."""
    m = logit_hessian(p)
    rows = m.reshape(-1, m.shape[-1], m.shape[-1])
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    u = torch.rand(rows.shape[0], rows.shape[-1], generator=gen, dtype=p.dtype).to(p.device) + 0.5
    u = u / u.norm(dim=-1, keepdim=True)
    value = torch.zeros(rows.shape[0], dtype=p.dtype, device=p.device)
    for _ in range(max_iter):
        mu = torch.einsum("nij,nj->ni", rows, u)
        norm = mu.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
        v = mu / norm
        new = (v * torch.einsum("nij,nj->ni", rows, v)).sum(-1)
        u = v
        if bool(((new - value).abs() <= tol * new.abs().clamp_min(tol)).all()):
            value = new
            break
        value = new
    return value.reshape(p.shape[:-1])
