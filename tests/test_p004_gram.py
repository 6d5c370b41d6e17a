"""Paper 004's Gram matrix M = (2/n) dF/dtheta dF/dtheta^T: Lanczos against dense M on tiny
models, the output-layer part M_A, the residual split D = (D^T v_1) v_1 + R, and the exact
two-layer linear formula of Section 4."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ijr.curvature import gauss_newton_top_eigenvalue
from ijr.curvature.gram import (
    decompose_residual,
    gram_matrix,
    gram_spectrum,
    output_layer_names,
    two_layer_linear_theory,
)
from ijr.models import build


def _data(n=12, d=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.where(torch.rand(n, 1, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    return x, y


def _fcn(d=6, seed=0, activation="tanh"):
    torch.manual_seed(seed)
    return build("fcn3", num_classes=1, in_shape=(d,), width=5, activation=activation).double()


def test_lanczos_matches_dense_gram():
    x, y = _data()
    model = _fcn()
    dense = gram_matrix(model, x)
    values, vectors = torch.linalg.eigh(dense)
    names = output_layer_names(model)
    dense_a = gram_matrix(model, x, names=names)
    res = gram_spectrum(model, [(x[:5], y[:5]), (x[5:], y[5:])], tol=1e-10, max_iter=200)
    assert res.top == pytest.approx(float(values[-1]), rel=1e-8)
    assert res.second == pytest.approx(float(values[-2]), rel=1e-6)
    assert res.output_top == pytest.approx(float(torch.linalg.eigvalsh(dense_a)[-1]), rel=1e-8)
    assert abs(float(torch.dot(res.v1, vectors[:, -1]))) == pytest.approx(1.0, abs=1e-8)
    dense_res = gram_spectrum(model, (x, y), method="dense")
    assert dense_res.top == pytest.approx(float(values[-1]), rel=1e-10)
    assert dense_res.second == pytest.approx(float(values[-2]), rel=1e-10)


def test_gram_top_is_the_gauss_newton_sharpness_of_the_mse():
    """M and the Gauss-Newton matrix of L = (1/n)||F - Y||^2 share their non-zero eigenvalues
    (Section 2)."""
    x, y = _data(seed=1)
    model = _fcn(seed=1)
    res = gram_spectrum(model, (x, y), tol=1e-10, second=False, output_layer=False)
    gn = gauss_newton_top_eigenvalue(model, nn.MSELoss(), (x, y), tol=1e-10, max_iter=300)
    assert res.top == pytest.approx(gn.value, rel=1e-7)


def test_gram_matrix_is_the_explicit_jacobian_product():
    x, _ = _data(n=4)
    model = _fcn()
    params = [p for p in model.parameters()]
    rows = []
    for i in range(4):
        out = model(x[i : i + 1])[0, 0]
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, params)]))
    jac = torch.stack(rows)
    torch.testing.assert_close(gram_matrix(model, x), 0.5 * jac @ jac.T, rtol=1e-12, atol=1e-12)


def test_residual_decomposition():
    gen = torch.Generator().manual_seed(3)
    f = torch.randn(7, generator=gen, dtype=torch.float64)
    y = torch.ones(7, dtype=torch.float64)
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    v = -v / v.norm()
    res = decompose_residual(f, y, v, top=1.0)
    d = f - y
    assert res.d_v1 == pytest.approx(abs(float(d @ v)))
    assert float(res.residual @ res.v1) >= 0
    torch.testing.assert_close(res.rest + res.d_v1 * res.v1, d)
    assert float(res.rest @ res.v1) == pytest.approx(0.0, abs=1e-12)
    assert res.loss == pytest.approx(res.rest_loss + res.d_v1**2 / 7)
    assert res.d_dot_f == pytest.approx(float(d @ f))


def test_two_layer_linear_gram_formula():
    """Section 4.1: M = (2/(mn)) (||A||^2 X X^T + X W^T W X^T), M_A the second term."""
    x, y = _data(n=10, d=6, seed=2)
    torch.manual_seed(2)
    model = build("fc2", num_classes=1, in_shape=(6,), width=8).double()
    m, n = 8, 10
    a, w = model.output.weight.detach(), model.hidden.weight.detach()
    expected_a = 2.0 / (m * n) * x @ w.T @ w @ x.T
    expected = 2.0 / (m * n) * float(a.square().sum()) * x @ x.T + expected_a
    torch.testing.assert_close(gram_matrix(model, x), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gram_matrix(model, x, names=output_layer_names(model)), expected_a)
    spec = gram_spectrum(model, (x, y), tol=1e-10)
    theory = two_layer_linear_theory(model, x, spec)
    gram_x = torch.linalg.eigvalsh(x @ x.T)
    approx = (
        2.0 / (m * n) * (float(a.square().sum()) + float(w.square().sum()) / 6) * float(gram_x[-1])
    )
    assert theory["theory_ratio"] == pytest.approx(spec.top / approx)
    assert theory["input_gap"] == pytest.approx(float(gram_x[-1] / gram_x[-2]))
    assert 0.0 <= theory["v1_alignment"] <= 1.0 + 1e-12


def test_gram_leaves_the_model_alone():
    x, y = _data()
    model = _fcn()
    before = [p.detach().clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    gram_spectrum(model, (x, y), generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(state, torch.random.get_rng_state())


def test_gram_refuses_a_multi_output_model_and_a_nonlinear_theory_model():
    x, _ = _data()
    model = build("fcn3", num_classes=3, in_shape=(6,), width=4).double()
    with pytest.raises(ValueError, match="one-output model"):
        gram_matrix(model, x)
    relu = build("fc2", num_classes=1, in_shape=(6,), width=4, activation="relu").double()
    spec = gram_spectrum(relu, (x, torch.ones(12, 1, dtype=torch.float64)), output_layer=False)
    with pytest.raises(ValueError, match="activation=linear"):
        two_layer_linear_theory(relu, x, spec)
    assert math.isfinite(spec.top)


def test_the_gram_probe_refuses_a_multi_output_model_in_one_line():
    from ijr.probes.config import parse_probe_config
    from ijr.probes.measure import ProbeMeasurer

    config = parse_probe_config({"name": "all", "expensive": ["gram"]})
    with pytest.raises(ValueError, match="data.task=two_class_mse"):
        ProbeMeasurer(config, num_outputs=4)
    assert ProbeMeasurer(config, num_outputs=1).num_outputs == 1


def test_the_eos_tracker_needs_its_probe_groups():
    from ijr.probes.config import parse_probe_config

    with pytest.raises(ValueError, match="needs the probe group"):
        parse_probe_config(
            {"name": "all", "cheap": [], "expensive": ["gram"], "eos": {"enabled": True}}
        )
    with pytest.raises(ValueError, match="loss_tolerance"):
        parse_probe_config({"name": "all", "eos": {"loss_tolerance": -0.5}})
