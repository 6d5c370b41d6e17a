"""ijr.curvature at paper scale with float32 products: operators with a known spectrum of
0.66 M, 9.75 M and 36.5 M entries (fcn3-, vgg11_bn- and WRN-28-10-sized), and the exact Jacobian
norms of a 9.75 M-parameter model against a float64 computation.

The failure these guard against, reproduced on :func:`known_spectrum` before the fix (float32
reductions in ``solvers.py``): ``lanczos_top`` at tol 1e-4 returned a top eigenvalue off by
7.1e-6 / 2.9e-6 / 3.7e-3 relative at 0.66 M / 9.75 M / 36.5 M entries while reporting
convergence with error estimates 3.4e-7 / 1.7e-6 / 1.4e-7 (the last 37x tol, 26,000x its
estimate). After (float64 reductions): 4.7e-8 / 1.3e-8 / 9.8e-10, each below its estimate.
Every check here is on the TRUE error: within ``tol`` and at most twice the reported estimate.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ijr.curvature as cv
from ijr.curvature._precise import Float64Reductions, gram64

SIZES = {"fcn3": 660_000, "vgg11_bn": 9_750_000, "wrn28_10": 36_500_000}


def known_spectrum(n: int, seed: int = 0) -> torch.Tensor:
    """A float32 diagonal with lambda_1 = 1 exactly, lambda_2 = 0.6, the rest in [0, 0.5): a
    gap that lets Lanczos converge in ~14 products (test time)."""
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(n, generator=g) * 0.5
    d[n // 3] = 1.0  # not at an end: positions must not matter
    d[n // 2] = 0.6
    return d


def start_vector(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


def check_honest(value: float, exact: float, result, tol: float) -> float:
    error = abs(value - exact) / abs(exact)
    assert result.converged
    assert error <= tol, f"true error {error:.2e} above tol {tol:g}"
    assert error <= 2 * result.error_estimate, (
        f"true error {error:.2e} more than twice the reported estimate {result.error_estimate:.2e}"
    )
    return error


@pytest.mark.parametrize("size", list(SIZES))
def test_lanczos_float32_products_are_accurate_and_honest_at_model_size(size):
    n = SIZES[size]
    d = known_spectrum(n)
    result = cv.lanczos_top(lambda v: d * v, start_vector(n), tol=1e-4, max_iter=60, max_basis=8)
    check_honest(result.value, 1.0, result, 1e-4)
    # the residual is honest too: ||A y - theta y|| / theta in float64 against the float64 A
    y = result.vector.double()
    true_residual = float((d.double() * y - result.value * y).norm()) / result.value
    assert true_residual <= 2 * result.residual


@pytest.mark.parametrize("size", ["fcn3"])
def test_lanczos_tight_tol_reaches_the_rounding_floor_honestly(size):
    """At tol 1e-6 the true error of float32 products is far below float32's n eps; the estimate
    never claims less than the rounding floor."""
    n = SIZES[size]
    d = known_spectrum(n, seed=2)
    result = cv.lanczos_top(lambda v: d * v, start_vector(n, 3), tol=1e-6, max_iter=60)
    error = check_honest(result.value, 1.0, result, 1e-6)
    assert result.error_estimate >= cv.solvers.rounding_floor(torch.float32)
    assert error < 1e-6


@pytest.mark.parametrize(
    "size", ["fcn3", "vgg11_bn", pytest.param("wrn28_10", marks=pytest.mark.slow)]
)
def test_power_iteration_float32_products_are_honest_at_model_size(size):
    n = SIZES[size]
    d = known_spectrum(n, seed=4)
    result = cv.power_top(lambda v: d * v, start_vector(n, 5), tol=1e-5, max_iter=60)
    check_honest(result.value, 1.0, result, 1e-4)


def test_power_iteration_estimate_is_honest_when_convergence_is_slow():
    """lambda_2 / lambda_1 = 0.98: the change per step is 25x smaller than the error; the
    estimate extrapolates the geometric convergence instead of reporting the change."""
    n = 200_000
    d = known_spectrum(n, seed=6)
    d[n // 2] = 0.98
    result = cv.power_top(lambda v: d * v, start_vector(n, 7), tol=1e-4, max_iter=400)
    error = abs(result.value - 1.0)
    assert error <= 2 * result.error_estimate


def test_float64_reductions_match_a_float64_computation_at_wrn_size():
    n = SIZES["wrn28_10"]
    x = start_vector(n, 8)
    red = Float64Reductions(x.device)
    exact = float(x.double().square().sum())
    assert abs(red.dot(x, x) - exact) / exact < 1e-12
    # what the fix replaces: float32 accumulation is off by far more than float32 eps here
    rows = torch.stack([x[: n // 4], x[n // 4 : n // 2] + x[: n // 4]])
    v = x[n // 2 : n // 2 + n // 4]
    ref = rows.double() @ v.double()
    assert torch.allclose(
        red.rows_dot(rows, v), ref, rtol=1e-12, atol=1e-9 * float(ref.abs().max())
    )
    gram_ref = rows.double() @ rows.double().T
    assert torch.allclose(gram64(rows), gram_ref, rtol=1e-12)


def wide_mlp(num_parameters: int, c: int = 10, d_in: int = 3072) -> nn.Module:
    torch.manual_seed(0)
    hidden = num_parameters // (d_in + c)
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, c))
    with torch.no_grad():  # a trained-looking scale: logits of a few units, all classes mixed
        model[2].weight.mul_(4.0)
    return model


def test_exact_jacobian_norms_of_a_vgg11_sized_model_match_float64():
    """Before the fix (float32 Gram cols @ cols.T) the three norms were off by 1.1e-3-1.2e-3
    here; after (float64 accumulation) by 3e-10-1.6e-9."""
    model = wide_mlp(SIZES["vgg11_bn"])
    x = torch.randn(8, 3072, generator=torch.Generator().manual_seed(9))
    ours = cv.jacobian_norms(model, x, method="exact")
    ref = cv.jacobian_norms(model, x, method="exact", dtype=torch.float64)
    for name in ("spectral", "frobenius", "ones"):
        got, want = getattr(ours, name), getattr(ref, name)
        assert abs(got - want) / want < 1e-6, f"{name}: {got} vs float64 {want}"
    assert math.isclose(sum(ours.gram_eigenvalues), ours.frobenius**2, rel_tol=1e-9)


def test_lanczos_on_a_small_clustered_float32_operator_with_a_full_basis():
    """A 10 x 10 Gram with clustered top eigenvalues (like <J>^T <J> of the ``jvp`` method), in
    float32 with max_basis = n: the Krylov space becomes nearly invariant, where rounding noise
    of the recurrence must trigger the second Gram-Schmidt pass (a variant that compared against
    the exact recurrence residual returned 24.9 for lambda_1 = 6.6)."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    spectrum = torch.tensor(
        [6.60, 6.46, 6.31, 6.2, 6.1, 5.9, 5.5, 5.3, 1.6, 0.01], dtype=torch.float64
    )
    a = ((q * spectrum) @ q.T).float()
    exact = float(torch.linalg.eigvalsh(a.double())[-1])
    for seed in range(5):
        start = torch.randn(10, generator=torch.Generator().manual_seed(seed))
        result = cv.lanczos_top(lambda u: a @ u, start, tol=1e-4, max_basis=10)
        check_honest(result.value, exact, result, 1e-4)


def test_jacobian_norms_jvp_agrees_with_exact_in_float32():
    model = wide_mlp(200_000)
    x = torch.randn(64, 3072, generator=torch.Generator().manual_seed(10))
    exact = cv.jacobian_norms(model, x, method="exact")
    jvp = cv.jacobian_norms(model, x, method="jvp", tol=1e-5)
    assert abs(jvp.spectral - exact.spectral) <= 1e-4 * exact.spectral
    assert abs(jvp.ones - exact.ones) <= 1e-5 * exact.ones
