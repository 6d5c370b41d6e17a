"""Norms of <J>, the m x C Jacobian of the batch-mean logits w.r.t. the parameters (eq. 8 of
paper 000), and the other probe quantities that need derivatives: rho_B of Proposition 5.2 and
the input-output Jacobian of the softmaxed model (companion paper 002).

<J> u = grad_theta <u^T z> is one VJP; <J>^T a = d<z>/dtheta . a is one JVP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from ijr.curvature._common import (
    Batch,
    as_batches,
    cast_batches,
    chunk_weights,
    flatten,
    make_generator,
    measuring_copy,
    random_unit,
    trainable_parameters,
    unflatten,
)
from ijr.curvature.hessian import _fresh_buffers, _functional, lanczos_top

JAC_METHODS = ("exact", "jvp", "algorithm2")


@dataclass
class JacobianNorms:
    """||<J>||, ||<J>||_F and ||<J> 1/sqrt(C)|| (not squared) with diagnostics."""

    spectral: float
    frobenius: float
    ones: float
    passes: int  # backward (VJP) + forward-mode (JVP) passes over the probe set
    converged: bool


def _mean_logits_vjp(model: nn.Module, batches: Sequence[Batch]):
    """Callables for <J> u (flat m-vector) and <J>^T a (C-vector) over all chunks."""
    params = [p.detach() for _, p in trainable_parameters(model)]
    call = _functional(model)
    weights = chunk_weights(batches)

    def j_u(u: torch.Tensor) -> torch.Tensor:
        out = None
        for (x, _), w in zip(batches, weights, strict=True):
            z, pull = vjp(lambda *ps, x=x: call(ps, x, _fresh_buffers(model)).mean(0), *params)
            g = flatten(pull(u.to(z.dtype))) * w
            out = g if out is None else out + g
        return out

    def jt_a(a: torch.Tensor) -> torch.Tensor:
        tangents = tuple(unflatten(a, params))
        out = None
        for (x, _), w in zip(batches, weights, strict=True):
            _, d = jvp(
                lambda *ps, x=x: call(ps, x, _fresh_buffers(model)).mean(0), tuple(params), tangents
            )
            out = d * w if out is None else out + d * w
        return out

    def all_columns() -> torch.Tensor:
        """<J> as an m x C matrix: the C VJPs batched with vmap, per chunk."""
        out = None
        for (x, _), w in zip(batches, weights, strict=True):
            z, pull = vjp(lambda *ps, x=x: call(ps, x, _fresh_buffers(model)).mean(0), *params)
            eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
            cols = vmap(lambda e, pull=pull: flatten(pull(e)))(eye)  # C x m
            out = cols * w if out is None else out + cols * w
        return out.T

    return j_u, jt_a, all_columns


def _num_outputs(model: nn.Module, batches: Sequence[Batch]) -> int:
    """C, from a forward pass of the first chunk on copies of the buffers."""
    params = [p.detach() for _, p in trainable_parameters(model)]
    with torch.no_grad():
        return int(_functional(model)(params, batches[0][0], _fresh_buffers(model)).shape[-1])


def jacobian_norms(
    model: nn.Module,
    inputs,
    method: str = "exact",
    tol: float = 1e-3,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> JacobianNorms:
    """Norms of <J> over ``inputs`` (a tensor, or a list of tensors / (inputs, targets) chunks; the
    mean runs over every example).

    - ``"exact"``: the C columns of <J> by one batched VJP per chunk, then the C x C Gram matrix:
      all three norms exactly (memory C x m).
    - ``"jvp"``: Lanczos on <J>^T <J> with one VJP and one JVP per iteration for ||<J>|| (to
      ``tol``), one VJP for ||<J> 1||; ||<J>||_F from the C columns as in ``"exact"``.
    - ``"algorithm2"``: the paper's Algorithm 2 (Appendix E.5): power iteration with C + 1 scalar
      differentiations per iteration, the reference; ||<J>||_F from its last C gradients.
    """
    if method not in JAC_METHODS:
        raise ValueError(f"unknown method '{method}'; valid: {', '.join(JAC_METHODS)}")
    batches = as_batches(inputs)
    with measuring_copy(model, dtype) as m:
        first = next(m.parameters())
        data = cast_batches(batches, first.device, first.dtype)
        c = _num_outputs(m, data)
        ones = torch.full((c,), 1 / math.sqrt(c), dtype=first.dtype, device=first.device)
        j_u, jt_a, all_columns = _mean_logits_vjp(m, data)
        if method == "exact":
            cols = all_columns()
            gram = cols.T @ cols
            top = float(torch.linalg.eigvalsh(gram.double())[-1])
            return JacobianNorms(
                math.sqrt(max(top, 0.0)),
                math.sqrt(float(torch.trace(gram))),
                math.sqrt(max(float(ones @ gram @ ones), 0.0)),
                c * len(data),
                True,
            )
        if method == "jvp":
            gen = make_generator(generator)
            result = lanczos_top(
                lambda u: jt_a(j_u(u)),
                c,
                init=None,
                tol=tol,
                max_iter=max_iter,
                generator=gen,
                device=first.device,
                dtype=first.dtype,
            )
            cols = all_columns()
            return JacobianNorms(
                math.sqrt(max(result.value, 0.0)),
                float(cols.norm()),
                float(j_u(ones).norm()),
                (2 * result.n_products + 1 + c) * len(data),
                result.converged,
            )
        return _algorithm2(m, data, c, tol, max_iter, make_generator(generator), ones)


def _algorithm2(model, batches, c, tol, max_iter, generator, ones) -> JacobianNorms:
    """Algorithm 2 of paper 000: <J> u = grad <u^T z> (1 differentiation), <J>^T v =
    [v . grad <z_1>, ..., v . grad <z_C>] (C differentiations) per iteration."""
    params = [p for _, p in trainable_parameters(model)]
    weights = chunk_weights(batches)

    def grad_of(fn) -> torch.Tensor:
        out = None
        for (x, _), w in zip(batches, weights, strict=True):
            leaves = [p.detach().requires_grad_(True) for p in params]
            call = _functional(model)
            z = call(leaves, x, _fresh_buffers(model)).mean(0)
            g = flatten(torch.autograd.grad(fn(z), leaves)) * w
            out = g if out is None else out + g
        return out

    first = params[0]
    u = random_unit(c, generator, first.device, first.dtype)
    value, passes, converged, columns = 0.0, 0, False, None
    for _ in range(max_iter):
        ju = grad_of(lambda z, u=u: (u * z).sum())
        v = ju / ju.norm()
        columns = [grad_of(lambda z, k=k: z[k]) for k in range(c)]
        passes += 1 + c
        jtv = torch.stack([v @ col for col in columns])
        u = jtv / jtv.norm()
        new = float(v @ ju)
        if abs(new - value) <= tol * max(abs(new), 1e-30):
            value, converged = new, True
            break
        value = new
    frob = math.sqrt(sum(float(col @ col) for col in columns))
    j_ones = sum(col * o for col, o in zip(columns, ones, strict=True))
    return JacobianNorms(value, frob, float(j_ones.norm()), passes * len(batches), converged)


def per_example_jacobian_norms(
    model: nn.Module, inputs: torch.Tensor, chunk_size: int = 16
) -> torch.Tensor:
    """||J(x)|| (spectral norm of the m x C Jacobian of one example's logits) for every row of
    ``inputs``, batched with vmap over examples in chunks of ``chunk_size``. Uses the model's
    current mode (BatchNorm should be in eval mode: one example has no batch statistics)."""
    with measuring_copy(model, None) as m:
        names = [n for n, _ in trainable_parameters(m)]
        params = {n: p.detach() for n, p in trainable_parameters(m)}
        buffers = _fresh_buffers(m)

        def logits_one(ps, x):
            return functional_call(m, (ps, buffers), (x.unsqueeze(0),))[0]

        out = []
        for start in range(0, inputs.shape[0], chunk_size):
            x = inputs[start : start + chunk_size]
            jac = vmap(jacrev(logits_one), in_dims=(None, 0))(params, x)  # name -> (B, C, *shape)
            mats = torch.cat(
                [jac[n].reshape(x.shape[0], jac[n].shape[1], -1) for n in names], dim=-1
            )
            gram = mats @ mats.transpose(1, 2)  # B x C x C
            out.append(torch.linalg.eigvalsh(gram)[:, -1].clamp_min(0).sqrt())
        return torch.cat(out)


def io_jacobian_max(model: nn.Module, inputs, chunk_size: int = 64) -> float:
    """max over the examples of ||d softmax(f(x)) / d x||, the spectral norm of the C x d
    input-output Jacobian of the softmaxed model (companion paper 002). Uses the model's current
    mode (use eval for BatchNorm models)."""
    batches = as_batches(inputs)
    best = 0.0
    with measuring_copy(model, None) as m:
        params = {n: p.detach() for n, p in m.named_parameters()}
        buffers = _fresh_buffers(m)

        def probs_one(x):
            return torch.softmax(
                functional_call(m, (params, buffers), (x.unsqueeze(0),))[0], dim=-1
            )

        for x, _ in batches:
            for start in range(0, x.shape[0], chunk_size):
                xb = x[start : start + chunk_size]
                jac = vmap(jacrev(probs_one))(xb)  # B x C x *in_shape
                mats = jac.reshape(xb.shape[0], jac.shape[1], -1)
                best = max(best, float(torch.linalg.matrix_norm(mats, ord=2).max()))
    return best


def rho_b(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: Sequence[Batch],
    minibatches: Sequence[Batch],
) -> float:
    """rho_B of Proposition 5.2: ||<g>||^2 / E ||<g>_B||^2, with <g> the mean gradient over
    ``batches`` (the probe set, in chunks) and the expectation estimated over ``minibatches``
    (K mini-batches of size B, drawn by the caller with its own generator)."""
    if not minibatches:
        raise ValueError("rho_b needs at least one mini-batch")
    with measuring_copy(model, None) as m:
        params = [p for _, p in trainable_parameters(m)]
        call = _functional(m)

        def mean_grad(chunks):
            out = None
            for (x, y), w in zip(chunks, chunk_weights(chunks), strict=True):
                leaves = [p.detach().requires_grad_(True) for p in params]
                g = (
                    flatten(
                        torch.autograd.grad(loss_fn(call(leaves, x, _fresh_buffers(m)), y), leaves)
                    )
                    * w
                )
                out = g if out is None else out + g
            return out

        full = mean_grad(list(batches)).pow(2).sum()
        mini = torch.stack([mean_grad([b]).pow(2).sum() for b in minibatches]).mean()
        return float(full / mini)


def sgd_threshold(rho: float, lr: float) -> float:
    """2 rho_B / eta, the sharpness threshold of Proposition 5.2 (rho_B = 1: Cohen et al.'s 2/eta)."""
    if lr <= 0:
        return math.inf
    return 2.0 * float(rho) / float(lr)


def lambda_hat(sharpness: float, jacobian_norm_sq: float) -> float:
    """lambda_hat* = ||H|| / ||<J>||^2 (Section 5.1)."""
    return float(sharpness) / float(jacobian_norm_sq) if jacobian_norm_sq else math.inf
