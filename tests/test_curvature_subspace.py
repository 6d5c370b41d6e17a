"""Appendix D of paper 000 (Figures 8 and 10): the rank-ordered <Q Lambda^{1/2}>, the class means
of m = sqrt(lambda^(1)) J q^(1), the subspace alignment A_S (eq. 48) and cos(-g, J q^(1)), each
against an explicit dense computation (torch.linalg.eigh, the full per-example Jacobian)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ijr.curvature as cv
from test_curvature import F64, data, dense_logit_jacobian, tiny_mlp


def dense_oriented_eigh(p_row):
    """eigh of diag(p) - p p^T, descending, each q^(i) oriented with q^(i)_(i) >= 0."""
    m = torch.diag(p_row) - torch.outer(p_row, p_row)
    lam, q = torch.linalg.eigh(m)
    lam, q = lam.flip(0), q.flip(1)
    order = torch.argsort(p_row, descending=True)
    for i in range(q.shape[1]):
        if q[order[i], i] < 0:
            q[:, i] = -q[:, i]
    return lam, q, order


def random_p(n=7, c=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, c, generator=g, dtype=F64) * scale, dim=-1)


def test_logit_eigvec_heatmap_matches_eigh():
    p = random_p()
    expected = torch.zeros(5, 5, dtype=F64)
    for row in p:
        lam, q, order = dense_oriented_eigh(row)
        lam[-1] = 0.0  # M 1 = 0 exactly; eigh returns O(1e-19), whose sqrt is not negligible
        expected += q[order] * lam.clamp_min(0).sqrt()
    expected /= p.shape[0]
    got = cv.logit_eigvec_heatmap(p)
    assert torch.allclose(got, expected, atol=1e-12)
    # Figure 8's two salient entries: q^(i)_(i) > 0 on the diagonal, q^(i)_(i+1) < 0 below it
    assert (torch.diagonal(got)[:-1] > 0).all()
    assert (torch.diagonal(got, offset=-1) < 0).all()
    assert torch.allclose(got[:, -1], torch.zeros(5, dtype=F64), atol=1e-7)  # lambda = 0 column


def test_top_logit_eigvec_orientation_and_value():
    p = random_p(n=4, c=6, seed=3)
    lam1, q1 = cv.top_logit_eigvec(p)
    for row, lam, q in zip(p, lam1, q1, strict=True):
        dense_lam, dense_q, order = dense_oriented_eigh(row)
        assert abs(float(lam - dense_lam[0])) < 1e-12
        assert torch.allclose(q, dense_q[:, 0], atol=1e-10)
        assert q[order[0]] > 0  # eq. (45): alpha > 0


def test_margin_directions_match_the_explicit_jacobian():
    model = tiny_mlp(seed=4, c=3)
    x, _ = data(n=30, c=3, seed=5)
    jac = dense_logit_jacobian(model, x)  # (N, C, m)
    with torch.no_grad():
        p = torch.softmax(model(x), dim=-1)
    top = p.argmax(-1)
    lam1, q1 = cv.top_logit_eigvec(p)
    m = torch.einsum("ncm,nc->nm", jac, q1) * lam1.sqrt().unsqueeze(1)  # sqrt(lambda1) J q1
    chunks = [x[:7], x[7:19], x[19:]]
    got = cv.margin_directions(model, chunks)
    for cls in range(3):
        members = top == cls
        assert int(got.counts[cls]) == int(members.sum())
        if members.any():
            assert torch.allclose(got.means[cls], m[members].mean(0), atol=1e-12)
        else:
            assert float(got.means[cls].abs().max()) == 0.0
    assert got.all_classes_present == bool((got.counts > 0).all())
    cos = got.mean_cosines()
    assert torch.allclose(torch.diagonal(cos)[got.counts > 0], torch.ones(1, dtype=F64))


def test_subspace_alignment_against_least_squares():
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 40, generator=g, dtype=F64)
    basis = torch.cat([basis, basis[:1] * 2.0, torch.zeros(1, 40, dtype=F64)])  # rank 3, a zero row
    v = torch.randn(40, generator=g, dtype=F64)
    coef = torch.linalg.lstsq(basis[:3].T, v.unsqueeze(1)).solution
    projection = (basis[:3].T @ coef).squeeze(1)
    expected = float(projection.norm() / v.norm())
    assert abs(cv.subspace_alignment(v, basis) - expected) < 1e-12
    inside = basis[:3].T @ torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    assert abs(cv.subspace_alignment(inside, basis) - 1.0) < 1e-12
    orth = v - projection
    assert cv.subspace_alignment(orth, basis) < 1e-10
    with pytest.raises(ValueError, match="zero vector"):
        cv.subspace_alignment(torch.zeros(40, dtype=F64), basis)
    with pytest.raises(ValueError, match="spans no direction"):
        cv.subspace_alignment(v, torch.zeros(2, 40, dtype=F64))


def test_gradient_margin_cosine_matches_dense():
    model = tiny_mlp(seed=6, c=4)
    x, y = data(n=6, c=4, seed=7)
    jac = dense_logit_jacobian(model, x)  # (N, C, m)
    with torch.no_grad():
        p = torch.softmax(model(x), dim=-1)
    _, q1 = cv.top_logit_eigvec(p)
    got = cv.gradient_margin_cosine(model, F.cross_entropy, [(x[:2], y[:2]), (x[2:], y[2:])])
    for i in range(x.shape[0]):
        minus_g = jac[i].T @ (F.one_hot(y[i], 4).to(F64) - p[i])  # -g = J (e_y - p)
        jq = jac[i].T @ q1[i]
        expected = float(minus_g @ jq / (minus_g.norm() * jq.norm()))
        assert abs(float(got[i]) - expected) < 1e-10


def test_gradient_margin_cosine_needs_independent_examples():
    model = tiny_mlp(bn=True)
    model.train()
    x, y = data(n=4)
    with pytest.raises(ValueError, match="independent examples"):
        cv.gradient_margin_cosine(model, F.cross_entropy, [(x, y)])


def test_mean_gradient_is_chunk_independent_and_equals_autograd():
    model = tiny_mlp(seed=8)
    x, y = data(n=17)
    expected = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    expected = torch.cat([t.reshape(-1) for t in expected])
    for chunks in ([(x, y)], [(x[:5], y[:5]), (x[5:], y[5:])]):
        got = cv.mean_gradient(model, F.cross_entropy, chunks)
        assert torch.allclose(got, expected, atol=1e-14)
    assert all(p.grad is None for p in model.parameters())


def test_alignment_of_vectors_in_and_around_the_margin_subspace():
    """A_S of a combination of the class means is 1; of the Hessian's top eigenvector in [0, 1]."""
    model = tiny_mlp(seed=9, c=3)
    x, y = data(n=40, c=3, seed=10)
    dirs = cv.margin_directions(model, [x])
    inside = dirs.means.sum(0)
    if float(inside.norm()) > 0:
        assert abs(cv.subspace_alignment(inside, dirs.means) - 1.0) < 1e-10
    r = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, max_iter=200).vector
    a = cv.subspace_alignment(r, dirs.means)
    assert 0.0 <= a <= 1.0 and math.isfinite(a)


def test_expected_random_cosine_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    for dim in (1, 2, 3, 50):
        u = torch.randn(20000, dim, generator=g, dtype=F64)
        v = torch.randn(20000, dim, generator=g, dtype=F64)
        cos = (u * v).sum(1).abs() / (u.norm(dim=1) * v.norm(dim=1))
        sem = float(cos.std() / math.sqrt(cos.numel()))
        assert abs(float(cos.mean()) - cv.expected_random_cosine(dim)) <= 4 * sem + 1e-12
    assert cv.expected_random_cosine(1) == pytest.approx(1.0)
    assert cv.expected_random_cosine(10**6) == pytest.approx(
        math.sqrt(2 / (math.pi * 1e6)), rel=1e-5
    )


def test_margin_statistics_match_the_explicit_jacobian():
    model = tiny_mlp(seed=11, c=3)
    x, _ = data(n=25, c=3, seed=12)
    jac = dense_logit_jacobian(model, x)  # (N, C, m)
    with torch.no_grad():
        p = torch.softmax(model(x), dim=-1)
    lam1, q1 = cv.top_logit_eigvec(p)
    m = torch.einsum("ncm,nc->nm", jac, q1) * lam1.sqrt().unsqueeze(1)
    top = p.argmax(-1)
    means = torch.stack(
        [
            m[top == c].mean(0) if (top == c).any() else torch.zeros(m.shape[1], dtype=F64)
            for c in range(3)
        ]
    )
    got = cv.margin_statistics(model, [x[:9], x[9:]])
    assert torch.equal(got.top1, top) and torch.equal(
        got.top2, torch.argsort(p, -1, descending=True)[:, 1]
    )
    assert torch.allclose(got.mean_gram, means @ means.T, atol=1e-12)
    unit = m / m.norm(dim=1, keepdim=True)
    for c in range(3):
        members = top == c
        if members.any():
            assert float(got.mrl[c]) == pytest.approx(
                float(unit[members].mean(0).norm()), abs=1e-12
            )
            cos = unit @ means[c] / means[c].norm()
            assert torch.allclose(got.cos_to_means[:, c], cos, atol=1e-12)
        else:
            assert math.isnan(float(got.mrl[c]))
    assert ((got.mrl[got.counts > 0] >= 0) & (got.mrl[got.counts > 0] <= 1 + 1e-12)).all()


def test_eigvec_jacobian_statistics_match_the_explicit_jacobian():
    model = tiny_mlp(seed=13, c=4)
    x, _ = data(n=3, c=4, seed=14)
    jac = dense_logit_jacobian(model, x)  # (N, C, m)
    with torch.no_grad():
        p = torch.softmax(model(x), dim=-1)
    ratios, cos_sq = cv.eigvec_jacobian_statistics(model, [x])
    for n in range(3):
        _, q, _ = dense_oriented_eigh(p[n])
        jq = q.T @ jac[n]  # (C, m): row i = J q^(i)
        norms = jq.norm(dim=1)
        assert torch.allclose(ratios[n], norms / norms.mean(), atol=1e-10)
        cos = (jq @ jq.T) / torch.outer(norms, norms)
        assert torch.allclose(cos_sq[n], cos.square(), atol=1e-10)
    assert torch.allclose(torch.diagonal(cos_sq, dim1=1, dim2=2), torch.ones(3, 4, dtype=F64))
