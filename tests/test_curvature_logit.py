"""ijr.curvature.logit_hessian: Theorem 4.1 of paper 000 against dense float64 eigen-solvers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ijr.curvature as cv

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _softmax(n, c, scale, seed):
    return torch.softmax(torch.randn(n, c, generator=_gen(seed), dtype=F64) * scale, -1)


def _dirichlet(n, c, concentration, seed):
    gamma = torch._standard_gamma(
        torch.full((n, c), float(concentration), dtype=F64), generator=_gen(seed)
    )
    gamma = gamma.clamp_min(torch.finfo(F64).tiny)
    return gamma / gamma.sum(-1, keepdim=True)


def _ties(n, c, seed):
    return torch.softmax(torch.randint(0, 3, (n, c), generator=_gen(seed)).to(F64), -1)


def _near_ties(n, c, seed):
    g = _gen(seed)
    return torch.softmax(
        torch.randint(0, 3, (n, c), generator=g).to(F64)
        + 1e-13 * torch.randn(n, c, generator=g, dtype=F64),
        -1,
    )


def _one_hot(n, c):
    p = torch.zeros(n, c, dtype=F64)
    p[:, 0] = 1.0
    return p


def cases(c: int, n: int):
    return {
        "random": _softmax(n, c, 2.0, 1),
        "dirichlet_0.01": _dirichlet(n, c, 0.01, 2),  # near one-hot, tiny and underflowing p_i
        "dirichlet_0.3": _dirichlet(n, c, 0.3, 3),
        "confident": _softmax(n, c, 40.0, 4),
        "uniform": torch.full((n, c), 1.0 / c, dtype=F64),
        "ties": _ties(n, c, 5),
        "near_ties": _near_ties(n, c, 6),
        "one_hot": _one_hot(n, c),
    }


SIZES = [(2, 40), (3, 40), (10, 40), (100, 6), (1000, 1)]


@pytest.mark.parametrize(("c", "n"), SIZES)
def test_logit_hessian_eigh_matches_dense_eigh(c, n):
    for name, p in cases(c, n).items():
        values, vectors = cv.logit_hessian_eigh(p)
        m = cv.logit_hessian(p)
        reference = torch.linalg.eigvalsh(m).flip(-1)
        assert values.shape == (n, c) and vectors.shape == (n, c, c), name
        assert (values - reference).abs().max() <= 1e-13, name
        # eigenpairs: small residual and an orthonormal basis (Gu-Eisenstat vectors)
        residual = (m @ vectors - vectors * values[:, None, :]).norm(dim=1)
        assert residual.max() <= 1e-13, name
        gram = vectors.transpose(1, 2) @ vectors
        assert (gram - torch.eye(c, dtype=F64)).abs().max() <= 1e-12, name
        assert bool((values[:, :-1] >= values[:, 1:]).all()), name


@pytest.mark.parametrize(("c", "n"), SIZES)
def test_impurity_matches_eigvalsh(c, n):
    for name, p in cases(c, n).items():
        reference = torch.linalg.eigvalsh(cv.logit_hessian(p))[:, -1]
        assert (cv.impurity(p) - reference).abs().max() <= 1e-12, name


def test_theorem_4_1_b_eigenvector_direction_and_smallest_pair():
    p = _softmax(30, 7, 1.5, 11)  # distinct entries: every eigenvalue is a secular root
    values, vectors = cv.logit_hessian_eigh(p)
    for i in range(6):  # q^(i) ~ (diag(p) - lambda^(i) I)^{-1} p
        direction = p / (p - values[:, i : i + 1])
        direction = direction / direction.norm(dim=-1, keepdim=True)
        cosine = (direction * vectors[:, :, i]).sum(-1).abs()
        assert (cosine - 1).abs().max() <= 1e-10
        # the secular function (eq. 10) vanishes there
        secular = 1 - (p * p / (p - values[:, i : i + 1])).sum(-1)
        assert secular.abs().max() <= 1e-8
    assert values[:, -1].abs().max() <= 1e-15  # lambda^(C) = 0 ...
    ones = torch.full((7,), 7**-0.5, dtype=F64)
    assert ((vectors[:, :, -1] * ones).sum(-1).abs() - 1).abs().max() <= 1e-12  # ... with 1/sqrt(C)


def test_ties_keep_exact_eigenvalues():
    p = torch.tensor([[0.3, 0.3, 0.2, 0.1, 0.1]], dtype=F64)
    values, _ = cv.logit_hessian_eigh(p)
    # a tied p_i = d with multiplicity k leaves d as an eigenvalue k - 1 times
    assert torch.isclose(values[0], torch.tensor(0.3, dtype=F64)).sum() == 1
    assert torch.isclose(values[0], torch.tensor(0.1, dtype=F64)).sum() == 1
    assert float(cv.impurity(p)) == pytest.approx(
        float(torch.linalg.eigvalsh(cv.logit_hessian(p))[0, -1]), abs=1e-15
    )
    top_tie = torch.tensor([[0.4, 0.4, 0.2]], dtype=F64)
    assert float(cv.impurity(top_tie)) == 0.4  # lambda^(1) = p_(1) exactly


def _probability_rows(c):
    return st.lists(
        st.floats(min_value=-40.0, max_value=40.0, allow_nan=False), min_size=c, max_size=c
    ).map(lambda z: torch.softmax(torch.tensor([z], dtype=F64), -1))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=12).flatmap(_probability_rows))
def test_interlacing_and_gini_bounds_property(p):
    """Theorem 4.1 (c) p_(i+1) <= lambda^(i) <= p_(i), lambda^(C) = 0, and (d) Gini bounds."""
    values, _ = cv.logit_hessian_eigh(p)
    d = p.sort(dim=-1, descending=True).values
    slack = 1e-14
    assert bool((values[:, :-1] <= d[:, :-1] + slack).all())
    assert bool((values[:, :-1] >= d[:, 1:] - slack).all())
    assert values[0, -1].abs() <= slack
    lower, upper = cv.gini_bounds(p)
    lam = cv.impurity(p)
    assert float(lower[0]) - slack <= float(lam[0]) <= float(upper[0]) + slack
    assert float(lam[0]) == pytest.approx(float(values[0, 0]), abs=1e-14)


def test_gini_bounds_values():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]], dtype=F64)
    lower, upper = cv.gini_bounds(p)
    assert torch.allclose(lower, torch.tensor([0.21, 0.24], dtype=F64))
    assert torch.allclose(upper, torch.tensor([0.42, 0.4], dtype=F64))  # min(p1, 2 p1 (1 - p1))


def test_algorithm_1_power_iteration_agrees():
    p = _dirichlet(200, 10, 1.0, 21)
    reference = cv.impurity(p)
    info = cv.impurity_power_iteration(
        p, tol=1e-14, max_iter=20000, generator=_gen(0), return_info=True
    )
    good = info.converged
    assert good.float().mean() > 0.9
    assert (info.values[good] - reference[good]).abs().max() < 1e-8
    rng = torch.get_rng_state()
    values = cv.impurity_power_iteration(p[:5], tol=1e-12, max_iter=20000)
    assert torch.equal(rng, torch.get_rng_state())  # its own generator, never the global RNG
    assert values.shape == (5,)


def test_shapes_dtypes_and_batching():
    p32 = _softmax(24, 5, 1.0, 3).to(torch.float32).reshape(2, 3, 4, 5)
    lam = cv.impurity(p32)
    assert lam.shape == (2, 3, 4) and lam.dtype == torch.float32
    values, vectors = cv.logit_hessian_eigh(p32)
    assert (
        values.shape == (2, 3, 4, 5)
        and vectors.shape == (2, 3, 4, 5, 5)
        and values.dtype == torch.float32
    )
    p64 = p32.to(F64)
    reference = torch.linalg.eigvalsh(cv.logit_hessian(p64))[..., -1]
    assert (cv.impurity(p64) - reference).abs().max() <= 1e-12
    assert cv.impurity(p64).dtype == F64


def test_bad_probabilities_are_rejected():
    with pytest.raises(ValueError, match="C >= 2"):
        cv.impurity(torch.ones(3, 1))
    with pytest.raises(ValueError, match="non-negative"):
        cv.impurity(torch.tensor([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="non-negative"):
        cv.logit_hessian_eigh(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="sum to 1"):
        cv.impurity(torch.tensor([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="floating"):
        cv.gini_bounds(torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="max_iter"):
        cv.impurity_power_iteration(torch.tensor([[0.5, 0.5]]), max_iter=0)
