"""ijr.curvature against exact dense linear algebra on tiny models (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import ijr.curvature as cv


@pytest.fixture(autouse=True)
def _float64_default():
    """Dense ground truth in float64 in this module only."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def tiny_mlp(seed=0, c=3, bn=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 7)]
    if bn:
        layers.append(nn.BatchNorm1d(7))
    layers += [nn.Tanh(), nn.Linear(7, c)]
    return nn.Sequential(*layers).double()


def data(n=20, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, c, (n,), generator=g)


def dense_hessian(model, loss_fn, x, y):
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    def loss_of(v):
        ps, i = [], 0
        for s in shapes:
            k = torch.Size(s).numel()
            ps.append(v[i : i + k].view(s))
            i += k
        return loss_fn(
            functional_call(model, ({**dict(zip(names, ps, strict=True)), **buffers}), (x,)), y
        )

    return torch.autograd.functional.hessian(loss_of, flat)


def dense_mean_jacobian(model, x):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    def z_of(v):
        ps, i = [], 0
        for s in shapes:
            k = torch.Size(s).numel()
            ps.append(v[i : i + k].view(s))
            i += k
        return functional_call(
            model, ({**dict(zip(names, ps, strict=True)), **buffers}), (x,)
        ).mean(0)

    return torch.autograd.functional.jacobian(z_of, flat).T  # m x C


# ------------------------------------------------------------------ logit Hessian / impurity
def _dirichlet(n, c, concentration, g):
    """Dirichlet(concentration) rows; small concentrations give near-one-hot p."""
    gamma = torch.distributions.Gamma(torch.full((n, c), float(concentration)), torch.ones(n, c))
    if g is not None:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    sample = gamma.sample() + 1e-300
    return sample / sample.sum(-1, keepdim=True)


@pytest.mark.parametrize("c", [2, 3, 10, 100, 1000])
@pytest.mark.parametrize("concentration", [1.0, 0.05])
def test_impurity_matches_eigvalsh(c, concentration):
    torch.manual_seed(c)
    n = 200 if c < 1000 else 10
    p = _dirichlet(n, c, concentration, None)
    reference = torch.linalg.eigvalsh(cv.logit_hessian(p))[:, -1]
    assert (cv.impurity(p) - reference).abs().max() <= 1e-12


def test_impurity_handles_ties_one_hot_and_uniform():
    p = torch.tensor(
        [
            [0.5, 0.5, 0.0],
            [0.4, 0.4, 0.2],
            [1.0, 0.0, 0.0],
            [1 - 1e-12, 1e-12, 0.0],
            [1 / 3, 1 / 3, 1 / 3],
            [0.7, 0.15, 0.15],
        ]
    )
    reference = torch.linalg.eigvalsh(cv.logit_hessian(p))[:, -1]
    assert (cv.impurity(p) - reference).abs().max() <= 1e-12


def test_logit_hessian_eigh_is_theorem_4_1():
    torch.manual_seed(0)
    p = _dirichlet(50, 6, 1.0, None)
    evals, evecs = cv.logit_hessian_eigh(p)
    m = cv.logit_hessian(p)
    assert torch.allclose(m @ evecs, evecs * evals.unsqueeze(-2), atol=1e-12)
    assert (evals[:, :-1] >= evals[:, 1:] - 1e-15).all()
    # (a) roots of the secular equation v(lambda) = 1 - sum p_i^2 / (p_i - lambda)
    lam = evals[:, :-1]
    v = 1 - (p.unsqueeze(1) ** 2 / (p.unsqueeze(1) - lam.unsqueeze(-1))).sum(-1)
    assert v.abs().max() < 1e-8
    # (b) q^(i) parallel to (diag(p) - lambda I)^-1 p
    direction = p.unsqueeze(1) / (p.unsqueeze(1) - lam.unsqueeze(-1))
    direction = direction / direction.norm(dim=-1, keepdim=True)
    cos = (direction * evecs[:, :, :-1].transpose(1, 2)).sum(-1).abs()
    assert (cos > 1 - 1e-9).all()
    # (c) lambda^(C) = 0
    assert evals[:, -1].abs().max() < 1e-14


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=40),
    st.floats(min_value=0.01, max_value=5.0),
    st.integers(min_value=0, max_value=10_000),
)
def test_theorem_4_1_bounds_hold(c, concentration, seed):
    g = torch.Generator().manual_seed(seed)
    p = _dirichlet(8, c, concentration, g)
    evals, _ = cv.logit_hessian_eigh(p)
    ps = p.sort(dim=-1, descending=True).values
    tol = 1e-12
    # (c) p_(i+1) <= lambda^(i) <= p_(i)
    assert (ps[:, 1:] <= evals[:, :-1] + tol).all() and (evals[:, :-1] <= ps[:, :-1] + tol).all()
    # (d) Gini(p_(1))/2 <= lambda^(1) <= Gini(p_(1))
    lower, upper = cv.gini_bounds(p)
    lam = cv.impurity(p)
    assert (lower <= lam + tol).all() and (lam <= upper + tol).all()
    assert (lam <= 2 * lower + tol).all()


def test_algorithm_1_power_iteration_agrees():
    torch.manual_seed(3)
    p = _dirichlet(100, 10, 1.0, None)
    assert (
        cv.impurity_power_iteration(p, tol=1e-14, max_iter=5000) - cv.impurity(p)
    ).abs().max() < 1e-8


# ------------------------------------------------------------------------------ sharpness
def test_hessian_top_eigenvalue_matches_dense_and_is_chunk_independent():
    model = tiny_mlp()
    x, y = data()
    top = torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, x, y))[-1]
    one = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10)
    three = cv.hessian_top_eigenvalue(
        model, F.cross_entropy, [(x[:3], y[:3]), (x[3:11], y[3:11]), (x[11:], y[11:])], tol=1e-10
    )
    assert one.converged and abs(one.value - float(top)) < 1e-8 * abs(float(top))
    assert abs(three.value - one.value) < 1e-8 * abs(one.value)
    assert one.n_products > 0 and one.residual <= 1e-10


def test_largest_algebraic_not_largest_magnitude():
    """A loss whose Hessian diag(1, 0.5, -0.2, -3) has its largest-magnitude eigenvalue negative:
    Lanczos returns the largest algebraic one (1), power iteration the most negative (-3)."""
    model = nn.Sequential(nn.Linear(4, 1, bias=False)).double()
    x = torch.eye(4)  # z_i = w_i
    curvature = torch.tensor([1.0, 0.5, -0.2, -3.0])

    def loss_fn(z, y):
        return 0.5 * (y * z.reshape(-1) ** 2).sum()

    lanczos = cv.hessian_top_eigenvalue(model, loss_fn, [(x, curvature)], tol=1e-10)
    assert abs(lanczos.value - 1.0) < 1e-8
    power = cv.hessian_top_eigenvalue(
        model, loss_fn, [(x, curvature)], method="power", tol=1e-12, max_iter=500
    )
    assert abs(power.value + 3.0) < 1e-6


def test_indefinite_network_hessian():
    model = tiny_mlp(seed=4)
    x, y = data(seed=5)
    evals = torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, x, y))
    assert evals[0] < 0  # indefinite
    result = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10)
    assert abs(result.value - float(evals[-1])) < 1e-8 * float(evals[-1])


def test_warm_start_needs_fewer_products():
    model = tiny_mlp()
    x, y = data()
    cold = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8)
    warm = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, init=cold.vector)
    assert warm.n_products < cold.n_products and abs(warm.value - cold.value) < 1e-7 * cold.value


def test_pyhessian_and_power_agree_on_a_psd_case():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3)).double()  # linear model + CE: PSD Hessian
    x, y = data()
    top = torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, x, y))[-1]
    for method in ("power", "pyhessian"):
        r = cv.hessian_top_eigenvalue(
            model, F.cross_entropy, [(x, y)], method=method, tol=1e-9, max_iter=1000
        )
        assert abs(r.value - float(top)) < 1e-4 * float(top), method
    assert model.training and all(p.grad is None for p in model.parameters())


def test_bn_model_in_train_mode_uses_batch_statistics():
    model = tiny_mlp(bn=True)
    model.train()
    x, y = data()
    top = torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, x, y))[-1]
    r = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10)
    assert abs(r.value - float(top)) < 1e-7 * abs(float(top))


def test_gauss_newton_matches_dense_j_m_jt():
    model = tiny_mlp()
    x, y = data()
    names = [n for n, _ in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    shapes = [p.shape for p in model.parameters()]

    def z_of(v):
        ps, i = [], 0
        for s in shapes:
            k = torch.Size(s).numel()
            ps.append(v[i : i + k].view(s))
            i += k
        return functional_call(model, dict(zip(names, ps, strict=True)), (x,))

    jac = torch.autograd.functional.jacobian(z_of, flat)  # N x C x m
    p = torch.softmax(z_of(flat), -1)
    m = cv.logit_hessian(p)
    g = torch.einsum("ncm,ncd,ndk->mk", jac, m, jac) / x.shape[0]
    top = torch.linalg.eigvalsh(g)[-1]
    r = cv.gauss_newton_top_eigenvalue(
        model, F.cross_entropy, [(x[:8], y[:8]), (x[8:], y[8:])], tol=1e-10
    )
    assert abs(r.value - float(top)) < 1e-8 * float(top)


# ----------------------------------------------------------------------------- Jacobians
@pytest.mark.parametrize("method", ["exact", "jvp", "algorithm2"])
def test_jacobian_norms_match_the_explicit_jacobian(method):
    model = tiny_mlp(c=4)
    x, _ = data(c=4)
    jac = dense_mean_jacobian(model, x)
    c = jac.shape[1]
    result = cv.jacobian_norms(model, [x[:9], x[9:]], method=method, tol=1e-12, max_iter=500)
    assert abs(result.spectral - float(torch.linalg.matrix_norm(jac, 2))) < 1e-7
    assert abs(result.frobenius - float(jac.norm())) < 1e-9
    assert abs(result.ones - float((jac @ torch.full((c,), 1 / math.sqrt(c))).norm())) < 1e-9


def test_per_example_jacobian_norms():
    model = tiny_mlp()
    x, _ = data(n=5)
    got = cv.per_example_jacobian_norms(model, x, chunk_size=2)
    for i in range(5):
        jac = dense_mean_jacobian(model, x[i : i + 1])
        assert abs(float(got[i]) - float(torch.linalg.matrix_norm(jac, 2))) < 1e-9


def test_io_jacobian_max():
    model = tiny_mlp()
    x, _ = data(n=6)
    best = 0.0
    for i in range(6):
        jac = torch.autograd.functional.jacobian(
            lambda u: torch.softmax(model(u.unsqueeze(0))[0], -1), x[i]
        )
        best = max(best, float(torch.linalg.matrix_norm(jac, 2)))
    assert abs(cv.io_jacobian_max(model, x, chunk_size=4) - best) < 1e-10


def test_rho_b_by_brute_force():
    model = tiny_mlp()
    x, y = data(n=8)
    params = list(model.parameters())

    def grad(xb, yb):
        return torch.cat(
            [g.reshape(-1) for g in torch.autograd.grad(F.cross_entropy(model(xb), yb), params)]
        )

    full = grad(x, y).pow(2).sum()
    mini = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 8, 2)]
    expected = full / torch.stack([grad(a, b).pow(2).sum() for a, b in mini]).mean()
    assert abs(cv.rho_b(model, F.cross_entropy, [(x, y)], mini) - float(expected)) < 1e-10
    assert cv.sgd_threshold(0.5, 0.01) == pytest.approx(100.0)
    assert cv.lambda_hat(3.0, 2.0) == 1.5


def test_norms():
    model = tiny_mlp()
    init = [p.detach().clone() for p in model.parameters()]
    flat = torch.cat([p.reshape(-1) for p in init])
    assert cv.weight_norm(model) == pytest.approx(float(flat.norm()))
    assert cv.dist_from_init(model, init) == 0.0
    assert cv.output_layer_norm(model) == pytest.approx(float(model[-1].weight.norm()))
    assert set(cv.layer_weight_norms(model)) == {n for n, _ in model.named_parameters()}
    x, _ = data()
    stats = cv.logit_stats(model, [x[:5], x[5:]])
    z = model(x)
    assert stats.logit_norm == pytest.approx(float(z.norm(dim=1).mean()))
    assert stats.logit_sum_abs == pytest.approx(float(z.sum(1).abs().mean()))


# ----------------------------------------------------------------------- non-perturbation
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_function_leaves_the_model_and_rng_alone(mode):
    model = tiny_mlp(bn=True)
    x, y = data()
    model.train()
    model(x)  # non-trivial running stats
    model.train(mode == "train")
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    before_params = [p.detach().clone() for p in model.parameters()]
    before_grads = [p.grad.clone() for p in model.parameters()]
    before_buffers = [b.clone() for b in model.buffers()]
    rng = torch.get_rng_state()
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]
    cv.hessian_top_eigenvalue(model, F.cross_entropy, batches, max_iter=5)
    cv.hessian_top_eigenvalue(model, F.cross_entropy, batches, max_iter=5, dtype=torch.float32)
    cv.gauss_newton_top_eigenvalue(model, F.cross_entropy, batches, max_iter=5)
    for method in ("exact", "jvp", "algorithm2"):
        cv.jacobian_norms(model, batches, method=method, max_iter=5)
    cv.rho_b(model, F.cross_entropy, batches, batches)
    cv.logit_stats(model, batches)
    if mode == "eval":
        cv.io_jacobian_max(model, x)
        cv.per_example_jacobian_norms(model, x[:3])
    assert model.training == (mode == "train") and all(
        m.training == (mode == "train") for m in model.modules()
    )
    assert all(torch.equal(a, p) for a, p in zip(before_params, model.parameters(), strict=True))
    assert all(
        torch.equal(a, p.grad) for a, p in zip(before_grads, model.parameters(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b in zip(before_buffers, model.buffers(), strict=True))
    assert torch.equal(rng, torch.get_rng_state())
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm1d))


def test_float64_option_on_a_float32_model():
    model = tiny_mlp().float()
    x, y = data()
    r = cv.hessian_top_eigenvalue(
        model, F.cross_entropy, [(x.float(), y)], dtype=torch.float64, tol=1e-10
    )
    assert r.vector.dtype == torch.float64
    assert next(model.parameters()).dtype == torch.float32


def test_bad_input_is_rejected():
    model = tiny_mlp()
    x, y = data()
    with pytest.raises(ValueError, match="unknown method"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], method="arnoldi")
    with pytest.raises(ValueError, match="unknown method"):
        cv.jacobian_norms(model, x, method="magic")
    with pytest.raises(ValueError, match="batches is empty"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [])
    with pytest.raises(ValueError, match="C >= 2"):
        cv.impurity(torch.ones(3, 1))
