"""The Gram matrix (NTK) of a one-output model, paper 004 (Li, Wang & Li), Sections 2-3.

For a scalar model f(theta, x) on n examples with outputs F in R^n, residual D = F - Y and the
loss L = (1/n) ||D||^2,

    M = (2/n) (dF/dtheta) (dF/dtheta)^T                   (n x n, Section 2)

shares its non-zero eigenvalues with the Gauss-Newton matrix of L; paper 004 calls its largest
eigenvalue Lambda = lambda_max(M) *the sharpness*. Section 3.2 splits M = M_A + M_W by the
output-layer parameters A (the last ``nn.Linear``) and the rest W. Section 3.4 splits the
residual along the top eigenvector v_1 of M: D = (D^T v_1) v_1 + R with R = (I - v_1 v_1^T) D.

:func:`gram_spectrum` computes lambda_max(M), lambda_2(M) (Lanczos on the deflated operator
M - lambda_1 v_1 v_1^T), lambda_max(M_A), v_1, D, R and ||D||^2/n, ||R||^2/n, |D^T v_1|, D^T F,
with products u -> M u = (2/n) J (J^T u): one backward (J^T u) and one forward-mode pass (J w)
per chunk, so M is never formed. :func:`gram_matrix` forms M densely from per-example gradients
(tiny models; the tests' reference and ``method="dense"``). The solver is
:func:`ijr.curvature.solvers.lanczos_top`, unchanged.

Non-perturbation as everywhere in :mod:`ijr.curvature` (a :class:`FunctionalModel`, the global
RNG restored); the probe set's chunks must not be coupled (BatchNorm in train mode couples the
examples of a chunk, and M then depends on the chunking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._functional import (
    Batch,
    FunctionalModel,
    as_batches,
    check_model,
    check_positive_int,
    check_tol,
    flatten,
    make_generator,
    random_vector,
    rng_guard,
)
from .solvers import lanczos_top

GRAM_METHODS = ("lanczos", "dense")


def output_layer_names(model: nn.Module) -> list[str]:
    """Names of the parameters of the output layer A: the last ``nn.Linear`` (its weight and
    bias), the layer whose norm ``output_layer_norm`` reports (paper 004, Section 3.2)."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layer, so no output layer A for M_A")
    prefix, layer = linears[-1]
    return [
        f"{prefix}.{n}" if prefix else n for n, p in layer.named_parameters() if p.requires_grad
    ]


def _scalar_outputs(out: torch.Tensor) -> torch.Tensor:
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(
            f"the Gram matrix M of paper 004 needs a one-output model (outputs (n, 1)), got {tuple(out.shape)}; use data.task=two_class_mse"
        )
    return out[:, 0]


class GramOperator:
    """u -> M_S u = (2/n) J_S J_S^T u on the n probe examples, J_S = dF/dtheta_S for the
    parameters ``names`` (all trainable parameters when None)."""

    def __init__(self, fm: FunctionalModel, inputs: Sequence[torch.Tensor], names=None):
        self.fm = fm
        self.inputs = [fm.cast_input(x) for x in inputs]
        self.sizes = [x.shape[0] for x in self.inputs]
        self.n = sum(self.sizes)
        self.leaves = fm.leaves()
        keep = set(fm.names if names is None else names)
        unknown = keep - set(fm.names)
        if unknown:
            raise ValueError(f"GramOperator: no trainable parameter(s) {sorted(unknown)}")
        self.mask = [name in keep for name in fm.names]
        self.kept = (
            [self._outputs(k) for k in range(len(self.inputs))] if len(self.inputs) == 1 else None
        )

    def _outputs(self, k: int) -> torch.Tensor:
        return _scalar_outputs(self.fm.forward(self.leaves, self.inputs[k], chunk=k))

    def outputs(self) -> torch.Tensor:
        """F, the n outputs at theta (detached)."""
        with torch.no_grad():
            return torch.cat(
                [
                    _scalar_outputs(self.fm.forward(self.fm.point, x, chunk=k))
                    for k, x in enumerate(self.inputs)
                ]
            )

    def transpose_product(self, u: torch.Tensor) -> list[torch.Tensor]:
        """J_S^T u, one tensor per parameter (zero outside S)."""
        total = [torch.zeros_like(p) for p in self.leaves]
        for k, piece in enumerate(torch.split(u, self.sizes)):
            out = self.kept[k] if self.kept is not None else self._outputs(k)
            grads = torch.autograd.grad(
                out,
                self.leaves,
                grad_outputs=piece,
                retain_graph=self.kept is not None,
                allow_unused=True,
                materialize_grads=True,
            )
            for t, g in zip(total, grads, strict=True):
                t.add_(g)
        return [
            t if keep else torch.zeros_like(t) for t, keep in zip(total, self.mask, strict=True)
        ]

    def forward_product(self, tangents: Sequence[torch.Tensor]) -> torch.Tensor:
        """J w for parameter-shaped ``tangents`` (forward-mode AD, chunk by chunk)."""
        primals = tuple(p.detach() for p in self.leaves)
        pieces = []
        for k, x in enumerate(self.inputs):
            _, jw = torch.func.jvp(
                lambda *ps, x=x, k=k: _scalar_outputs(self.fm.forward(list(ps), x, chunk=k)),
                primals,
                tuple(tangents),
            )
            pieces.append(jw)
        return torch.cat(pieces)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return (2.0 / self.n) * self.forward_product(self.transpose_product(u))


def gram_matrix(
    model: nn.Module, inputs, *, names=None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """M_S = (2/n) J_S J_S^T formed densely from n per-example gradients (tiny models only)."""
    check_model(model)
    fm = FunctionalModel(model, dtype)
    with rng_guard(fm.device):
        op = GramOperator(fm, [x for x, *_ in _as_input_batches(inputs)], names)
        rows = []
        for k, x in enumerate(op.inputs):
            for i in range(x.shape[0]):
                out = _scalar_outputs(fm.forward(op.leaves, x[i : i + 1], chunk=k))[0]
                grads = torch.autograd.grad(
                    out, op.leaves, allow_unused=True, materialize_grads=True
                )
                rows.append(
                    flatten(
                        [
                            g if keep else torch.zeros_like(g)
                            for g, keep in zip(grads, op.mask, strict=True)
                        ]
                    )
                )
        jac = torch.stack(rows)
        return (2.0 / op.n) * jac @ jac.T


def _as_input_batches(inputs) -> list[tuple[torch.Tensor, ...]]:
    if isinstance(inputs, torch.Tensor):
        return [(inputs,)]
    return [tuple(b) if isinstance(b, (tuple, list)) else (b,) for b in inputs]


@dataclass
class GramSpectrum:
    """What :func:`gram_spectrum` measures (paper 004, Sections 3.2-3.4, Figure 3).

    ``top`` lambda_max(M) (the sharpness Lambda); ``second`` lambda_2(M); ``output_top``
    lambda_max(M_A); ``v1`` the unit top eigenvector (sign: D^T v_1 >= 0); ``outputs`` F;
    ``residual`` D = F - Y; ``rest`` R = D - (D^T v_1) v_1; ``loss`` ||D||^2/n;
    ``rest_loss`` ||R||^2/n; ``d_v1`` |D^T v_1|; ``d_dot_f`` D^T F (the sign of d||A||^2/dt =
    -(4/n) D^T F, eq. 2); ``n_products`` Gram-vector products used."""

    top: float
    second: float | None
    output_top: float | None
    v1: torch.Tensor
    outputs: torch.Tensor
    residual: torch.Tensor
    rest: torch.Tensor
    loss: float
    rest_loss: float
    d_v1: float
    d_dot_f: float
    n_products: int


def _top_pairs(op, method, tol, max_iter, generator, second):
    """(lambda_1, v_1, lambda_2 or None, products) of the operator ``op`` (n x n)."""
    if method == "dense":
        dense = torch.stack(
            [op(e) for e in torch.eye(op.n, dtype=op.fm.dtype, device=op.fm.device)], 1
        )
        values, vectors = torch.linalg.eigh(0.5 * (dense + dense.T))
        return (
            float(values[-1]),
            vectors[:, -1],
            (float(values[-2]) if second and op.n > 1 else None),
            op.n,
        )
    start = random_vector(op.n, generator, op.fm.device, op.fm.dtype)
    res = lanczos_top(op, start, tol=tol, max_iter=max_iter)
    v1 = res.vector / torch.linalg.vector_norm(res.vector)
    lam2, products = None, res.n_products
    if second and op.n > 1:
        deflated = lambda u: op(u) - res.value * torch.dot(v1, u) * v1  # noqa: E731
        start2 = random_vector(op.n, generator, op.fm.device, op.fm.dtype)
        res2 = lanczos_top(
            deflated, start2 - torch.dot(v1, start2) * v1, tol=tol, max_iter=max_iter
        )
        lam2, products = float(res2.value), products + res2.n_products
    return float(res.value), v1, lam2, products


def gram_spectrum(
    model: nn.Module,
    batches: Sequence[Batch] | Batch,
    *,
    method: str = "lanczos",
    tol: float = 1e-4,
    max_iter: int = 200,
    second: bool = True,
    output_layer: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> GramSpectrum:
    """The Gram-matrix quantities of paper 004 on ``batches`` (inputs, +-1 targets of shape
    (n, 1)): see :class:`GramSpectrum`. ``method="lanczos"`` (products only) or ``"dense"`` (M
    from n products, then ``eigh``: exact, for small probe sets)."""
    check_model(model)
    if method not in GRAM_METHODS:
        raise ValueError(f"gram method must be one of {', '.join(GRAM_METHODS)}, got {method!r}")
    batches = as_batches(batches)
    tol = check_tol(tol)
    check_positive_int("max_iter", max_iter)
    generator = make_generator(generator)
    fm = FunctionalModel(model, dtype, generator)
    with rng_guard(fm.device):
        op = GramOperator(fm, [x for x, _ in batches])
        top, v1, lam2, products = _top_pairs(op, method, tol, max_iter, generator, second)
        output_top = None
        if output_layer:
            op_a = GramOperator(fm, [x for x, _ in batches], output_layer_names(model))
            output_top, _, _, more = _top_pairs(op_a, method, tol, max_iter, generator, False)
            products += more
        outputs = op.outputs()
    targets = torch.cat([fm.cast_input(y).reshape(-1) for _, y in batches])
    return decompose_residual(outputs, targets, v1, top, lam2, output_top, products)


def decompose_residual(
    outputs, targets, v1, top, second=None, output_top=None, n_products=0
) -> GramSpectrum:
    """D = F - Y split along v_1 (Section 3.4): D = (D^T v_1) v_1 + R."""
    if outputs.shape != targets.shape:
        raise ValueError(
            f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape"
        )
    n = outputs.numel()
    residual = outputs - targets
    along = torch.dot(residual, v1)
    if float(along) < 0:  # v_1's sign is arbitrary; fix it so that D^T v_1 >= 0
        v1, along = -v1, -along
    rest = residual - along * v1
    return GramSpectrum(
        top=float(top),
        second=second,
        output_top=output_top,
        v1=v1.detach(),
        outputs=outputs.detach(),
        residual=residual.detach(),
        rest=rest.detach(),
        loss=float(residual.square().sum()) / n,
        rest_loss=float(rest.square().sum()) / n,
        d_v1=float(along),
        d_dot_f=float(torch.dot(residual, outputs)),
        n_products=int(n_products),
    )


def input_gram_top(
    inputs: torch.Tensor, dtype: torch.dtype = torch.float64
) -> tuple[float, float, torch.Tensor]:
    """(lambda_1, lambda_2, u_1) of the input Gram matrix X X^T (n x n; paper 004's X^T X with
    examples as columns) of the flattened ``inputs``."""
    x = inputs.flatten(1).to(dtype)
    values, vectors = torch.linalg.eigh(x @ x.T)
    second = float(values[-2]) if x.shape[0] > 1 else float("nan")
    return float(values[-1]), second, vectors[:, -1]


def two_layer_linear_theory(
    model: nn.Module, inputs: torch.Tensor, spectrum: GramSpectrum, input_top=None
) -> dict[str, float]:
    """Section 4 / Theorem 1 of paper 004 for f(x) = (1/sqrt(m)) A^T W x on inputs X (n x d):
    M = (2/(mn)) (||A||^2 X X^T + X W^T W X^T) exactly, approximated in the proof of Theorem 1 by
    M ~ (2/(mn)) (||A||^2 + m/d) X X^T, i.e. W^T W ~ (m/d) I, the expectation at W_ij ~ N(0, 1/d).
    We use the measured isotropic part ||W||_F^2 / d in place of m/d (equal in expectation at that
    initialisation, and still the isotropic approximation when ``init_scale`` shrinks the weights).
    Returns ``theory_ratio`` lambda_max(M) over the top eigenvalue of that approximation,
    ``v1_alignment`` |<v_1(M), u_1(X X^T)>|, ``input_gap`` lambda_1(X X^T) / lambda_2(X X^T)
    (Assumption 4.1 asks for >= 2) and ``a_norm_sq`` ||A||^2. ``input_top``: the result of
    :func:`input_gram_top` on ``inputs``, computed once by the caller (the probe set is fixed)."""
    hidden, output = getattr(model, "hidden", None), getattr(model, "output", None)
    if (
        not isinstance(hidden, nn.Linear)
        or not isinstance(output, nn.Linear)
        or hidden.bias is not None
    ):
        raise ValueError(
            "the Section 4 theory probe needs the two-layer linear network fc2 (bias=false)"
        )
    if not isinstance(getattr(model, "activation", None), nn.Identity):
        raise ValueError("the Section 4 theory probe needs fc2 with activation=linear")
    m, d = hidden.out_features, hidden.in_features
    if abs(float(getattr(model, "output_multiplier", 0.0)) * m**0.5 - 1.0) > 1e-12:
        raise ValueError(
            "the Section 4 theory probe needs fc2 with output_scaling=ntk (the 1/sqrt(m) factor)"
        )
    lam1, lam2, u1 = (
        input_top if input_top is not None else input_gram_top(inputs, spectrum.v1.dtype)
    )
    a_norm_sq = float(output.weight.detach().to(torch.float64).square().sum())
    w_iso = float(hidden.weight.detach().to(torch.float64).square().sum()) / d
    n = spectrum.v1.numel()
    approx_top = 2.0 / (m * n) * (a_norm_sq + w_iso) * lam1
    return {
        "theory_ratio": spectrum.top / approx_top,
        "v1_alignment": abs(float(torch.dot(u1.to(spectrum.v1), spectrum.v1))),
        "input_gap": lam1 / lam2,
        "a_norm_sq": a_norm_sq,
    }


__all__ = [
    "GRAM_METHODS",
    "GramOperator",
    "GramSpectrum",
    "decompose_residual",
    "gram_matrix",
    "gram_spectrum",
    "input_gram_top",
    "output_layer_names",
    "two_layer_linear_theory",
]
