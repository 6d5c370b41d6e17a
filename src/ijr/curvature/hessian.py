"""Sharpness: the top eigenvalue of the loss Hessian H = <grad^2 l> and of its Gauss-Newton part
G = <J M J^T> (eq. 9 of paper 000), over a probe set given as physical chunks.

The operator is the Hessian of the MEAN loss over every example of every chunk (chunk weights
len(chunk)/N), so the result does not depend on how the probe set is chunked. Products are exact:
Hessian-vector products by double backward through each chunk's gradient graph; Gauss-Newton
products as J^T (M (J v)) with J v a forward-mode JVP, M the Hessian of the loss in the logits and
J^T a VJP. The top eigenvalue is the largest ALGEBRAIC one (Lanczos with full
reorthogonalisation), not the largest in magnitude.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, jvp, vjp

from ijr.curvature._common import (
    Batch,
    EigenResult,
    cast_batches,
    chunk_weights,
    flatten,
    make_generator,
    measuring_copy,
    random_unit,
    trainable_parameters,
    unflatten,
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("lanczos", "power", "pyhessian")


# ----------------------------------------------------------------------------- eigensolvers
def lanczos_top(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    init: torch.Tensor | None,
    tol: float,
    max_iter: int,
    generator: torch.Generator,
    device,
    dtype,
) -> EigenResult:
    """Largest algebraic eigenvalue of a symmetric operator by Lanczos with full
    reorthogonalisation. Stops when the Ritz residual |beta_k s_k| <= tol * |theta|."""
    v = init.to(device=device, dtype=dtype).reshape(-1) if init is not None else None
    if v is None or v.numel() != n or not torch.isfinite(v).all() or float(v.norm()) == 0:
        v = random_unit(n, generator, device, dtype)
    v = v / v.norm()
    basis = [v]
    alphas: list[float] = []
    betas: list[float] = []
    theta, ritz, residual, converged = 0.0, None, float("inf"), False
    for k in range(max_iter):
        w = matvec(basis[-1])
        alpha = float(w @ basis[-1])
        alphas.append(alpha)
        stacked = torch.stack(basis)
        for _ in range(2):  # full reorthogonalisation, twice for stability
            w = w - stacked.T @ (stacked @ w)
        beta = float(w.norm())
        t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            t = t + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(t)
        theta = float(evals[-1])
        ritz = evecs[:, -1]
        residual = abs(beta * float(ritz[-1])) / max(abs(theta), 1e-30)
        if residual <= tol or beta <= 1e-12 * max(abs(theta), 1e-30) or k + 1 == n:
            converged = residual <= tol or beta <= 1e-12 * max(abs(theta), 1e-30) or k + 1 == n
            break
        betas.append(beta)
        basis.append(w / beta)
    stacked = torch.stack(basis[: len(alphas)])
    vector = ritz.to(device=device, dtype=dtype) @ stacked
    vector = vector / vector.norm()
    return EigenResult(theta, vector.detach(), len(alphas), residual, converged)


def power_top(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    init: torch.Tensor | None,
    tol: float,
    max_iter: int,
    generator: torch.Generator,
    device,
    dtype,
) -> EigenResult:
    """Power iteration (PyHessian's method). NOTE: it converges to the eigenvalue of largest
    MAGNITUDE, which is negative when the Hessian's most negative eigenvalue dominates; kept as a
    cross-check backend. Stops when the Rayleigh quotient changes by <= tol relatively."""
    v = (
        init.to(device=device, dtype=dtype).reshape(-1)
        if init is not None
        else random_unit(n, generator, device, dtype)
    )
    v = v / v.norm()
    value, products, converged = 0.0, 0, False
    w = matvec(v)
    products += 1
    for _ in range(max_iter):
        new = float(v @ w)
        v = w / w.norm()
        w = matvec(v)
        products += 1
        if abs(new - value) <= tol * max(abs(new), 1e-30):
            value, converged = new, True
            break
        value = new
    value = float(v @ w)
    residual = float((w - value * v).norm()) / max(abs(value), 1e-30)
    return EigenResult(value, v.detach(), products, residual, converged)


# --------------------------------------------------------------------------- operators
def _functional(model: nn.Module):
    names = [n for n, _ in trainable_parameters(model)]
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}

    def call(params: Sequence[torch.Tensor], x: torch.Tensor, buffers: dict) -> torch.Tensor:
        return functional_call(
            model, ({**dict(zip(names, params, strict=True)), **frozen}, buffers), (x,)
        )

    return call


def _fresh_buffers(model: nn.Module) -> dict:
    # BN in train mode writes running statistics: give it copies so the model's stay untouched
    return {n: b.detach().clone() for n, b in model.named_buffers()}


def hessian_vector_product(
    model: nn.Module, loss_fn: LossFn, batches: Sequence[Batch], vector: torch.Tensor
) -> torch.Tensor:
    """H v for the mean loss over all chunks, by double backward per chunk (exact)."""
    params = [p for _, p in trainable_parameters(model)]
    call = _functional(model)
    out = torch.zeros_like(vector)
    vs = unflatten(vector, params)
    for (x, y), weight in zip(batches, chunk_weights(batches), strict=True):
        leaves = [p.detach().requires_grad_(True) for p in params]
        loss = loss_fn(call(leaves, x, _fresh_buffers(model)), y)
        grads = torch.autograd.grad(loss, leaves, create_graph=True)
        hv = torch.autograd.grad(grads, leaves, grad_outputs=vs)
        out += weight * flatten(hv).detach()
    return out


def gauss_newton_vector_product(
    model: nn.Module, loss_fn: LossFn, batches: Sequence[Batch], vector: torch.Tensor
) -> torch.Tensor:
    """G v = <J M J^T> v (eq. 9): J v by a JVP, M (J v) by double backward of the loss in the
    logits (exact for any loss: diag(p) - p p^T for cross-entropy, with or without label
    smoothing; 2 I for the summed squared error), J^T by a VJP."""
    params = [p.detach() for _, p in trainable_parameters(model)]
    call = _functional(model)
    out = torch.zeros_like(vector)
    vs = tuple(unflatten(vector, params))
    for (x, y), weight in zip(batches, chunk_weights(batches), strict=True):
        buffers = _fresh_buffers(model)

        def logits_of(*ps, x=x, buffers=buffers):
            return call(ps, x, buffers)

        z, jv = jvp(logits_of, tuple(params), vs)
        zz = z.detach().requires_grad_(True)
        g = torch.autograd.grad(loss_fn(zz, y), zz, create_graph=True)[0]
        mjv = torch.autograd.grad(g, zz, grad_outputs=jv.detach())[0]
        _, pullback = vjp(logits_of, *params)
        out += weight * flatten(pullback(mjv)).detach()
    return out


# ------------------------------------------------------------------------------ public
def _solve(matvec, n, method, init, tol, max_iter, generator, device, dtype) -> EigenResult:
    kwargs = dict(
        init=init, tol=tol, max_iter=max_iter, generator=generator, device=device, dtype=dtype
    )
    if method == "lanczos":
        return lanczos_top(matvec, n, **kwargs)
    if method == "power":
        return power_top(matvec, n, **kwargs)
    raise ValueError(f"unknown method '{method}'; valid: {', '.join(METHODS)}")


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch],
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> EigenResult:
    """Sharpness ||H||_sigma: the largest algebraic eigenvalue of the Hessian of the mean loss
    over ``batches`` (a list of (inputs, targets) chunks). ``init`` warm-starts from a previous
    eigenvector; ``generator`` seeds the random start (never the global RNG); ``dtype`` computes in
    a float64 copy. ``method="pyhessian"`` calls the PyHessian package as the reference (power
    iteration: largest magnitude). The model is left exactly as found."""
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; valid: {', '.join(METHODS)}")
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"tol must be > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
    gen = make_generator(generator)
    with measuring_copy(model, dtype) as m:
        first = next(m.parameters())
        data = cast_batches(batches, first.device, first.dtype)
        if method == "pyhessian":
            return _pyhessian_top(m, loss_fn, data, tol, max_iter)
        n = sum(p.numel() for _, p in trainable_parameters(m))
        return _solve(
            lambda v: hessian_vector_product(m, loss_fn, data, v),
            n,
            method,
            init,
            tol,
            max_iter,
            gen,
            first.device,
            first.dtype,
        )


def gauss_newton_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Sequence[Batch],
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> EigenResult:
    """||G||_sigma, the top eigenvalue of the Gauss-Newton matrix G = <J M J^T> (eq. 9), by
    products J^T (M (J v)). Same arguments and result as :func:`hessian_top_eigenvalue`."""
    if method not in ("lanczos", "power"):
        raise ValueError(f"unknown method '{method}'; valid: lanczos, power")
    gen = make_generator(generator)
    with measuring_copy(model, dtype) as m:
        first = next(m.parameters())
        data = cast_batches(batches, first.device, first.dtype)
        n = sum(p.numel() for _, p in trainable_parameters(m))
        return _solve(
            lambda v: gauss_newton_vector_product(m, loss_fn, data, v),
            n,
            method,
            init,
            tol,
            max_iter,
            gen,
            first.device,
            first.dtype,
        )


def _pyhessian_top(
    model: nn.Module, loss_fn: LossFn, batches: Sequence[Batch], tol: float, max_iter: int
) -> EigenResult:
    """PyHessian's ``hessian(...).eigenvalues()`` as the reference. PyHessian switches the model to
    eval() and writes .grad (backward with create_graph=True): both are undone here."""
    from pyhessian import hessian as PyHessian

    params = [p for _, p in trainable_parameters(model)]
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    cuda = next(model.parameters()).is_cuda
    try:
        if len(batches) == 1:
            engine = PyHessian(model, loss_fn, data=batches[0], cuda=cuda)
        else:
            engine = PyHessian(model, loss_fn, dataloader=list(batches), cuda=cuda)
        values, vectors = engine.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
        value = float(values[0])
        vector = flatten([t.detach() for t in vectors[0]])
    finally:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
    return EigenResult(value, vector, -1, float("nan"), True)
