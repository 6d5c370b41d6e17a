"""ijr.curvature on tiny models against exact dense float64 computations (paper 000, eqs. 8-9,
Proposition 5.2; paper 002), plus the non-perturbation contract of docs/design.md ("Curvature")."""

from __future__ import annotations

import copy
import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import ijr.curvature as cv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
from pyhessian_reference import pyhessian_top_eigenvalue  # noqa: E402 - the independent reference

F64 = torch.float64


# ------------------------------------------------------------------------------ fixtures --------
def tiny_mlp(seed=0, c=3, bn=False, dropout=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 7)]
    if bn:
        layers.append(nn.BatchNorm1d(7))
    layers.append(nn.Tanh())
    if dropout:
        layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(7, c))
    return nn.Sequential(*layers).to(F64)


def tiny_cnn(seed=0, c=3):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, c),
    ).to(F64)


def data(n=20, c=3, seed=1, shape=(5,)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g, dtype=F64), torch.randint(0, c, (n,), generator=g)


def _trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def flat_function(model, fn):
    """theta (flat, trainable parameters) -> fn(functional model at theta); reference only."""
    named = _trainable(model)
    sizes = [p.numel() for _, p in named]
    ref = copy.deepcopy(model)  # the reference may update running stats: never the tested model

    def at(theta):
        pieces = [
            t.view(p.shape) for t, (_, p) in zip(torch.split(theta, sizes), named, strict=True)
        ]
        state = {n: b.clone() for n, b in ref.named_buffers()}
        state.update(zip([n for n, _ in named], pieces, strict=True))
        return fn(lambda x: functional_call(ref, state, (x,)))

    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])
    return at, theta0


def dense_hessian(model, loss_fn, chunks):
    total = sum(x.shape[0] for x, _ in chunks)
    hessian = 0.0
    for x, y in chunks:  # the mean loss over all examples, chunk k weighted n_k / N
        f, theta0 = flat_function(model, lambda net, x=x, y=y: loss_fn(net(x), y))
        hessian = hessian + x.shape[0] / total * torch.autograd.functional.hessian(f, theta0)
    return hessian


def dense_logit_jacobian(model, x):
    """J with shape (N, C, m): d z_i / d theta."""
    f, theta0 = flat_function(model, lambda net: net(x))
    return torch.autograd.functional.jacobian(f, theta0)


# ------------------------------------------------------------------------------ sharpness ---------
@pytest.mark.parametrize("kind", ["mlp", "mlp_bn_train", "cnn_bn_train"])
def test_hessian_top_eigenvalue_matches_dense(kind):
    if kind == "cnn_bn_train":
        model, (x, y) = tiny_cnn(), data(n=12, shape=(2, 4, 4))
    else:
        model, (x, y) = tiny_mlp(bn=kind == "mlp_bn_train"), data()
    model.train()
    hessian = dense_hessian(model, F.cross_entropy, [(x, y)])
    evals = torch.linalg.eigvalsh(hessian)
    result = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10, max_iter=300)
    assert result.converged and result.n_products > 1
    assert abs(result.value - float(evals[-1])) <= 1e-8 * abs(float(evals[-1]))
    v = result.vector
    assert v.shape == (hessian.shape[0],) and abs(float(v.norm()) - 1) < 1e-12
    assert float((hessian @ v - result.value * v).norm()) <= 1e-5 * abs(result.value)
    product = cv.hessian_vector_product(model, F.cross_entropy, [(x, y)], v)
    assert torch.allclose(product, hessian @ v, atol=1e-12, rtol=1e-10)


def test_chunk_size_independence():
    model = tiny_mlp(seed=2)
    x, y = data(n=23)
    one = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10, max_iter=300)
    chunks = [(x[:3], y[:3]), (x[3:14], y[3:14]), (x[14:], y[14:])]
    for keep in (False, True):
        three = cv.hessian_top_eigenvalue(
            model, F.cross_entropy, chunks, tol=1e-10, max_iter=300, keep_graphs=keep
        )
        assert abs(three.value - one.value) <= 1e-8 * abs(one.value)
    # with batch-statistics BatchNorm the chunks are the batches: exact against the weighted sum
    bn = tiny_mlp(seed=2, bn=True)
    expected = torch.linalg.eigvalsh(dense_hessian(bn, F.cross_entropy, chunks))[-1]
    got = cv.hessian_top_eigenvalue(bn, F.cross_entropy, chunks, tol=1e-10, max_iter=300)
    assert abs(got.value - float(expected)) <= 1e-8 * abs(float(expected))


def test_largest_algebraic_not_largest_magnitude():
    """Hessian diag(1, 0.5, -0.2, -3): the largest-magnitude eigenvalue is negative."""
    model = nn.Sequential(nn.Linear(4, 1, bias=False)).to(F64)
    x = torch.eye(4, dtype=F64)  # z_i = w_i
    curvature = torch.tensor([1.0, 0.5, -0.2, -3.0], dtype=F64)

    def loss_fn(z, c):
        return 0.5 * (c * z.reshape(-1) ** 2).sum()

    lanczos = cv.hessian_top_eigenvalue(model, loss_fn, [(x, curvature)], tol=1e-10)
    assert abs(lanczos.value - 1.0) < 1e-10
    assert abs(abs(float(lanczos.vector[0])) - 1.0) < 1e-8
    power = cv.hessian_top_eigenvalue(
        model, loss_fn, [(x, curvature)], method="power", tol=1e-12, max_iter=500
    )
    assert abs(power.value + 3.0) < 1e-8  # power iteration finds the largest magnitude
    shifted = cv.hessian_top_eigenvalue(
        model, loss_fn, [(x, curvature)], method="power", shift=-3.0, tol=1e-12, max_iter=2000
    )
    assert abs(shifted.value - 1.0) < 1e-6


def test_indefinite_network_hessian_most_negative_dominates():
    """A tiny network at a point where the Hessian's most negative eigenvalue is larger in
    magnitude than its top one: Lanczos must still return the (positive) top one."""
    model = tiny_mlp(seed=4)
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(9), dtype=F64)
    target = torch.randn(30, 3, generator=torch.Generator().manual_seed(10), dtype=F64)

    def loss_fn(z, t):  # a crafted loss (negated MSE): H = -G + residual term, strongly indefinite
        return -((z - t) ** 2).mean()

    evals = torch.linalg.eigvalsh(dense_hessian(model, loss_fn, [(x, target)]))
    assert evals[0] < 0 and -float(evals[0]) > float(evals[-1]) > 0
    result = cv.hessian_top_eigenvalue(model, loss_fn, [(x, target)], tol=1e-10, max_iter=300)
    assert abs(result.value - float(evals[-1])) <= 1e-8 * float(evals[-1])
    power = cv.hessian_top_eigenvalue(
        model, loss_fn, [(x, target)], method="power", tol=1e-10, max_iter=3000
    )
    assert power.value < 0  # the sign error Lanczos avoids


def test_warm_start_needs_fewer_products():
    model = tiny_mlp()
    x, y = data()
    cold = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, max_iter=300)
    warm = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, init=cold.vector)
    assert warm.n_products < cold.n_products
    assert abs(warm.value - cold.value) < 1e-7 * cold.value
    as_list = list(cv.split_like_parameters(cold.vector, model).values())
    assert [t.shape for t in as_list] == [p.shape for p in model.parameters()]
    again = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, init=as_list)
    assert again.n_products == warm.n_products


def test_solver_history_is_the_krylov_ritz_value_after_each_product():
    """history[k-1] is the top eigenvalue of A restricted to the k-dimensional Krylov space (the
    Rayleigh-Ritz value, computed densely from an explicit basis), across an explicit restart."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=F64))
    a = q @ torch.diag(torch.linspace(-5.0, 4.0, 12, dtype=F64)) @ q.T
    v = torch.randn(12, generator=g, dtype=F64)
    result = cv.lanczos_top(lambda u: a @ u, v, tol=1e-12, max_iter=6)
    assert len(result.history) == result.n_products == 6
    assert result.history[-1] == result.value
    for k in range(1, 7):
        krylov = torch.stack([torch.linalg.matrix_power(a, i) @ v for i in range(k)], 1)
        basis, _ = torch.linalg.qr(krylov)
        ritz = float(torch.linalg.eigvalsh(basis.T @ a @ basis)[-1])
        assert abs(result.history[k - 1] - ritz) < 1e-9
    restarted = cv.lanczos_top(lambda u: a @ u, v, tol=1e-12, max_iter=200, max_basis=3)
    assert len(restarted.history) == restarted.n_products
    assert all(
        b >= a_ - 1e-10 for a_, b in zip(restarted.history[:-1], restarted.history[1:], strict=True)
    )
    assert abs(restarted.history[-1] - 4.0) < 1e-6
    power = cv.power_top(lambda u: a @ u, v, tol=1e-12, max_iter=5)
    assert len(power.history) == power.n_products == 5
    for k in range(5):
        w = torch.linalg.matrix_power(a, k) @ v
        assert abs(power.history[k] - float(w @ a @ w / (w @ w))) < 1e-9


def test_power_and_pyhessian_agree_on_a_psd_case():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3)).to(F64)  # linear model + cross-entropy: PSD Hessian
    x, y = data()
    top = float(torch.linalg.eigvalsh(dense_hessian(model, F.cross_entropy, [(x, y)]))[-1])
    lanczos = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10)
    assert abs(lanczos.value - top) < 1e-9 * top
    power = cv.hessian_top_eigenvalue(
        model, F.cross_entropy, [(x, y)], method="power", tol=1e-10, max_iter=3000
    )
    pyhessian = pyhessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-10, max_iter=3000)
    for result in (power, pyhessian):
        assert abs(result.value - top) < 1e-4 * top, result.method
        assert result.n_products > 1, result.method
    two = pyhessian_top_eigenvalue(
        model, F.cross_entropy, [(x[:8], y[:8]), (x[8:], y[8:])], tol=1e-10, max_iter=3000
    )
    assert abs(two.value - top) < 1e-4 * top


def test_gauss_newton_matches_dense_j_m_jt():
    model = tiny_mlp(seed=3)
    x, y = data(n=9)
    jac = dense_logit_jacobian(model, x)  # (N, C, m)
    for loss_fn in (nn.CrossEntropyLoss(label_smoothing=0.1), nn.MSELoss()):
        targets = y if isinstance(loss_fn, nn.CrossEntropyLoss) else F.one_hot(y, 3).to(F64)
        z = model(x).detach()
        m_logit = torch.autograd.functional.hessian(
            lambda zz, f=loss_fn, t=targets: f(zz, t), z
        )  # (N,C,N,C)
        g = torch.einsum("icm,icjd,jdn->mn", jac, m_logit, jac)
        top = float(torch.linalg.eigvalsh(g)[-1])
        result = cv.gauss_newton_top_eigenvalue(
            model, loss_fn, [(x, targets)], tol=1e-10, max_iter=300
        )
        assert abs(result.value - top) <= 1e-8 * top
        v = torch.randn(g.shape[0], generator=torch.Generator().manual_seed(0), dtype=F64)
        chunked = cv.gauss_newton_vector_product(
            model, loss_fn, [(x[:4], targets[:4]), (x[4:], targets[4:])], v
        )
        assert torch.allclose(chunked, g @ v, atol=1e-12, rtol=1e-10)
    # cross-entropy: M = diag(p) - p p^T per example, scaled by 1/N (eq. 7, eq. 9)
    p = torch.softmax(model(x).detach(), -1)
    g_ce = torch.einsum("icm,icd,idn->mn", jac, cv.logit_hessian(p), jac) / x.shape[0]
    assert (
        abs(
            cv.gauss_newton_top_eigenvalue(model, "cross_entropy", [(x, y)], tol=1e-10).value
            - float(torch.linalg.eigvalsh(g_ce)[-1])
        )
        < 1e-9
    )


# ------------------------------------------------------------------------------ Jacobians --------
@pytest.mark.parametrize("method", ["exact", "jvp", "algorithm2"])
def test_jacobian_norms_match_the_explicit_jacobian(method):
    model = tiny_mlp(seed=5, c=4)
    x, _ = data(n=11, c=4)
    mean_jac = dense_logit_jacobian(model, x).mean(0).T  # <J>, (m, C) (eq. 8)
    singular = torch.linalg.svdvals(mean_jac)
    result = cv.jacobian_norms(model, [x[:4], x[4:]], method=method, tol=1e-12, max_iter=5000)
    assert result.converged and result.num_classes == 4 and result.n_passes > 0
    assert abs(result.spectral - float(singular[0])) <= 1e-7 * float(singular[0])
    ones = float((mean_jac @ torch.full((4,), 0.5, dtype=F64)).norm())
    assert abs(result.ones - ones) <= 1e-10 * ones
    if method == "jvp":
        assert result.frobenius is None
    else:
        assert abs(result.frobenius - float(mean_jac.norm())) <= 1e-10 * float(mean_jac.norm())
    if method == "exact":
        assert torch.allclose(
            torch.tensor(result.gram_eigenvalues, dtype=F64), singular**2, rtol=1e-10
        )


def test_jacobian_norms_accept_batches_and_bn_train_mode():
    model = tiny_mlp(seed=6, bn=True).train()
    x, y = data(n=10)
    mean_jac = dense_logit_jacobian(model, x).mean(0).T
    result = cv.jacobian_norms(model, [(x, y)])
    assert abs(result.spectral - float(torch.linalg.svdvals(mean_jac)[0])) < 1e-10


def test_per_example_jacobian_norms():
    model = tiny_mlp(seed=7).eval()
    x, _ = data(n=6)
    jac = dense_logit_jacobian(model, x)
    expected = torch.linalg.matrix_norm(jac, ord=2)
    got = cv.per_example_jacobian_norms(
        model, [x[:2], x[2:]], max_elements=40
    )  # forces micro-batches
    assert torch.allclose(got, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="independent examples"):
        cv.per_example_jacobian_norms(tiny_mlp(bn=True).train(), x)


def test_io_jacobian_of_the_softmaxed_model():
    model = tiny_mlp(seed=8, bn=True)
    x, _ = data(n=5)
    model.train()
    model(x)  # running statistics that differ from the batch statistics
    model.eval()
    expected = [
        torch.linalg.matrix_norm(
            torch.autograd.functional.jacobian(
                lambda xi: torch.softmax(model(xi.unsqueeze(0)), -1)[0], xi
            ),
            ord=2,
        )
        for xi in x
    ]
    per_example = cv.io_jacobian_norms(model, x)
    assert torch.allclose(per_example, torch.stack(expected), rtol=1e-10)
    assert cv.io_jacobian_max(model, [x[:2], x[2:]]) == pytest.approx(
        float(max(expected)), rel=1e-10
    )
    # batch-statistics BatchNorm: the spectral norm of the whole chunk map (paper 002, eq. 27)
    model.train()
    full = torch.autograd.functional.jacobian(lambda xx: torch.softmax(model(xx), -1), x).reshape(
        5 * 3, 5 * 5
    )
    assert cv.io_jacobian_max(model, x, tol=1e-12) == pytest.approx(
        float(torch.linalg.matrix_norm(full, ord=2)), rel=1e-8
    )


def test_lambda_hat_and_thresholds():
    assert cv.lambda_hat(3.0, 2.0) == 1.5
    assert cv.sgd_threshold(0.5, 0.01) == pytest.approx(100.0)
    assert cv.sgd_threshold(1.0, 0.04) == pytest.approx(50.0)  # full batch: 2 / eta
    with pytest.raises(ValueError, match="positive"):
        cv.lambda_hat(1.0, 0.0)
    with pytest.raises(ValueError, match="lr"):
        cv.sgd_threshold(1.0, 0.0)


# ------------------------------------------------------------------------------ rho_B ------------
def test_rho_b_by_brute_force_enumeration():
    model = tiny_mlp(seed=9)
    x, y = data(n=6)
    params = list(model.parameters())

    def grad(xb, yb):
        return torch.cat(
            [g.reshape(-1) for g in torch.autograd.grad(F.cross_entropy(model(xb), yb), params)]
        )

    n, b = 6, 2
    subsets = [torch.tensor(s) for s in itertools.combinations(range(n), b)]
    expected_mean = torch.stack([grad(x[s], y[s]).square().sum() for s in subsets]).mean()
    full = grad(x, y).square().sum()
    # eq. 42 from per-example gradients: E||g_B||^2 = ||g_D||^2 + (N-B)/(B(N-1)) E||g - g_D||^2
    per_example = torch.stack([grad(x[i : i + 1], y[i : i + 1]) for i in range(n)])
    variance = (per_example - per_example.mean(0)).square().sum(1).mean()
    closed_form = full + (n - b) / (b * (n - 1)) * variance
    assert torch.allclose(expected_mean, closed_form, rtol=1e-10)
    chunks = [(x[:4], y[:4]), (x[4:], y[4:])]  # indices run across chunks
    result = cv.rho_b(model, F.cross_entropy, chunks, subsets)
    assert float(result) == pytest.approx(float(full / expected_mean), rel=1e-10)
    assert result.num_minibatches == len(subsets)
    as_pairs = cv.rho_b(model, F.cross_entropy, chunks, [(x[s], y[s]) for s in subsets])
    assert float(as_pairs) == pytest.approx(float(result), rel=1e-12)


def test_rho_b_random_minibatches_are_seeded_and_without_replacement():
    model = tiny_mlp(seed=10)
    x, y = data(n=12)
    # duplicated examples would make a mini-batch gradient differ from every subset's: with B = N
    # and sampling without replacement each mini-batch is the whole set, so rho_B = 1 exactly
    assert float(
        cv.rho_b(model, F.cross_entropy, [(x, y)], batch_size=12, num_minibatches=3)
    ) == pytest.approx(1.0, rel=1e-12)
    a = cv.rho_b(
        model,
        F.cross_entropy,
        [(x, y)],
        batch_size=3,
        num_minibatches=5,
        generator=torch.Generator().manual_seed(1),
    )
    b = cv.rho_b(
        model,
        F.cross_entropy,
        [(x, y)],
        batch_size=3,
        num_minibatches=5,
        generator=torch.Generator().manual_seed(1),
    )
    c = cv.rho_b(
        model,
        F.cross_entropy,
        [(x, y)],
        batch_size=3,
        num_minibatches=5,
        generator=torch.Generator().manual_seed(2),
    )
    assert float(a) == float(b) and float(a) != float(c) and 0 < float(a) < 1
    with pytest.raises(ValueError, match="batch_size"):
        cv.rho_b(model, F.cross_entropy, [(x, y)])


# ------------------------------------------------------------------------------ norms ------------
def test_norms_and_logit_stats():
    model = tiny_mlp(seed=11)
    init = [p.detach().clone() for p in model.parameters()]
    flat = torch.cat([p.reshape(-1) for p in init])
    assert cv.weight_norm(model) == pytest.approx(float(flat.norm()), rel=1e-12)
    assert cv.dist_from_init(model, init) == 0.0
    moved = [t + 0.5 for t in init]
    assert cv.dist_from_init(model, moved) == pytest.approx(
        0.5 * math.sqrt(flat.numel()), rel=1e-12
    )
    assert cv.dist_from_init(
        model, dict(zip([n for n, _ in model.named_parameters()], moved, strict=True))
    ) == pytest.approx(0.5 * math.sqrt(flat.numel()))
    assert cv.output_layer_norm(model) == pytest.approx(
        float(model[-1].weight.detach().norm()), rel=1e-12
    )
    assert cv.layer_weight_norms(model) == pytest.approx(
        {
            "0.weight": float(model[0].weight.detach().norm()),
            "2.weight": float(model[2].weight.detach().norm()),
        }
    )
    x, y = data()
    stats = cv.logit_stats(model, [(x[:5], y[:5]), (x[5:], y[5:])])
    z = model(x).detach()
    assert stats.logit_norm == pytest.approx(float(z.norm(dim=1).mean()), rel=1e-12)
    assert stats.logit_sum_abs == pytest.approx(
        float((z.sum(1) / math.sqrt(3)).abs().mean()), rel=1e-12
    )
    with pytest.raises(ValueError, match="nn.Linear"):
        cv.output_layer_norm(nn.Sequential(nn.Conv2d(1, 1, 1)))
    with pytest.raises(ValueError, match="init_params"):
        cv.dist_from_init(model, init[:1])


# ------------------------------------------------------------------------------ non-perturbation -
def _snapshot(model):
    return (
        [p.detach().clone() for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [b.clone() for b in model.buffers()],
        [m.training for m in model.modules()],
        torch.get_rng_state(),
    )


def _same(a, b):
    def eq(u, v):
        return (u is None and v is None) or (u is not None and v is not None and torch.equal(u, v))

    return (
        all(eq(u, v) for u, v in zip(a[0], b[0], strict=True))
        and all(eq(u, v) for u, v in zip(a[1], b[1], strict=True))
        and all(eq(u, v) for u, v in zip(a[2], b[2], strict=True))
        and a[3] == b[3]
        and torch.equal(a[4], b[4])
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("grads", ["none", "set"])
def test_every_function_leaves_the_model_and_rng_alone(mode, grads):
    model = tiny_mlp(bn=True)
    x, y = data()
    model.train()
    model(x)  # non-trivial running statistics and num_batches_tracked
    model.train(mode == "train")
    if grads == "set":
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.25)
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]
    calls = {
        "hessian_lanczos": lambda: cv.hessian_top_eigenvalue(
            model, F.cross_entropy, batches, max_iter=4
        ),
        "hessian_power": lambda: cv.hessian_top_eigenvalue(
            model, F.cross_entropy, batches, method="power", max_iter=3
        ),
        "pyhessian_reference": lambda: pyhessian_top_eigenvalue(
            model, F.cross_entropy, batches, max_iter=3
        ),
        "hessian_float32": lambda: cv.hessian_top_eigenvalue(
            model, F.cross_entropy, batches, max_iter=3, dtype=torch.float32
        ),
        "hvp": lambda: cv.hessian_vector_product(
            model,
            F.cross_entropy,
            batches,
            torch.ones(sum(p.numel() for p in model.parameters()), dtype=F64),
        ),
        "gauss_newton": lambda: cv.gauss_newton_top_eigenvalue(
            model, F.cross_entropy, batches, max_iter=3
        ),
        "jacobian_exact": lambda: cv.jacobian_norms(model, batches, method="exact"),
        "jacobian_jvp": lambda: cv.jacobian_norms(model, batches, method="jvp", max_iter=3),
        "jacobian_algorithm2": lambda: cv.jacobian_norms(
            model, batches, method="algorithm2", max_iter=2
        ),
        "rho_b": lambda: cv.rho_b(model, F.cross_entropy, batches, batch_size=4, num_minibatches=2),
        "logit_stats": lambda: cv.logit_stats(model, batches),
        "mean_gradient": lambda: cv.mean_gradient(model, F.cross_entropy, batches),
        "margin_directions": lambda: cv.margin_directions(model, batches),
        "io_jacobian_max": lambda: cv.io_jacobian_max(model, x[:6], max_iter=3),
        "norms": lambda: (
            cv.weight_norm(model),
            cv.layer_weight_norms(model),
            cv.output_layer_norm(model),
        ),
    }
    if mode == "eval":
        calls["per_example"] = lambda: cv.per_example_jacobian_norms(model, x[:3])
        calls["gradient_margin_cosine"] = lambda: cv.gradient_margin_cosine(
            model, F.cross_entropy, [(x[:3], y[:3])]
        )
    for name, call in calls.items():
        before = _snapshot(model)
        call()
        assert _same(before, _snapshot(model)), name
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm1d))


def test_dropout_in_train_mode_gives_a_fixed_operator_and_keeps_the_rng():
    model = tiny_mlp(seed=12, dropout=True).train()
    x, y = data()
    v = torch.randn(
        sum(p.numel() for p in model.parameters()),
        generator=torch.Generator().manual_seed(3),
        dtype=F64,
    )
    rng = torch.get_rng_state()
    first = cv.hessian_vector_product(model, F.cross_entropy, [(x, y)], v)
    second = cv.hessian_vector_product(model, F.cross_entropy, [(x, y)], v)
    assert torch.equal(first, second)  # same dropout masks for every product
    result = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=1e-8, max_iter=200)
    assert result.converged
    assert torch.equal(rng, torch.get_rng_state())


def test_float64_option_on_a_float32_model():
    model = tiny_mlp(seed=13).float()
    x, y = data()
    reference = copy.deepcopy(model).to(F64)
    top = float(torch.linalg.eigvalsh(dense_hessian(reference, F.cross_entropy, [(x, y)]))[-1])
    result = cv.hessian_top_eigenvalue(
        model, F.cross_entropy, [(x.float(), y)], dtype=F64, tol=1e-10, max_iter=300
    )
    assert result.vector.dtype == F64 and abs(result.value - top) < 1e-8 * top
    assert next(model.parameters()).dtype == torch.float32
    gn = cv.gauss_newton_top_eigenvalue(
        model, F.cross_entropy, [(x.float(), y)], dtype=F64, max_iter=5
    )
    assert gn.vector.dtype == F64
    assert cv.per_example_jacobian_norms(model.eval(), x.float()[:2], dtype=F64).dtype == F64
    assert cv.io_jacobian_norms(model, x.float()[:2], dtype=F64).dtype == F64
    single = cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x.float(), y)], max_iter=5)
    assert single.vector.dtype == torch.float32


def test_bad_input_is_rejected():
    model = tiny_mlp()
    x, y = data()
    with pytest.raises(ValueError, match="method must be one of"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], method="arnoldi")
    with pytest.raises(ValueError, match="method must be one of"):
        cv.jacobian_norms(model, x, method="magic")
    with pytest.raises(ValueError, match="non-empty list"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [])
    with pytest.raises(ValueError, match="same non-zero leading size"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y[:3])])
    with pytest.raises(ValueError, match="tol"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], tol=0)
    with pytest.raises(ValueError, match="init has"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], init=torch.ones(3))
    with pytest.raises(ValueError, match="scripts/bench/pyhessian_reference.py"):
        cv.hessian_top_eigenvalue(model, F.cross_entropy, [(x, y)], method="pyhessian")
    with pytest.raises(ValueError, match="scripts/bench/pyhessian_reference.py"):
        cv.gauss_newton_top_eigenvalue(model, F.cross_entropy, [(x, y)], method="pyhessian")
    with pytest.raises(ValueError, match="torch.nn.Module"):
        cv.hessian_top_eigenvalue("model", F.cross_entropy, [(x, y)])
    with pytest.raises(ValueError, match="loss kind"):
        cv.gauss_newton_top_eigenvalue(model, "hinge", [(x, y)])
    with pytest.raises(ValueError, match="scalar"):
        cv.hessian_top_eigenvalue(model, nn.CrossEntropyLoss(reduction="none"), [(x, y)])
    with pytest.raises(ValueError, match="dtype"):
        cv.jacobian_norms(model, x, dtype=torch.int64)


def test_the_library_never_imports_pyhessian():
    """PyHessian (global RNG, default dtype, monkey-patching) is a reference of scripts/bench,
    never imported by ijr.curvature (issue 18, item 4)."""
    code = (
        "import sys, torch, ijr.curvature as cv; from torch import nn; "
        "m = nn.Linear(3, 2); x = torch.randn(4, 3); y = torch.tensor([0, 1, 0, 1]); "
        "cv.hessian_top_eigenvalue(m, nn.functional.cross_entropy, [(x, y)], max_iter=3); "
        "print('pyhessian' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
