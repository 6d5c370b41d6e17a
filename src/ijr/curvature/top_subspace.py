"""Gradient descent in the top Hessian subspace (paper 000, Appendix D; Figures 8, 10, 30, 34).

* :func:`logit_eigvec_heatmap` -- the matrix Q Lambda^{1/2} = [sqrt(lambda^(1)) q^(1); ...;
  sqrt(lambda^(C-1)) q^(C-1); 0] of M = diag(p) - p p^T (eq. 45) averaged over examples, with the
  rows in probability-rank order so that the two salient entries q^(i)_(i) > 0 and
  q^(i)_(i+1) < 0 line up across examples (Figure 8; Figure 30 over training).
* :func:`margin_directions` -- the class means m_bar^i = <m>_{D_i} of m = sqrt(lambda^(1)) J q^(1)
  (eqs. 46-47), D_i = the examples whose MOST LIKELY class is i; S = span{m_bar^i}.
* :func:`subspace_alignment` -- A_S(v) = ||P_S(v)|| / ||v|| (eq. 48).
* :func:`gradient_margin_cosine` -- cos(-g, J q^(1)) per example (Figure 10, middle).
* :func:`mean_gradient` -- the total gradient g^D = <g> (Figure 10, left and right).
* :func:`margin_statistics` -- per example, the cosines of m(x) with every class mean m_bar^k
  and the mean resultant lengths (MRL) rho_i = ||<m / ||m||>_{D_i}|| (Figures 9, 31-33).
* :func:`eigvec_jacobian_statistics` -- ||J q^(i)|| relative to their mean and
  cos^2(J q^(i), J q^(j)) per example (Figure 11).

Signs: eq. (45) writes q^(i) = alpha (p_j / (p_j - lambda^(i)))_j with alpha > 0, so every entry
whose p_j exceeds lambda^(i) -- in particular q^(i)_(1) and q^(i)_(i) -- is positive; eigenvectors
here are oriented that way (q^(i)_(i) >= 0). Vectors in parameter space are flat, in the order of
the model's trainable ``named_parameters`` (the order of ``hessian_top_eigenvalue(...).vector``).

As everywhere in :mod:`ijr.curvature`, nothing here changes the model, ``.grad`` or the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ._functional import (
    Batch,
    FunctionalModel,
    LossFn,
    as_batches,
    as_inputs,
    check_loss_fn,
    check_model,
    rng_guard,
)
from ._precise import gram64
from .jacobian import _require_independent_examples
from .logit_eigensystem import logit_hessian_eigh
from .sgd_noise import mean_gradient


def _rank_oriented_eigvecs(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(eigenvalues (n, C) descending, eigenvectors (n, C, C) with q^(i)_(i) >= 0, order (n, C))
    where ``order[:, r]`` is the class of rank r (most likely first)."""
    lam, q = logit_hessian_eigh(p)
    order = torch.argsort(p, dim=-1, descending=True, stable=True)
    # q^(i)_(i), the entry of eigenvector i at the class ranked i, is the diagonal of ranked
    ranked = torch.gather(q, 1, order.unsqueeze(-1).expand_as(q))  # rows in rank order
    diag = torch.diagonal(ranked, dim1=-2, dim2=-1)
    sign = torch.where(diag < 0, -1.0, 1.0).to(q.dtype)
    return lam, q * sign.unsqueeze(-2), order


def logit_eigvec_heatmap(p: torch.Tensor) -> torch.Tensor:
    """<Q Lambda^{1/2}> over the rows of ``p`` in rank coordinates (Figure 8).

    Entry ``[r, i]`` is the mean over examples of sqrt(lambda^(i)) q^(i)_(r): row r is the class
    of rank r (the r-th most probable of each example), column i the i-th eigenpair of M in
    descending order (the last, lambda = 0, is the zero column). Eigenvectors are oriented with
    q^(i)_(i) >= 0 (eq. 45), so the diagonal is positive and the sub-diagonal (i+1, i) negative.

    Args:
        p: probabilities, shape (n, C).

    Returns:
        a (C, C) tensor in the dtype of ``p``.
    """
    if p.ndim != 2:
        raise ValueError(f"p must have shape (n, C), got {tuple(p.shape)}")
    lam, q, order = _rank_oriented_eigvecs(p)
    ranked = torch.gather(q, 1, order.unsqueeze(-1).expand_as(q))
    scaled = ranked * lam.clamp_min(0).sqrt().unsqueeze(-2)
    return scaled.mean(dim=0)


def top_logit_eigvec(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(lambda^(1), q^(1)) per row of ``p`` (n, C): the impurity and its eigenvector, oriented
    with q^(1)_(1) >= 0 (eq. 45)."""
    lam, q, _ = _rank_oriented_eigvecs(p)
    return lam[:, 0], q[:, :, 0]


@dataclass
class MarginDirections:
    """The class means of m = sqrt(lambda^(1)) J q^(1) (eqs. 46-47).

    Attributes:
        means: (C, m) -- row i is m_bar^i = <m>_{D_i}; a zero row where D_i is empty.
        counts: (C,) -- |D_i|, the number of examples whose most likely class is i.
        n_passes: reverse passes used.
    """

    means: torch.Tensor
    counts: torch.Tensor
    n_passes: int

    @property
    def all_classes_present(self) -> bool:
        """S is defined (as the paper uses it) only when every D_i is non-empty (Figure 34)."""
        return bool((self.counts > 0).all())

    def mean_cosines(self) -> torch.Tensor:
        """(C, C) cosine similarities between the m_bar^i (Figure 9, right); NaN for empty D_i."""
        gram = gram64(self.means)  # float64 accumulation over the m parameters
        norms = gram.diagonal().clamp_min(0).sqrt()
        cos = gram / torch.outer(norms, norms).clamp_min(torch.finfo(torch.float64).tiny)
        empty = self.counts == 0
        cos[empty, :] = math.nan
        cos[:, empty] = math.nan
        return cos


def margin_directions(
    model: nn.Module,
    inputs: Any,
    *,
    dtype: torch.dtype | None = None,
) -> MarginDirections:
    """m_bar^i = <sqrt(lambda^(1)(x)) J(x) q^(1)(x)>_{x in D_i} for every class i (eq. 47).

    sqrt(lambda^(1)) q^(1) is computed at the current parameters and held fixed, so
    sum_{x in D_i} m(x) = nabla_theta sum_{x in D_i} sqrt(lambda^(1)(x)) q^(1)(x)^T z(x): one
    reverse pass per class present in each input chunk (not one per example). With BatchNorm
    using batch statistics the chunk's logits are differentiated as the chunk computes them.

    Args:
        model: the network (logits of shape (batch, C)), in the mode the caller chose.
        inputs: input tensors (chunks) or (inputs, targets) chunks; targets are ignored.
        dtype: compute in this dtype on a copy of the parameters.
    """
    check_model(model)
    chunks = as_inputs(inputs)
    fm = FunctionalModel(model, dtype)
    leaves = fm.leaves()
    means: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    passes = 0
    with rng_guard(fm.device):
        for k, x in enumerate(chunks):
            z = fm.forward(leaves, fm.cast_input(x), chunk=k)
            if z.ndim != 2 or z.shape[-1] < 2:
                raise ValueError(
                    f"margin_directions needs logits of shape (batch, C >= 2), got {tuple(z.shape)}"
                )
            num_classes = z.shape[-1]
            if means is None:
                means = torch.zeros(
                    num_classes, fm.num_parameters, device=fm.device, dtype=fm.dtype
                )
                counts = torch.zeros(num_classes, dtype=torch.int64)
            with torch.no_grad():
                p = torch.softmax(z.detach().to(torch.float64), dim=-1)
                lam1, q1 = top_logit_eigvec(p)
                coef = (lam1.clamp_min(0).sqrt().unsqueeze(-1) * q1).to(z.dtype)
                top = p.argmax(dim=-1)
            present = torch.unique(top).tolist()
            for j, cls in enumerate(present):
                mask = (top == cls).to(z.dtype).unsqueeze(-1)
                grads = torch.autograd.grad(
                    (mask * coef * z).sum(),
                    leaves,
                    retain_graph=j < len(present) - 1,
                    allow_unused=True,
                    materialize_grads=True,
                )
                passes += 1
                means[cls] += torch.cat([g.reshape(-1) for g in grads])
                counts[cls] += int(mask.sum())
    assert means is not None and counts is not None
    nonzero = counts > 0
    means[nonzero.to(means.device)] /= counts[nonzero].to(means.device, means.dtype).unsqueeze(1)
    return MarginDirections(means=means, counts=counts, n_passes=passes)


def subspace_alignment(vector: torch.Tensor, basis: torch.Tensor, *, rtol: float = 1e-10) -> float:
    """A_S(v) = ||P_S(v)|| / ||v|| = cos(v, P_S(v)) (eq. 48), S = span of the rows of ``basis``.

    The projection uses an orthonormal basis of S from the thin SVD of ``basis`` (float64),
    dropping directions with singular values below ``rtol`` times the largest, so a rank-deficient
    set of spanning vectors is handled exactly. Zero rows are allowed; a zero basis or a zero
    ``vector`` raises.
    """
    v = vector.detach().reshape(-1).to(torch.float64)
    b = basis.detach().reshape(basis.shape[0], -1).to(torch.float64)
    if b.shape[1] != v.numel():
        raise ValueError(f"basis rows have {b.shape[1]} entries, the vector {v.numel()}")
    v_norm = float(v.norm())
    if v_norm == 0:
        raise ValueError("subspace_alignment of a zero vector is undefined")
    u, s, _ = torch.linalg.svd(b.T, full_matrices=False)
    if s.numel() == 0 or float(s[0]) == 0:
        raise ValueError("the basis spans no direction (all rows are zero)")
    keep = s > rtol * s[0]
    coords = u[:, keep].T @ v
    return min(1.0, float(coords.norm()) / v_norm)


def expected_random_cosine(dim: int) -> float:
    """E|cos(u, v)| of two independent uniformly random directions in R^dim (the dashed level of
    Figure 10, left): Gamma(dim/2) / (sqrt(pi) Gamma((dim+1)/2)), about sqrt(2 / (pi dim))."""
    if int(dim) < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    d = int(dim)
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(a, b) of two flat vectors, in float64."""
    a = a.detach().reshape(-1).to(torch.float64)
    b = b.detach().reshape(-1).to(torch.float64)
    denom = float(a.norm() * b.norm())
    if denom == 0:
        raise ValueError("the cosine with a zero vector is undefined")
    return float(a @ b) / denom


def gradient_margin_cosine(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch] | Batch,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """cos(-g(x), J(x) q^(1)(x)) for every example (Figure 10, middle).

    g(x) = nabla_theta l(z(x), y) is the example's loss gradient and J(x) q^(1)(x) =
    nabla_theta q^(1)^T z(x) with q^(1) of M at the current parameters (held fixed), oriented
    with q^(1)_(1) >= 0. For cross-entropy -g = J(e_y - p), which turns towards J q^(1) once the
    example is predicted correctly. Two reverse passes per example; the examples must be
    independent (no batch-statistics BatchNorm, no active dropout): put such models in eval mode.

    Returns:
        a float64 tensor of shape (N,) over all examples of all chunks.
    """
    check_model(model)
    loss_fn = check_loss_fn(loss_fn)
    chunks = as_batches(batches)
    _require_independent_examples(model, "gradient_margin_cosine")
    fm = FunctionalModel(model, dtype)
    leaves = fm.leaves()
    out = []
    with rng_guard(fm.device):
        for x, y in fm.cast_batches(chunks):
            for i in range(x.shape[0]):
                z = fm.forward(leaves, x[i : i + 1])
                g = torch.autograd.grad(
                    loss_fn(z, y[i : i + 1]), leaves, retain_graph=True, materialize_grads=True
                )
                with torch.no_grad():
                    _, q1 = top_logit_eigvec(torch.softmax(z.detach().to(torch.float64), dim=-1))
                jq = torch.autograd.grad(
                    (q1.to(z.dtype) * z).sum(), leaves, allow_unused=True, materialize_grads=True
                )
                out.append(
                    -cosine(
                        torch.cat([t.reshape(-1) for t in g]),
                        torch.cat([t.reshape(-1) for t in jq]),
                    )
                )
    return torch.tensor(out, dtype=torch.float64)


@dataclass
class MarginStatistics:
    """Per-example directional data of m = sqrt(lambda^(1)) J q^(1) (App. D, Figures 9, 31-33).

    Attributes:
        cos_to_means: (N, C) -- cos(m(x), m_bar^k) for every example and class mean (NaN for an
            empty D_k or a zero m(x)).
        mean_gram: (C, C) -- <m_bar^i, m_bar^j> (cosines between means and 2-D projections follow).
        counts: (C,) -- |D_i|.
        mrl: (C,) -- mean resultant length ||<m / ||m||>_{D_i}|| in [0, 1] (NaN for empty D_i).
        top1, top2: (N,) -- the most and second most likely class of each example.
    """

    cos_to_means: torch.Tensor
    mean_gram: torch.Tensor
    counts: torch.Tensor
    mrl: torch.Tensor
    top1: torch.Tensor
    top2: torch.Tensor


def _per_example_margin_vectors(fm: FunctionalModel, leaves, x: torch.Tensor):
    """Yield (m(x_i), p(x_i)) for the examples of ``x``, one reverse pass each."""
    for i in range(x.shape[0]):
        z = fm.forward(leaves, x[i : i + 1])
        with torch.no_grad():
            p = torch.softmax(z.detach().to(torch.float64), dim=-1)
            lam1, q1 = top_logit_eigvec(p)
            coef = (lam1.clamp_min(0).sqrt().unsqueeze(-1) * q1).to(z.dtype)
        grads = torch.autograd.grad(
            (coef * z).sum(), leaves, allow_unused=True, materialize_grads=True
        )
        yield torch.cat([g.reshape(-1) for g in grads]).to(torch.float64), p[0]


def margin_statistics(
    model: nn.Module, inputs: Any, *, dtype: torch.dtype | None = None
) -> MarginStatistics:
    """The directional statistics of m(x) over the examples of ``inputs`` (see
    :class:`MarginStatistics`): the class means by :func:`margin_directions` (one reverse pass per
    class), then m(x) of every example (one reverse pass each, not stored). The examples must be
    independent (no batch-statistics BatchNorm, no active dropout)."""
    check_model(model)
    chunks = as_inputs(inputs)
    _require_independent_examples(model, "margin_statistics")
    dirs = margin_directions(model, chunks, dtype=dtype)
    means = dirs.means.to(torch.float64)
    norms = means.norm(dim=1)
    num_classes = means.shape[0]
    fm = FunctionalModel(model, dtype)
    leaves = fm.leaves()
    unit_sums = torch.zeros_like(means)
    cos_rows, top1, top2 = [], [], []
    with rng_guard(fm.device):
        for x in chunks:
            for m, p in _per_example_margin_vectors(fm, leaves, fm.cast_input(x)):
                order = torch.argsort(p, descending=True)
                top1.append(int(order[0]))
                top2.append(int(order[1]))
                length = float(m.norm())
                if length == 0:
                    cos_rows.append(torch.full((num_classes,), math.nan, dtype=torch.float64))
                    continue
                unit = m / length
                unit_sums[int(order[0])] += unit
                with torch.no_grad():
                    cos = (means @ unit) / norms.clamp_min(torch.finfo(torch.float64).tiny)
                cos[norms == 0] = math.nan
                cos_rows.append(cos.cpu())
    counts = dirs.counts
    mrl = torch.full((num_classes,), math.nan, dtype=torch.float64)
    present = counts > 0
    mrl[present] = unit_sums[present.to(unit_sums.device)].norm(dim=1).cpu() / counts[present].to(
        torch.float64
    )
    return MarginStatistics(
        cos_to_means=torch.stack(cos_rows),
        mean_gram=(means @ means.T).cpu(),
        counts=counts,
        mrl=mrl,
        top1=torch.tensor(top1),
        top2=torch.tensor(top2),
    )


def eigvec_jacobian_statistics(
    model: nn.Module, inputs: Any, *, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Figure 11 for every example of ``inputs``: (ratios (N, C), cos_sq (N, C, C)) with
    ratios[n, i] = ||J q^(i)|| / (sum_j ||J q^(j)|| / C) and cos_sq[n, i, j] =
    cos^2(J q^(i), J q^(j)), q^(i) the eigenvectors of M in descending eigenvalue order (the last,
    lambda = 0, is 1/sqrt(C)). From the C x C Gram J^T J of the exact per-example Jacobian (C
    reverse passes per example); the examples must be independent."""
    check_model(model)
    chunks = as_inputs(inputs)
    _require_independent_examples(model, "eigvec_jacobian_statistics")
    fm = FunctionalModel(model, dtype)
    leaves = fm.leaves()
    ratios, cos_sq = [], []
    with rng_guard(fm.device):
        for x in chunks:
            x = fm.cast_input(x)
            for i in range(x.shape[0]):
                z = fm.forward(leaves, x[i : i + 1])[0]
                rows = []
                for c in range(z.shape[0]):
                    g = torch.autograd.grad(
                        z[c],
                        leaves,
                        retain_graph=c < z.shape[0] - 1,
                        allow_unused=True,
                        materialize_grads=True,
                    )
                    rows.append(torch.cat([t.reshape(-1) for t in g]).to(torch.float64))
                jac = torch.stack(rows)  # (C, m): row c = d z_c / d theta
                _, q = logit_hessian_eigh(torch.softmax(z.detach().to(torch.float64), dim=-1))
                jq = q.T @ jac  # row i = (J q^(i))^T
                gram = jq @ jq.T
                norm = gram.diagonal().clamp_min(0).sqrt()
                ratios.append((norm / norm.mean()).cpu())
                denom = torch.outer(norm, norm).clamp_min(torch.finfo(torch.float64).tiny)
                cos_sq.append((gram / denom).square().cpu())
    return torch.stack(ratios), torch.stack(cos_sq)


__all__ = [
    "MarginDirections",
    "MarginStatistics",
    "eigvec_jacobian_statistics",
    "margin_statistics",
    "cosine",
    "expected_random_cosine",
    "gradient_margin_cosine",
    "logit_eigvec_heatmap",
    "margin_directions",
    "mean_gradient",
    "subspace_alignment",
    "top_logit_eigvec",
]
