"""rho_B and the SGD stability threshold 2 rho_B / eta (paper 000, Proposition 5.2, Appendix C.5).

rho_B = ||<g>||^2 / E_{|B|=B} ||<g>_B||^2 <= 1, where <g> is the gradient of the mean loss over
the probe set and <g>_B that over a mini-batch of B examples drawn without replacement; for SGD
on a quadratic the expected loss decreases while ||H||_sigma <= 2 rho_B / eta (eq. 40). For
full-batch GD rho_B = 1 and the threshold is Cohen et al.'s 2 / eta.
"""

from __future__ import annotations

import math
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
    chunk_weights,
    flatten,
    make_generator,
    rng_guard,
)
from ._precise import Float64Reductions


class RhoB(float):
    """rho_B of Proposition 5.2 -- a float -- carrying its two ingredients.

    Attributes:
        full_grad_norm_sq: ||<g>||^2 over ``batches``.
        mean_minibatch_grad_norm_sq: the Monte-Carlo estimate of E||<g>_B||^2.
        minibatch_grad_norm_sq_sem: its standard error (NaN for a single mini-batch).
        num_minibatches: K, the number of mini-batches averaged.
    """

    full_grad_norm_sq: float
    mean_minibatch_grad_norm_sq: float
    minibatch_grad_norm_sq_sem: float
    num_minibatches: int

    def __new__(
        cls,
        full_grad_norm_sq: float,
        mean_minibatch_grad_norm_sq: float,
        minibatch_grad_norm_sq_sem: float,
        num_minibatches: int,
    ) -> RhoB:
        obj = super().__new__(cls, full_grad_norm_sq / mean_minibatch_grad_norm_sq)
        obj.full_grad_norm_sq = full_grad_norm_sq
        obj.mean_minibatch_grad_norm_sq = mean_minibatch_grad_norm_sq
        obj.minibatch_grad_norm_sq_sem = minibatch_grad_norm_sq_sem
        obj.num_minibatches = num_minibatches
        return obj

    @property
    def value(self) -> float:
        return float(self)

    def __repr__(self) -> str:
        return (
            f"RhoB({float(self)!r}, full_grad_norm_sq={self.full_grad_norm_sq!r}, "
            f"mean_minibatch_grad_norm_sq={self.mean_minibatch_grad_norm_sq!r}, num_minibatches={self.num_minibatches})"
        )


def _gradient(
    fm: FunctionalModel, loss_fn: LossFn, chunks: Sequence[Batch], leaves: list[torch.Tensor]
) -> torch.Tensor:
    weights = chunk_weights([x.shape[0] for x, _ in chunks])
    total = torch.zeros(fm.num_parameters, device=fm.device, dtype=fm.dtype)
    for k, ((x, y), w) in enumerate(zip(chunks, weights, strict=True)):
        loss = loss_fn(fm.forward(leaves, x, chunk=k), y)
        if loss.ndim != 0:
            raise ValueError(
                f"loss_fn must return a scalar (the chunk mean), got shape {tuple(loss.shape)}"
            )
        grads = torch.autograd.grad(w * loss, leaves, allow_unused=True, materialize_grads=True)
        total += flatten(grads)
    return total


def mean_gradient(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch] | Batch,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """<g> = nabla_theta of the mean loss over all examples of ``batches`` (chunks weighted by
    size, so the result does not depend on the chunking), as one flat vector in the order of the
    model's trainable ``named_parameters``; the total gradient g^D of Appendix D / Figure 10."""
    check_model(model)
    loss_fn = check_loss_fn(loss_fn)
    chunks = as_batches(batches)
    fm = FunctionalModel(model, dtype)
    with rng_guard(fm.device):
        return _gradient(fm, loss_fn, fm.cast_batches(chunks), fm.leaves()).detach()


def rho_b(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch] | Batch,
    minibatches: Any = None,
    *,
    batch_size: int | None = None,
    num_minibatches: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> RhoB:
    """rho_B = ||<g>||^2 / E||<g>_B||^2 (Proposition 5.2), the expectation by Monte Carlo.

    Args:
        model, loss_fn: as for :func:`ijr.curvature.hessian_top_eigenvalue` (chunk-mean loss).
        batches: the set as (inputs, targets) chunks; <g> is the gradient of its mean loss. The
            mini-batches must be drawn from this same set: with <g> over a set smaller than B
            and mini-batches from a larger one, ||<g>||^2 carries more sampling noise than
            E||<g>_B||^2 and the ratio can exceed 1.
        minibatches: the mini-batches of the expectation, one of
            * a list of (inputs, targets) mini-batches (used as given);
            * a list of 1-D index tensors into the probe set (examples numbered across chunks);
            * None: ``num_minibatches`` (K) mini-batches of ``batch_size`` (B) examples, each
              drawn without replacement from the probe set with ``generator``.
        generator: random source for drawing mini-batches (default seeded with 0).
        dtype: compute in this dtype on a copy of the parameters.

    With batch-statistics BatchNorm each mini-batch is normalised with its own statistics (as in
    the SGD step it models) and the probe-set gradient with each chunk's.
    """
    check_model(model)
    loss_fn = check_loss_fn(loss_fn)
    chunks = as_batches(batches)
    fm = FunctionalModel(model, dtype, generator)
    with rng_guard(fm.device):
        chunks = fm.cast_batches(chunks)
        mini = _minibatches(chunks, minibatches, batch_size, num_minibatches, generator, fm)
        leaves = fm.leaves()
        full = _gradient(fm, loss_fn, chunks, leaves)
        # squared norms over the m parameters accumulated in float64 (positive sums: float32
        # loses ~1e-3 of them at 36.5 M entries on CPU)
        red = Float64Reductions(fm.device)
        norms = torch.tensor(
            [red.norm(_gradient(fm, loss_fn, [b], leaves)) ** 2 for b in mini],
            dtype=torch.float64,
        )
        full_sq = red.norm(full) ** 2
    mean_sq = float(norms.mean())
    sem = float(norms.std(unbiased=True) / math.sqrt(len(norms))) if len(norms) > 1 else math.nan
    if mean_sq <= 0:
        raise ValueError("every mini-batch gradient is zero: rho_B is undefined")
    return RhoB(
        full_grad_norm_sq=full_sq,
        mean_minibatch_grad_norm_sq=mean_sq,
        minibatch_grad_norm_sq_sem=sem,
        num_minibatches=len(norms),
    )


def _minibatches(chunks, minibatches, batch_size, num_minibatches, generator, fm) -> list[Batch]:
    total = sum(x.shape[0] for x, _ in chunks)
    if minibatches is None:
        if batch_size is None or num_minibatches is None:
            raise ValueError("pass minibatches, or batch_size and num_minibatches to draw them")
        check_positive_int("batch_size", batch_size)
        check_positive_int("num_minibatches", num_minibatches)
        if batch_size > total:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {total} examples of the probe set"
            )
        gen = make_generator(generator)
        minibatches = [
            torch.randperm(total, generator=gen, device=gen.device)[:batch_size]
            for _ in range(num_minibatches)
        ]
    elif batch_size is not None or num_minibatches is not None:
        raise ValueError("pass either minibatches or (batch_size, num_minibatches), not both")
    if not isinstance(minibatches, Sequence) or len(minibatches) == 0:
        raise ValueError(
            "minibatches must be a non-empty list of (inputs, targets) pairs or index tensors"
        )
    if all(isinstance(m, torch.Tensor) for m in minibatches):
        xs = torch.cat([x for x, _ in chunks])
        ys = torch.cat([y for _, y in chunks])
        out = []
        for idx in minibatches:
            if idx.ndim != 1 or idx.numel() == 0 or idx.dtype not in (torch.int32, torch.int64):
                raise ValueError("index mini-batches must be non-empty 1-D integer tensors")
            if int(idx.min()) < 0 or int(idx.max()) >= total:
                raise ValueError(f"mini-batch indices must lie in [0, {total})")
            idx = idx.to(xs.device)
            out.append((xs[idx], ys[idx]))
        return out
    return fm.cast_batches(as_batches(list(minibatches), name="minibatches"))


def sgd_threshold(rho_b: float, lr: float) -> float:
    """The sharpness threshold 2 rho_B / eta of Proposition 5.2 (2 / eta for full-batch GD)."""
    rho_b, lr = float(rho_b), float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr}")
    if not (math.isfinite(rho_b) and rho_b > 0):
        raise ValueError(f"rho_b must be positive, got {rho_b}")
    return 2.0 * rho_b / lr
