"""Sharpness ||H||_sigma and the Gauss-Newton top eigenvalue ||G||_sigma (paper 000, eq. 9).

H is the Hessian of the MEAN loss L = <l> over all examples of all chunks (the probe set), with
respect to the trainable parameters; chunk k (n_k examples, loss_fn returning the chunk mean L_k)
enters with weight n_k / N, so the operator does not depend on how the probe set is chunked
(with batch-statistics BatchNorm the chunk is the batch the statistics are taken over).

Products:

* Hessian-vector: exact, by double backward -- ``grad(<grad L_k, v>)`` through the graph of
  ``grad L_k`` (``create_graph=True``). A kept graph saves the forward and first backward pass
  of every product. The graph is kept when the probe set is a single chunk (the default
  ``keep_graphs=None``: same peak memory as rebuilding it); with several chunks it is rebuilt per
  chunk per product, so the peak memory is that of one chunk, not of the probe set. Peak RSS
  growth measured on CPU (cnn6, 5,000 examples in 1,000-example chunks, relative to one training
  step on 1,000): double backward 1.48-1.51x, forward-over-reverse ``torch.func.jvp(grad(.))``
  2.2x, reverse-over-forward 2.1x; double backward was also not slower.
* Gauss-Newton-vector ``G v = sum_k w_k J_k^T M_k J_k v`` (eq. 9): ``J_k v`` by forward-mode AD
  (``torch.func.jvp``), ``M_k`` = the Hessian of the chunk loss with respect to the logits applied
  by double backward through ``loss_fn`` alone (exactly diag(p) - p p^T / n_k per example for
  cross-entropy, with or without label smoothing; 2/(n_k C) I for ``nn.MSELoss``), and ``J_k^T``
  by one backward pass.

Solvers: ``method="lanczos"`` (default, largest algebraic eigenvalue, warm start via ``init``),
``"power"`` (largest magnitude -- see :func:`ijr.curvature.solvers.power_top`). The PyHessian
package (the paper's Appendix E.4 tool) is the benchmarks' and tests' independent reference,
not a method here: running it needs the global RNG and default dtype, which this package leaves
alone; it is ``scripts/bench/pyhessian_reference.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._functional import (
    Batch,
    FunctionalModel,
    LossFn,
    as_batches,
    check_loss_fn,
    check_model,
    check_positive_int,
    check_tol,
    chunk_weights,
    flatten,
    make_generator,
    random_vector,
    rng_guard,
    unflatten,
)
from .solvers import EigenResult, lanczos_top, power_top

METHODS = ("lanczos", "power")


class _ChunkedOperator:
    """Shared state of the chunked operators: the probe set cast to the compute dtype, the weight
    n_k / N of each chunk, fresh autograd leaves holding theta, and whether graphs are kept
    between products (default: only for a single chunk)."""

    def __init__(
        self,
        fm: FunctionalModel,
        loss_fn: LossFn,
        batches: Sequence[Batch],
        keep_graphs: bool | None = None,
    ):
        self.fm = fm
        self.loss_fn = loss_fn
        self.batches = fm.cast_batches(batches)
        self.weights = chunk_weights([x.shape[0] for x, _ in self.batches])
        self.keep_graphs = len(self.batches) == 1 if keep_graphs is None else bool(keep_graphs)
        self.leaves = fm.leaves()
        self._kept = (
            [self._build(k) for k in range(len(self.batches))] if self.keep_graphs else None
        )

    def _build(self, k: int) -> Any:
        """The graph of chunk k that every product differentiates through (subclass)."""
        raise NotImplementedError

    def _graph(self, k: int) -> Any:
        """Chunk k's graph: the kept one, or built afresh (freed after its product)."""
        return self._kept[k] if self._kept is not None else self._build(k)


class LossHessian(_ChunkedOperator):
    """v -> H v for the mean loss over ``batches`` at the model's current parameters."""

    def _build(self, k: int) -> list[torch.Tensor | None]:
        """grad L_k with its graph (create_graph=True): the HVP differentiates through it."""
        x, y = self.batches[k]
        loss = self.weights[k] * self.loss_fn(self.fm.forward(self.leaves, x, chunk=k), y)
        if loss.ndim != 0:
            raise ValueError(
                f"loss_fn must return a scalar (the chunk mean), got shape {tuple(loss.shape)}"
            )
        grads = torch.autograd.grad(loss, self.leaves, create_graph=True, allow_unused=True)
        return [g if g is not None and g.requires_grad else None for g in grads]

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        pieces = unflatten(vector, self.leaves)
        total = None
        for k in range(len(self.batches)):
            grads = self._graph(k)
            used = [(g, v) for g, v in zip(grads, pieces, strict=True) if g is not None]
            if not used:
                continue
            hv = torch.autograd.grad(
                [g for g, _ in used],
                self.leaves,
                grad_outputs=[v for _, v in used],
                retain_graph=self._kept is not None,
                allow_unused=True,
                materialize_grads=True,
            )
            total = flatten(hv) if total is None else total.add_(flatten(hv))
        return torch.zeros_like(vector) if total is None else total


class GaussNewton(_ChunkedOperator):
    """v -> G v = sum_k (n_k/N) J_k^T M_k J_k v (eq. 9) at the model's current parameters."""

    def _build(self, k: int) -> torch.Tensor:
        """The logits of chunk k with their graph (J_k^T u is one backward through it)."""
        return self.fm.forward(self.leaves, self.batches[k][0], chunk=k)

    def _logit_hessian_product(self, k: int, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = logits.detach().requires_grad_(True)
        loss = self.weights[k] * self.loss_fn(z, self.batches[k][1])
        if loss.ndim != 0:
            raise ValueError(
                f"loss_fn must return a scalar (the chunk mean), got shape {tuple(loss.shape)}"
            )
        (gz,) = torch.autograd.grad(loss, z, create_graph=True)
        if not gz.requires_grad:  # loss linear in the logits: M = 0
            return torch.zeros_like(u)
        (mu,) = torch.autograd.grad(
            gz, z, grad_outputs=u, allow_unused=True, materialize_grads=True
        )
        return mu

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        tangents = tuple(unflatten(vector, self.leaves))
        primals = tuple(p.detach() for p in self.leaves)
        total = torch.zeros_like(vector)
        for k in range(len(self.batches)):
            x = self.batches[k][0]
            _, jv = torch.func.jvp(
                lambda *ps, x=x, k=k: self.fm.forward(list(ps), x, chunk=k), primals, tangents
            )
            logits = self._graph(k)
            mjv = self._logit_hessian_product(k, logits, jv)
            grads = torch.autograd.grad(
                logits,
                self.leaves,
                grad_outputs=mjv,
                retain_graph=self._kept is not None,
                allow_unused=True,
                materialize_grads=True,
            )
            total += flatten(grads)
        return total


def _solve(
    operator, fm: FunctionalModel, method: str, tol, max_iter, init, generator, max_basis, shift
) -> EigenResult:
    n = fm.num_parameters
    if init is None:
        start = random_vector(n, generator, fm.device, fm.dtype)
    else:
        start = _as_flat_vector(init, fm)
    if method == "lanczos":
        return lanczos_top(operator, start, tol=tol, max_iter=max_iter, max_basis=max_basis)
    return power_top(operator, start, tol=tol, max_iter=max_iter, shift=shift)


def _as_flat_vector(init: Any, fm: FunctionalModel) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        flat = init.detach().reshape(-1)
    elif isinstance(init, Sequence) and all(isinstance(t, torch.Tensor) for t in init):
        if len(init) != len(fm.point) or any(
            t.shape != p.shape for t, p in zip(init, fm.point, strict=True)
        ):
            raise ValueError(
                "init must be shaped like the trainable parameters (a flat vector or one tensor per parameter)"
            )
        flat = flatten([t.detach() for t in init])
    else:
        raise ValueError(
            f"init must be None, a flat tensor or a list of tensors, got {type(init).__name__}"
        )
    if flat.numel() != fm.num_parameters:
        raise ValueError(
            f"init has {flat.numel()} entries, the model has {fm.num_parameters} trainable parameters"
        )
    flat = flat.to(device=fm.device, dtype=fm.dtype)
    if not bool(torch.isfinite(flat).all()) or float(flat.norm()) == 0.0:
        raise ValueError("init must be finite and non-zero")
    return flat


def _check_method(method: str) -> str:
    if method == "pyhessian":
        raise ValueError(
            "method='pyhessian' is not part of ijr.curvature (PyHessian needs the global RNG and "
            "default dtype); use pyhessian_top_eigenvalue from scripts/bench/pyhessian_reference.py"
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch] | Batch,
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    init: torch.Tensor | Sequence[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    *,
    keep_graphs: bool | None = None,
    max_basis: int = 30,
    shift: float = 0.0,
) -> EigenResult:
    """Sharpness ||H||_sigma: the top eigenvalue of the Hessian H = <nabla^2 l> (eq. 9).

    Args:
        model: the network (any mode: the caller decides train/eval; nothing is changed).
        loss_fn: ``loss_fn(logits, targets)`` returning the chunk MEAN (e.g.
            ``nn.CrossEntropyLoss(label_smoothing=...)``, ``nn.MSELoss()``).
        batches: list of (inputs, targets) chunks whose union is the probe set (or one pair).
        method: ``"lanczos"`` (largest algebraic eigenvalue) or ``"power"`` (largest
            magnitude, optionally of H - shift I).
        tol: relative tolerance on the eigenvalue (the solvers' error estimates, see
            :func:`~ijr.curvature.solvers.lanczos_top` and :func:`~ijr.curvature.solvers.power_top`).
        max_iter: cap on Hessian-vector products.
        init: warm start (the previous ``result.vector``); default a random vector from
            ``generator``.
        generator: random source (default ``torch.Generator().manual_seed(0)``).
        dtype: compute in this dtype (e.g. ``torch.float64``) on a copy of the parameters.
        keep_graphs: keep each chunk's gradient graph between products (default: only when
            there is a single chunk).
        max_basis: Lanczos basis size before a restart.
        shift: power iteration on H - shift I (``method="power"`` only).

    Returns:
        :class:`EigenResult` (value, flat unit vector, n_products, residual, converged, ...).
    """
    check_model(model)
    loss_fn = check_loss_fn(loss_fn)
    batches = as_batches(batches)
    _check_method(method)
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    generator = make_generator(generator)
    if shift and method != "power":
        raise ValueError("shift is only used by method='power'")
    fm = FunctionalModel(model, dtype, generator)
    with rng_guard(fm.device):
        operator = LossHessian(fm, loss_fn, batches, keep_graphs)
        return _solve(operator, fm, method, tol, max_iter, init, generator, max_basis, shift)


def gauss_newton_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn | str,
    batches: Sequence[Batch] | Batch,
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    init: torch.Tensor | Sequence[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    *,
    keep_graphs: bool | None = None,
    max_basis: int = 30,
) -> EigenResult:
    """Top eigenvalue ||G||_sigma of the Gauss-Newton matrix G = <J M J^T> (eq. 9).

    ``loss_fn`` is a callable (chunk mean) or a kind: ``"cross_entropy"``
    (``nn.CrossEntropyLoss()``) or ``"mse"`` (``nn.MSELoss()``). M is the Hessian of the loss with
    respect to the logits, obtained by autograd from ``loss_fn`` itself, so any normalisation and
    label smoothing are exact. G is positive semi-definite for convex losses, so Lanczos and power
    iteration agree there. Arguments as in :func:`hessian_top_eigenvalue`.
    """
    check_model(model)
    loss_fn = _loss_from_kind(loss_fn)
    batches = as_batches(batches)
    _check_method(method)
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    generator = make_generator(generator)
    fm = FunctionalModel(model, dtype, generator)
    with rng_guard(fm.device):
        operator = GaussNewton(fm, loss_fn, batches, keep_graphs)
        return _solve(operator, fm, method, tol, max_iter, init, generator, max_basis, 0.0)


def _loss_from_kind(loss_fn: LossFn | str) -> LossFn:
    if isinstance(loss_fn, str):
        kinds = {"cross_entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss}
        if loss_fn not in kinds:
            raise ValueError(
                f"loss kind must be one of {', '.join(kinds)} or a callable, got {loss_fn!r}"
            )
        return kinds[loss_fn]()
    return check_loss_fn(loss_fn)


def hessian_vector_product(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch] | Batch,
    vector: torch.Tensor,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One exact product H v (flat ``vector`` over the trainable parameters) for the mean loss."""
    check_model(model)
    fm = FunctionalModel(model, dtype)
    with rng_guard(fm.device):
        return LossHessian(fm, check_loss_fn(loss_fn), as_batches(batches), keep_graphs=False)(
            _as_flat_vector(vector, fm)
        )


def gauss_newton_vector_product(
    model: nn.Module,
    loss_fn: LossFn | str,
    batches: Sequence[Batch] | Batch,
    vector: torch.Tensor,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One exact product G v (eq. 9) with G = <J M J^T> for the mean loss."""
    check_model(model)
    fm = FunctionalModel(model, dtype)
    with rng_guard(fm.device):
        return GaussNewton(fm, _loss_from_kind(loss_fn), as_batches(batches), keep_graphs=False)(
            _as_flat_vector(vector, fm)
        )


def split_like_parameters(vector: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """A flat vector over the trainable parameters as {name: tensor shaped like the parameter}."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return dict(
        zip([n for n, _ in trainable], unflatten(vector, [p for _, p in trainable]), strict=True)
    )
