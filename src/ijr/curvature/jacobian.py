"""Jacobian norms: the mean logit-weight Jacobian <J> (paper 000, eq. 8, Sections 5.1-5.2,
Algorithm 2, Appendices G-I), per-example ||J(x)||, lambda_hat (Section 5.1) and the input-output
Jacobian of the softmaxed model (paper 002).

<J> = nabla_theta <z> is the m x C Jacobian of the batch-MEAN logits (denominator layout, eq. 8):

* <J> u  = nabla_theta <u^T z>  -- one reverse-mode pass (VJP) for u in R^C;
* <J>^T v = d<z>/dtheta [v]     -- one forward-mode pass (JVP) for v in R^m.

``jacobian_norms`` returns ||<J>|| (spectral), ||<J>||_F and ||<J> 1/sqrt(C)|| (the "<J>1-hat" of
Appendices G-H) by one of three methods:

* ``"jvp"`` (default, as docs/design.md's API fixes it): Lanczos on the C x C Gram K = <J>^T <J> with
  K u = <J>^T(<J> u) (one VJP + one JVP per step); gives the spectral norm and ``ones`` (one extra
  VJP); ``frobenius`` is None (it needs all C columns). Its cost per step does not grow with C:
  for C = 100 it is the fastest way to ||<J>|| (scripts/bench/bench_curvature.py).
* ``"exact"``: the C columns <J> e_c by C reverse passes through one forward graph per chunk,
  then the C x C Gram <J>^T <J> accumulated in float64 (blocks of the float32 columns copied to
  float64; no float64 copy of the columns): its largest eigenvalue, trace and 1^T K 1 / C give
  the three norms exactly (the probes use it, since they log all three). It holds the C x m columns in
  memory (C = 100, m = 36.5M for WRN-28-10 in float32: 14.6 GB -- use ``jvp`` there).
* ``"algorithm2"``: the paper's Algorithm 2 (Appendix E.5), power iteration with C+1 scalar
  differentiations per step, kept as the reference; it also yields the Frobenius and ``ones``
  norms from the C gradients it computes anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._functional import (
    FunctionalModel,
    as_inputs,
    check_model,
    check_positive_int,
    check_tol,
    couples_examples,
    flatten,
    make_generator,
    random_vector,
    rng_guard,
    unflatten,
)
from ._precise import Float64Reductions, gram64, norm64
from .solvers import lanczos_top

JACOBIAN_METHODS = ("exact", "jvp", "algorithm2")


@dataclass
class JacobianNorms:
    """Norms of the m x C Jacobian <J> of the mean logits (eq. 8).

    Attributes:
        spectral: ||<J>|| (largest singular value).
        frobenius: ||<J>||_F (None for ``method="jvp"``).
        ones: ||<J> 1/sqrt(C)||.
        num_classes: C.
        n_passes: reverse (VJP) plus forward-mode (JVP) passes over the probe set.
        converged: False only if an iterative method hit ``max_iter``.
        method: the method used.
        gram_eigenvalues: eigenvalues of <J>^T <J>, descending (``exact`` only).
    """

    spectral: float
    frobenius: float | None
    ones: float
    num_classes: int
    n_passes: int
    converged: bool
    method: str
    gram_eigenvalues: list[float] = field(default_factory=list)


class MeanLogitJacobian:
    """Products with <J> = nabla_theta <z> over input chunks (means over all examples)."""

    def __init__(
        self, fm: FunctionalModel, inputs: Sequence[torch.Tensor], keep_graphs: bool | None = None
    ):
        self.fm = fm
        self.inputs = [fm.cast_input(x) for x in inputs]
        self.total = sum(x.shape[0] for x in self.inputs)
        self.keep_graphs = len(self.inputs) == 1 if keep_graphs is None else bool(keep_graphs)
        self.leaves = fm.leaves()
        self.passes = 0
        first = self._summed_logits(0)
        self.num_classes = first.shape[-1]
        self._graphs = (
            [first] + [self._summed_logits(k) for k in range(1, len(self.inputs))]
            if self.keep_graphs
            else None
        )

    def _summed_logits(self, k: int) -> torch.Tensor:
        z = self.fm.forward(self.leaves, self.inputs[k], chunk=k)
        if z.ndim != 2:
            raise ValueError(
                f"the model must return logits of shape (batch, C), got {tuple(z.shape)}"
            )
        return z.sum(0) / self.total  # this chunk's share of <z>

    def _graph(self, k: int) -> torch.Tensor:
        return self._graphs[k] if self._graphs is not None else self._summed_logits(k)

    def _grad(
        self, output: torch.Tensor, retain: bool, cotangent: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.passes += 1
        grads = torch.autograd.grad(
            output,
            self.leaves,
            grad_outputs=cotangent,
            retain_graph=retain,
            allow_unused=True,
            materialize_grads=True,
        )
        return flatten(grads)

    def vjp(self, u: torch.Tensor) -> torch.Tensor:
        """<J> u = nabla_theta <u^T z> (flat, over the trainable parameters)."""
        return sum(
            self._grad(self._graph(k), self._graphs is not None, u) for k in range(len(self.inputs))
        )

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        """<J>^T v = d<z>/dtheta [v] (a C-vector)."""
        tangents = tuple(unflatten(v, self.leaves))
        primals = tuple(p.detach() for p in self.leaves)
        out = torch.zeros(self.num_classes, device=v.device, dtype=v.dtype)
        for k, x in enumerate(self.inputs):
            self.passes += 1
            _, t = torch.func.jvp(
                lambda *ps, x=x, k=k: self.fm.forward(list(ps), x, chunk=k).sum(0),
                primals,
                tangents,
            )
            out += t / self.total
        return out

    def columns(self) -> torch.Tensor:
        """All C columns <J> e_c as a (C, m) tensor (C reverse passes per chunk, one forward)."""
        cols = torch.zeros(
            self.num_classes, self.fm.num_parameters, device=self.fm.device, dtype=self.fm.dtype
        )
        for k in range(len(self.inputs)):
            s = self._graph(k)
            for c in range(self.num_classes):
                keep = self._graphs is not None or c + 1 < self.num_classes
                cols[c] += self._grad(s[c], keep)
        return cols


def jacobian_norms(
    model: nn.Module,
    inputs: Any,
    method: str = "jvp",
    tol: float = 1e-3,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    *,
    keep_graphs: bool | None = None,
) -> JacobianNorms:
    """||<J>||, ||<J>||_F and ||<J> 1/sqrt(C)|| for <J> = nabla_theta <z> (eq. 8).

    Args:
        model: the network (mode chosen by the caller; left untouched).
        inputs: a tensor, a list of input chunks, or (inputs, targets) chunks (targets unused);
            <.> is the mean over all examples of all chunks.
        method: ``"jvp"`` (default; ``frobenius`` is None), ``"exact"`` or ``"algorithm2"``
            (see the module docstring).
        tol: relative tolerance of the iterative methods (on ||<J>||^2 for ``jvp``, on ||<J>||
            for ``algorithm2``).
        max_iter: iteration cap of the iterative methods.
        generator: random start of the iterative methods (default seeded with 0).
        dtype: compute in this dtype on a copy of the parameters.
        keep_graphs: keep each chunk's forward graph between passes (default: single chunk).
    """
    check_model(model)
    chunks = as_inputs(inputs)
    if method not in JACOBIAN_METHODS:
        raise ValueError(f"method must be one of {', '.join(JACOBIAN_METHODS)}, got {method!r}")
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    generator = make_generator(generator)
    fm = FunctionalModel(model, dtype, generator)
    with rng_guard(fm.device):
        jac = MeanLogitJacobian(fm, chunks, keep_graphs)
        if method == "exact":
            return _exact(jac)
        if method == "jvp":
            return _lanczos_gram(jac, tol, max_iter, generator)
        return _algorithm2(jac, tol, max_iter, generator)


def _exact(jac: MeanLogitJacobian) -> JacobianNorms:
    cols = jac.columns()
    # float64 accumulation over the m entries (a float32 Gram was off by 3.3e-3 in the ones-norm
    # on a 9.76 M-parameter vgg11_bn; tests/test_curvature_precision.py)
    gram = gram64(cols)
    eigenvalues = torch.linalg.eigvalsh(gram).flip(0).clamp_min(0.0)
    c = jac.num_classes
    ones_sq = float(gram.sum()) / c
    return JacobianNorms(
        spectral=math.sqrt(float(eigenvalues[0])),
        frobenius=math.sqrt(max(float(torch.trace(gram)), 0.0)),
        ones=math.sqrt(max(ones_sq, 0.0)),
        num_classes=c,
        n_passes=jac.passes,
        converged=True,
        method="exact",
        gram_eigenvalues=eigenvalues.tolist(),
    )


def _ones_norm(jac: MeanLogitJacobian) -> float:
    c = jac.num_classes
    u = torch.full((c,), 1.0 / math.sqrt(c), device=jac.fm.device, dtype=jac.fm.dtype)
    return norm64(jac.vjp(u))


def _lanczos_gram(
    jac: MeanLogitJacobian, tol: float, max_iter: int, generator: torch.Generator
) -> JacobianNorms:
    c = jac.num_classes
    start = random_vector(c, generator, jac.fm.device, jac.fm.dtype)
    result = lanczos_top(
        lambda u: jac.jvp(jac.vjp(u)), start, tol=tol, max_iter=max_iter, max_basis=max(2, c)
    )
    ones = _ones_norm(jac)
    return JacobianNorms(
        spectral=math.sqrt(max(result.value, 0.0)),
        frobenius=None,
        ones=ones,
        num_classes=c,
        n_passes=jac.passes,
        converged=result.converged,
        method="jvp",
    )


def _algorithm2(
    jac: MeanLogitJacobian, tol: float, max_iter: int, generator: torch.Generator
) -> JacobianNorms:
    """Algorithm 2 of paper 000 (Appendix E.5), with its C+1 scalar differentiations per step."""
    c = jac.num_classes
    u = random_vector(c, generator, jac.fm.device, jac.fm.dtype)
    u = u / torch.linalg.vector_norm(u)
    red = Float64Reductions(jac.fm.device)
    estimate = math.nan
    converged = False
    frobenius = ones = math.nan
    for _ in range(max_iter):
        ju = jac.vjp(u)  # <J> u = grad <u^T z>: 1 scalar differentiation
        v = ju / red.norm(ju)
        grads = jac.columns()  # grad <z_c> for c = 1..C: C scalar differentiations
        jtv = red.rows_dot(grads, v)  # <J>^T v (a C-vector, float64)
        new = float(torch.linalg.vector_norm(jtv))  # = v^T <J> u with the updated u
        u = (jtv / new).to(jac.fm.dtype)
        frobenius = math.sqrt(max(float(torch.trace(red.gram(grads))), 0.0))
        ones = red.norm(grads.sum(0)) / math.sqrt(c)
        if math.isfinite(estimate) and abs(new - estimate) <= tol * abs(new):
            estimate = new
            converged = True
            break
        estimate = new
    return JacobianNorms(
        spectral=estimate,
        frobenius=frobenius,
        ones=ones,
        num_classes=c,
        n_passes=jac.passes,
        converged=converged,
        method="algorithm2",
    )


# ------------------------------------------------------------------ per-example ||J(x)|| ---------
def per_example_jacobian_norms(
    model: nn.Module,
    inputs: Any,
    dtype: torch.dtype | None = None,
    *,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """||J(x)|| (spectral norm of the m x C logit-weight Jacobian, eq. 8) for every example.

    Computed exactly: per-example Jacobians by ``vmap(jacrev)`` in micro-batches holding at most
    ``max_elements`` Jacobian entries, then the largest eigenvalue of each C x C Gram J^T J.
    The examples must be independent (no BatchNorm using batch statistics, no active dropout):
    otherwise a ``ValueError`` asks for eval mode.

    Returns:
        a tensor of shape (N,) over all examples of all chunks, in the compute dtype.
    """
    check_model(model)
    chunks = as_inputs(inputs)
    _require_independent_examples(model, "per_example_jacobian_norms")
    fm = FunctionalModel(model, dtype)
    primals = tuple(fm.point)

    def single(params: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
        return fm.forward(list(params), x.unsqueeze(0)).squeeze(0)

    per_example = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))
    out = []
    with rng_guard(fm.device):
        for x in chunks:
            x = fm.cast_input(x)
            num_classes = fm.forward(list(primals), x[:1]).shape[-1]
            micro = max(1, max_elements // max(1, num_classes * fm.num_parameters))
            for start in range(0, x.shape[0], micro):
                jac = per_example(primals, x[start : start + micro])
                gram = sum(_batched_gram64(j, num_classes) for j in jac)
                top = torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0.0)
                out.append(top.sqrt().to(fm.dtype))
    return torch.cat(out)


def _batched_gram64(jac: torch.Tensor, num_classes: int) -> torch.Tensor:
    """J J^T per example, in float64, for one parameter tensor's per-example Jacobians."""
    rows = jac.reshape(jac.shape[0], num_classes, -1).to(torch.float64)
    return rows @ rows.transpose(1, 2)


def _require_independent_examples(model: nn.Module, name: str) -> None:
    if couples_examples(model):
        raise ValueError(
            f"{name} needs independent examples: put the BatchNorm layers in eval mode (they use batch statistics now)"
        )
    if any(
        isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0
        for m in model.modules()
    ):
        raise ValueError(f"{name} needs a deterministic model: put the dropout layers in eval mode")


# ------------------------------------------------------------------ lambda_hat -------------------
def lambda_hat(sharpness: float, jacobian_spectral_sq: float) -> float:
    """lambda_hat = ||H||_sigma / ||<J>||^2 (Section 5.1, Figure 2: ||H|| = lambda_hat ||<J>||^2)."""
    sharpness, denominator = float(sharpness), float(jacobian_spectral_sq)
    if not math.isfinite(denominator) or denominator <= 0:
        raise ValueError(f"jacobian_spectral_sq must be positive and finite, got {denominator}")
    if not math.isfinite(sharpness):
        raise ValueError(f"sharpness must be finite, got {sharpness}")
    return sharpness / denominator


# ------------------------------------------------------------------ input-output Jacobian --------
def io_jacobian_norms(
    model: nn.Module, inputs: Any, dtype: torch.dtype | None = None, *, softmax: bool = True
) -> torch.Tensor:
    """Per-example spectral norm ||d softmax(f(x)) / dx||_2 (paper 002, Sections 4-5, App. A.1);
    ``softmax=False``: ||d f(x) / dx||_2 of the model itself (the regression networks of App. C.3).

    Exact: the C rows of each example's C x d Jacobian by C reverse passes (with independent
    examples the gradient of sum_i softmax(f(x_i))_c with respect to the batch gives every
    example's row c), then the largest eigenvalue of each C x C Gram. Needs independent examples
    (BatchNorm in eval mode, as paper 002 does for this norm).
    """
    check_model(model)
    chunks = as_inputs(inputs)
    _require_independent_examples(model, "io_jacobian_norms")
    fm = FunctionalModel(model, dtype)
    out = []
    with rng_guard(fm.device):
        for k, x in enumerate(chunks):
            x = fm.cast_input(x)
            if not x.is_floating_point():
                raise ValueError("the input-output Jacobian needs floating inputs")
            x = x.detach().requires_grad_(True)
            out_x = fm.forward(fm.point, x, chunk=k)
            probs = torch.softmax(out_x, dim=-1) if softmax else out_x
            num_classes = probs.shape[-1]
            rows = []
            for c in range(num_classes):
                (g,) = torch.autograd.grad(probs[:, c].sum(), x, retain_graph=c + 1 < num_classes)
                rows.append(g.reshape(x.shape[0], -1))
            jac = torch.stack(rows, dim=1)  # (n, C, d)
            jac = jac.to(torch.float64)  # reductions over the d inputs in float64
            gram = jac @ jac.transpose(1, 2)
            out.append(torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0.0).sqrt().to(fm.dtype))
    return torch.cat(out)


def io_jacobian_max(
    model: nn.Module,
    inputs: Any,
    dtype: torch.dtype | None = None,
    *,
    tol: float = 1e-6,
    max_iter: int = 200,
    generator: torch.Generator | None = None,
) -> float:
    """max over the probe set of ||J f(X)||_2 for f = softmax(model(.)) (paper 002, App. A.1).

    Paper 002 uses the spectral norm of the input-output Jacobian of the *softmaxed* model. With
    independent examples (eval-mode BatchNorm, as paper 002 measures it) the Jacobian of a chunk
    is block diagonal and its norm is the maximum of the per-example norms (002, eq. 26), computed
    exactly by :func:`io_jacobian_norms`. With batch-statistics BatchNorm the examples of a chunk
    are coupled (002, eq. 27) and the norm of the whole chunk map is computed by Lanczos on
    J J^T (output space; ``tol``, ``max_iter``, ``generator``), the maximum taken over chunks.
    """
    check_model(model)
    chunks = as_inputs(inputs)
    if not couples_examples(model):
        return float(io_jacobian_norms(model, chunks, dtype).max())
    tol = check_tol(tol)
    generator = make_generator(generator)
    fm = FunctionalModel(model, dtype, generator)
    best = 0.0
    with rng_guard(fm.device):
        for k, x in enumerate(chunks):
            x = fm.cast_input(x).detach()
            if not x.is_floating_point():
                raise ValueError("the input-output Jacobian needs floating inputs")
            xg = x.clone().requires_grad_(True)
            probs = torch.softmax(fm.forward(fm.point, xg, chunk=k), dim=-1)

            def matvec(w: torch.Tensor, probs=probs, xg=xg, x=x, k=k) -> torch.Tensor:
                (g,) = torch.autograd.grad(
                    probs, xg, grad_outputs=w.view_as(probs), retain_graph=True
                )
                _, jg = torch.func.jvp(
                    lambda xx: torch.softmax(fm.forward(fm.point, xx, chunk=k), dim=-1), (x,), (g,)
                )
                return jg.reshape(-1)

            start = random_vector(probs.numel(), generator, fm.device, fm.dtype)
            result = lanczos_top(matvec, start, tol=tol, max_iter=max_iter)
            best = max(best, math.sqrt(max(result.value, 0.0)))
    return best
