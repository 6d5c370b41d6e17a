"""Training methods (ijr.methods): SAM, ASAM, EJR (eq. 51), efficient EJR (eqs. 11-13 / 53-54),
EJR.v2 (eq. 55), the gradient-norm penalty and the input-Jacobian penalty.

Math is checked against dense references built with torch.func (explicit Jacobians by jacrev,
gradients of gradients by nested transforms) on tiny float64 models; the end-to-end tests run
``train(cfg)`` on a small digits problem.
"""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from conftest import compose_cfg, tiny_overrides
from ijr.methods import METHODS, build_module
from ijr.methods.base import TrainingModule
from ijr.methods.common import direction_generator, random_unit_vectors
from ijr.methods.ejr import (
    EfficientEJR,
    EfficientEJRv2,
    ExplicitJacobianRegularization,
    ejr_directions,
)
from ijr.methods.penalties import GradientNormPenalty, InputJacobianRegularization
from ijr.methods.sam import ASAM, SAM, asam_scaled_mask

NUM_CLASSES = 5
IN_DIM = 6


@pytest.fixture(autouse=True)
def single_thread():
    """These tiny problems run fastest on one thread (and much faster than on two when the
    machine's cores are shared); the previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- helpers
def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(IN_DIM, 8), nn.Tanh(), nn.Linear(8, NUM_CLASSES)).double()


def tiny_bn_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 4),
    ).double()


def batch(n: int = 10, seed: int = 1, shape=(IN_DIM,), classes: int = NUM_CLASSES):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def make(cls, model, physical_batch_size=None, seed=0, **kwargs) -> TrainingModule:
    return cls(
        model,
        loss="cross_entropy",
        total_steps=100,
        physical_batch_size=physical_batch_size,
        seed=seed,
        **kwargs,
    )


def gradients(module: TrainingModule, x, y, step: int = 0):
    """(.grad of every parameter after one compute_gradients, the logs)."""
    module.model.zero_grad(set_to_none=True)
    logs = module.compute_gradients(x, y, step)
    return [p.grad.detach().clone() for p in module.model.parameters()], logs


def as_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def flat(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in d.values()])


def assert_close_lists(actual, expected, rtol=1e-9, atol=1e-12):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol)


def dense_loss_grad(model, params, x, y):
    return grad(lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)


def dense_mean_jacobian(model, params, x):
    """<J> as a dict name -> (C, *param shape): d <z_c>_B / d theta by jacrev."""
    return jacrev(lambda p: functional_call(model, p, (x,)).mean(0))(params)


def jacobian_matrix(model, params, x) -> torch.Tensor:
    """<J>^T as a dense (C, m) matrix."""
    jac = dense_mean_jacobian(model, params, x)
    return torch.cat([jac[n].reshape(NUM_CLASSES, -1) for n in params], dim=1)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "cls, kwargs, key",
    [
        (SAM, {"rho": -0.1}, "method.rho"),
        (ASAM, {"rho": -1.0}, "method.rho"),
        (ASAM, {"eta": -0.01}, "method.eta"),
        (ASAM, {"scaled_params": "biases"}, "method.scaled_params"),
        (EfficientEJR, {"rho": float("nan")}, "method.rho"),
        (EfficientEJRv2, {"mu": -0.5}, "method.mu"),
        (ExplicitJacobianRegularization, {"lambda_reg": -1e-3}, "method.lambda_reg"),
        (ExplicitJacobianRegularization, {"num_projections": 0}, "method.num_projections"),
        (ExplicitJacobianRegularization, {"num_projections": 1.5}, "method.num_projections"),
        (GradientNormPenalty, {"lambda_reg": "big"}, "method.lambda_reg"),
        (InputJacobianRegularization, {"num_projections": -2}, "method.num_projections"),
        (InputJacobianRegularization, {"lambda_reg": -1}, "method.lambda_reg"),
    ],
)
def test_bad_method_arguments_raise_one_line_value_error(cls, kwargs, key):
    with pytest.raises(ValueError, match=key) as info:
        make(cls, tiny_mlp(), **kwargs)
    assert "\n" not in str(info.value)


def test_unknown_method_keyword_is_rejected():
    with pytest.raises(TypeError, match="lambda_reg"):
        make(SAM, tiny_mlp(), lambda_reg=0.1)


def test_input_jr_rejects_integer_inputs():
    module = make(
        InputJacobianRegularization, nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    )
    with pytest.raises(ValueError, match="floating-point"):
        module.compute_gradients(
            torch.ones(2, 4, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0
        )


# ------------------------------------------------------------------ randomness
def test_directions_depend_on_seed_and_step_only_and_leave_global_rng_alone():
    a = ejr_directions(3, 17, 2, NUM_CLASSES)
    assert torch.equal(a, ejr_directions(3, 17, 2, NUM_CLASSES))
    assert not torch.equal(a, ejr_directions(3, 18, 2, NUM_CLASSES))
    assert not torch.equal(a, ejr_directions(4, 17, 2, NUM_CLASSES))
    torch.testing.assert_close(a.norm(dim=1), torch.ones(2))
    other_stream = random_unit_vectors(direction_generator(3, 17, "input_jr_v"), 2, NUM_CLASSES)
    assert not torch.equal(a, other_stream)
    # a whole compute_gradients of every random method leaves the global RNG untouched
    x, y = batch()
    for cls in (
        ExplicitJacobianRegularization,
        EfficientEJR,
        EfficientEJRv2,
        InputJacobianRegularization,
    ):
        module = make(cls, tiny_mlp())
        state = torch.get_rng_state()
        g1, _ = gradients(module, x, y, step=5)
        assert torch.equal(state, torch.get_rng_state())
        g2, _ = gradients(module, x, y, step=5)  # same step -> same direction -> same gradient
        assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))


# -------------------------------------------------------- zero coefficient == SGD
ZERO_COEFFICIENT = [
    (SAM, {"rho": 0.0}),
    (ASAM, {"rho": 0.0}),
    (EfficientEJR, {"rho": 0.0}),
    (EfficientEJRv2, {"rho": 0.0, "mu": 0.0}),
    (ExplicitJacobianRegularization, {"lambda_reg": 0.0, "num_projections": 2}),
    (GradientNormPenalty, {"lambda_reg": 0.0}),
    (InputJacobianRegularization, {"lambda_reg": 0.0}),
]


@pytest.mark.parametrize("chunk", [None, 4])
@pytest.mark.parametrize(
    "cls, kwargs", ZERO_COEFFICIENT, ids=[c.method_name for c, _ in ZERO_COEFFICIENT]
)
def test_zero_coefficient_gradient_is_bit_identical_to_sgd(cls, kwargs, chunk):
    x, y = batch()
    sgd_grads, sgd_logs = gradients(make(TrainingModule, tiny_mlp(), chunk), x, y)
    grads, logs = gradients(make(cls, tiny_mlp(), chunk, **kwargs), x, y)
    assert all(torch.equal(a, b) for a, b in zip(grads, sgd_grads, strict=True))
    assert torch.equal(logs["loss"], sgd_logs["loss"]) and int(logs["correct"]) == int(
        sgd_logs["correct"]
    )


# --------------------------------------------------------------------- EJR, eq. 51
@pytest.mark.parametrize("num_projections", [1, 2])
def test_ejr_gradient_equals_dense_gradient_of_jacobian_projection_norm(num_projections):
    lam, step = 0.3, 7
    model = tiny_mlp()
    x, y = batch()
    module = make(
        ExplicitJacobianRegularization, model, lambda_reg=lam, num_projections=num_projections
    )
    grads, logs = gradients(module, x, y, step)

    params = as_dict(model)
    directions = ejr_directions(0, step, num_projections, NUM_CLASSES).double()

    def mean_sq_projection(p):  # 1/K sum_k ||<J>u_k||^2 with <J> from jacrev
        jac = dense_mean_jacobian(model, p, x)
        total = 0.0
        for u in directions:
            total = total + sum(
                ((jac[n] * u.view(-1, *[1] * params[n].dim())).sum(0) ** 2).sum() for n in p
            )
        return total / num_projections

    penalty_grad = grad(mean_sq_projection)(params)
    loss_grad = dense_loss_grad(model, params, x, y)
    expected = [loss_grad[n] + lam * penalty_grad[n] for n in params]
    assert_close_lists(grads, expected)
    # logged columns: lambda * penalty and C * penalty (the ||<J>||_F^2 estimate)
    penalty = mean_sq_projection(params)
    torch.testing.assert_close(float(logs["ejr_term"]), lam * float(penalty), rtol=1e-9, atol=0)
    torch.testing.assert_close(
        float(logs["jac_frob_sq_est"]), NUM_CLASSES * float(penalty), rtol=1e-9, atol=0
    )


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ExplicitJacobianRegularization, {"lambda_reg": 0.5, "num_projections": 2}),
        (GradientNormPenalty, {"lambda_reg": 0.5}),
        (InputJacobianRegularization, {"lambda_reg": 0.5, "num_projections": 2}),
    ],
    ids=["ejr", "gnp", "input_jr"],
)
def test_penalty_gradients_do_not_depend_on_the_physical_chunk_size(cls, kwargs):
    x, y = batch(n=10)
    reference, ref_logs = gradients(make(cls, tiny_mlp(), None, **kwargs), x, y, step=3)
    for chunk in (3, 5):  # 3 gives an uneven last chunk (3+3+3+1)
        grads, logs = gradients(make(cls, tiny_mlp(), chunk, **kwargs), x, y, step=3)
        assert_close_lists(grads, reference, rtol=1e-10, atol=1e-13)
        for key in ref_logs:
            torch.testing.assert_close(
                float(logs[key]), float(ref_logs[key]), rtol=1e-6, atol=0
            )  # float32 logs
    # and the penalty changes the update (the test is not vacuous)
    sgd, _ = gradients(make(TrainingModule, tiny_mlp()), x, y)
    assert not all(torch.allclose(a, b) for a, b in zip(reference, sgd, strict=True))


def test_ejr_projection_estimator_is_unbiased_for_frobenius_norm():
    model = tiny_mlp()
    x, y = batch()
    jac = jacobian_matrix(model, as_dict(model), x)  # (C, m)
    exact = float(jac.pow(2).sum())  # ||<J>||_F^2
    module = make(ExplicitJacobianRegularization, model, lambda_reg=0.0)
    samples = []
    for step in range(400):  # a fresh u each step; the logged column is C ||<J>u||^2
        module.model.zero_grad(set_to_none=True)
        samples.append(float(module.compute_gradients(x, y, step)["jac_frob_sq_est"]))
    samples = torch.tensor(samples, dtype=torch.float64)
    standard_error = float(samples.std()) / math.sqrt(len(samples))
    assert abs(float(samples.mean()) - exact) < 3 * standard_error
    # single samples really vary (u is random), so the check above has teeth
    assert float(samples.std()) > 0.05 * exact


def test_gnp_gradient_equals_dense_gradient_of_gradient_norm():
    lam = 0.7
    model = tiny_mlp()
    x, y = batch()
    grads, logs = gradients(make(GradientNormPenalty, model, lambda_reg=lam), x, y)
    params = as_dict(model)

    def grad_norm_sq(p):
        g = dense_loss_grad(model, p, x, y)
        return sum((v**2).sum() for v in g.values())

    penalty_grad = grad(grad_norm_sq)(params)
    loss_grad = dense_loss_grad(model, params, x, y)
    assert_close_lists(grads, [loss_grad[n] + lam * penalty_grad[n] for n in params])
    torch.testing.assert_close(
        float(logs["grad_norm_sq"]), float(grad_norm_sq(params)), rtol=1e-9, atol=0
    )


def test_input_jr_matches_hoffman_normalisation_with_dense_input_jacobians():
    lam, step, k = 0.4, 2, 2
    model = tiny_mlp()
    x, y = batch()
    grads, logs = gradients(
        make(InputJacobianRegularization, model, lambda_reg=lam, num_projections=k), x, y, step
    )
    params = as_dict(model)
    n = x.shape[0]
    v = (
        random_unit_vectors(direction_generator(0, step, "input_jr_v"), k * n, NUM_CLASSES)
        .double()
        .view(k, n, NUM_CLASSES)
    )

    def estimate(p):  # C / (K B) sum_{k,b} ||v_kb^T dz_b/dx_b||^2 with per-example jacobians
        per_example = vmap(jacrev(lambda xb: functional_call(model, p, (xb.unsqueeze(0),))[0]))(
            x
        )  # (B, C, d)
        projected = torch.einsum("kbc,bcd->kbd", v, per_example)
        return NUM_CLASSES * projected.pow(2).sum() / (k * n)

    penalty_grad = grad(estimate)(params)
    loss_grad = dense_loss_grad(model, params, x, y)
    assert_close_lists(grads, [loss_grad[name] + 0.5 * lam * penalty_grad[name] for name in params])
    torch.testing.assert_close(
        float(logs["input_jac_frob_sq"]), float(estimate(params)), rtol=1e-6, atol=0
    )


# ------------------------------------------------------------ two-pass perturbations
def batch_statistics_copy(model: nn.Module) -> nn.Module:
    """A copy whose BatchNorm layers always normalise with the batch statistics and keep no
    running statistics (the training-mode forward, usable inside torch.func transforms)."""
    clone = copy.deepcopy(model)
    for m in clone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return clone


def descent_check(module, model, x, y, expected_epsilon, extra=None, step=0):
    """compute_gradients gives grad (L + extra)(theta + epsilon), theta restored bit-exactly,
    and the logged perturbation norm is ||epsilon||."""
    reference = batch_statistics_copy(model)
    before = as_dict(model)
    grads, logs = gradients(module, x, y, step)
    after = as_dict(model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    shifted = {n: before[n] + expected_epsilon[n] for n in before}

    def objective(p):
        logits = functional_call(reference, p, (x,))
        value = F.cross_entropy(logits, y)
        return value if extra is None else value + extra(logits)

    expected = grad(objective)(shifted)
    assert_close_lists(grads, [expected[n] for n in before], rtol=1e-8, atol=1e-11)
    torch.testing.assert_close(
        float(logs["perturbation_norm"]), float(flat(expected_epsilon).norm()), rtol=1e-9, atol=0
    )
    return logs


@pytest.mark.parametrize("chunk", [None, 3])
def test_sam_perturbation_is_rho_times_normalised_gradient(chunk):
    rho = 0.2
    model = tiny_mlp()
    x, y = batch()
    g = dense_loss_grad(model, as_dict(model), x, y)
    norm = flat(g).norm()
    logs = descent_check(
        make(SAM, model, chunk, rho=rho), model, x, y, {n: rho * v / norm for n, v in g.items()}
    )
    torch.testing.assert_close(float(logs["grad_norm"]), float(norm), rtol=1e-9, atol=0)
    torch.testing.assert_close(float(logs["perturbation_norm"]), rho, rtol=1e-9, atol=0)


@pytest.mark.parametrize("scaled_params", ["weight", "weight_except_norm", "all"])
def test_asam_perturbation_follows_its_formula(scaled_params):
    rho, eta = 0.5, 0.01
    model = tiny_bn_cnn()
    x, y = batch(n=6, shape=(1, 4, 4), classes=4)
    module = make(ASAM, model, rho=rho, eta=eta, scaled_params=scaled_params)
    scaled = {
        "weight": {"0.weight", "1.weight", "4.weight"},
        "weight_except_norm": {"0.weight", "4.weight"},
        "all": {"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"},
    }[scaled_params]
    names = [n for n, _ in model.named_parameters()]
    assert [
        n for n, s in zip(names, asam_scaled_mask(model, scaled_params), strict=True) if s
    ] == sorted(scaled, key=names.index)
    # reference: epsilon = rho T^2 g / ||T g||, T = |theta| + eta on the scaled parameters.
    reference = batch_statistics_copy(model)
    params = as_dict(reference)
    g = dense_loss_grad(reference, params, x, y)
    t = {n: (params[n].abs() + eta) if n in scaled else torch.ones_like(params[n]) for n in params}
    norm = flat({n: t[n] * g[n] for n in params}).norm()
    epsilon = {n: rho * t[n] ** 2 * g[n] / norm for n in params}
    logs = descent_check(module, model, x, y, epsilon)
    torch.testing.assert_close(float(logs["scaled_grad_norm"]), float(norm), rtol=1e-9, atol=0)


@pytest.mark.parametrize("chunk", [None, 4])
def test_efficient_ejr_perturbation_is_rho_times_normalised_jacobian_projection(chunk):
    rho, step = 1.5, 11
    model = tiny_mlp()
    x, y = batch()
    u = ejr_directions(0, step, 1, NUM_CLASSES)[0].double()
    delta = jacobian_matrix(model, as_dict(model), x).T @ u  # <J>u, dense
    epsilon_flat = rho * delta / delta.norm()
    epsilon, offset = {}, 0
    for n, p in model.named_parameters():
        epsilon[n] = epsilon_flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    logs = descent_check(make(EfficientEJR, model, chunk, rho=rho), model, x, y, epsilon, step=step)
    torch.testing.assert_close(float(logs["jac_u_norm"]), float(delta.norm()), rtol=1e-9, atol=0)
    # EJR.v2 (eq. 55): same perturbation, descent on L + mu u^T <z>
    mu = 0.3
    logs = descent_check(
        make(EfficientEJRv2, model, chunk, rho=rho, mu=mu),
        model,
        x,
        y,
        epsilon,
        extra=lambda logits: mu * (logits @ u).mean(),
        step=step,
    )
    mean_logits = model(x).mean(0)
    torch.testing.assert_close(
        float(logs["ejr_v2_term"]), float(mu * mean_logits.detach() @ u), rtol=1e-6, atol=0
    )  # float32 log


# ---------------------------------------------------------------- BatchNorm buffers
BN_METHODS = [
    (SAM, {"rho": 0.5}, None),
    (ASAM, {"rho": 1.0}, 4),
    (EfficientEJR, {"rho": 2.0}, None),
    (EfficientEJRv2, {"rho": 2.0, "mu": 0.1}, 4),
    (ExplicitJacobianRegularization, {"lambda_reg": 0.1}, 4),
    (ExplicitJacobianRegularization, {"lambda_reg": 0.1}, None),
    (GradientNormPenalty, {"lambda_reg": 0.1}, 4),
    (InputJacobianRegularization, {"lambda_reg": 0.1}, 4),
]


@pytest.mark.parametrize(
    "cls, kwargs, chunk", BN_METHODS, ids=[f"{c.method_name}-{k}" for c, _, k in BN_METHODS]
)
def test_batchnorm_statistics_are_those_of_the_first_pass_alone(cls, kwargs, chunk):
    model = tiny_bn_cnn()
    first_pass_only = copy.deepcopy(model)
    x, y = batch(n=10, shape=(1, 4, 4), classes=4)
    module = make(cls, model, chunk, **kwargs)
    for step in range(2):
        with torch.no_grad():  # the first (unperturbed) pass: one forward per chunk
            for start in range(0, len(x), chunk or len(x)):
                first_pass_only(x[start : start + (chunk or len(x))])
        gradients(module, x, y, step)
        for (name, expected), actual in zip(
            first_pass_only.named_buffers(), model.buffers(), strict=True
        ):
            assert torch.equal(actual, expected), name
    assert int(model[1].num_batches_tracked) == 2 * math.ceil(len(x) / (chunk or len(x)))


# --------------------------------------------------------------- end to end
def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_dir(runs):
    dirs = [p for p in (runs / "default").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def final_state(runs, *overrides):
    from ijr.train import train

    summary = train(compose_cfg(*tiny_overrides(runs, "trainer.max_steps=20", *overrides)))
    assert summary["status"] == "completed", summary
    ckpt = torch.load(
        run_dir(runs) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    return ckpt["state_dict"]


ZERO_COEFFICIENT_OVERRIDES = {
    "sam": ["method=sam", "method.rho=0"],
    "asam": ["method=asam", "method.rho=0"],
    "ejr_efficient": ["method=ejr_efficient", "method.rho=0"],
    "ejr_v2": ["method=ejr_v2", "method.rho=0", "method.mu=0"],
    "ejr": ["method=ejr", "method.lambda_reg=0"],
    "gnp": ["method=gnp", "method.lambda_reg=0"],
    "input_jr": ["method=input_jr", "method.lambda_reg=0"],
}
SETTINGS = {
    "plain": [],
    "momentum_wd_multistep_chunked": [
        "optim.momentum=0.9",
        "optim.weight_decay=5e-4",
        "sched=multistep",
        "data.physical_batch_size=24",
    ],
}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_zero_coefficient_runs_end_bit_identical_to_sgd(tmp_path, setting):
    reference = final_state(tmp_path / "sgd", *SETTINGS[setting])
    for name, overrides in ZERO_COEFFICIENT_OVERRIDES.items():
        state = final_state(tmp_path / name, *overrides, *SETTINGS[setting])
        assert state.keys() == reference.keys()
        for key in reference:
            assert torch.equal(state[key], reference[key]), f"{name}: {key} differs from sgd"
    if setting == "plain":  # the comparison has teeth: a nonzero rho does change the result
        moved = final_state(tmp_path / "sam_nonzero", "method=sam", "method.rho=0.5")
        assert any(not torch.equal(moved[k], reference[k]) for k in reference)


REGULARISER_COLUMNS = {
    "sam": ["train/grad_norm", "train/perturbation_norm", "train/perturbed_loss"],
    "asam": ["train/scaled_grad_norm", "train/perturbation_norm"],
    "ejr_efficient": ["train/jac_u_norm", "train/perturbation_norm", "train/u_dot_mean_logit"],
    "ejr_v2": ["train/ejr_v2_term", "train/jac_u_norm", "train/perturbation_norm"],
    "ejr": ["train/ejr_term", "train/jac_frob_sq_est"],
    "gnp": ["train/gnp_term", "train/grad_norm_sq"],
    "input_jr": ["train/input_jr_term", "train/input_jac_frob_sq"],
}


@pytest.mark.parametrize("name", list(REGULARISER_COLUMNS))
def test_each_method_trains_end_to_end_and_logs_its_regulariser(tmp_path, name):
    from ijr.train import train

    summary = train(compose_cfg(*tiny_overrides(tmp_path, f"method={name}", "trainer.max_steps=6")))
    assert summary["status"] == "completed"
    rows = read_rows(run_dir(tmp_path) / "metrics.csv")
    logged = [r for r in rows if r.get("train/loss")]
    assert [int(r["step"]) for r in logged] == [0, 5]
    for column in REGULARISER_COLUMNS[name]:
        values = [float(r[column]) for r in logged]
        assert all(math.isfinite(v) for v in values), column
        assert any(v != 0 for v in values), column


def test_every_method_has_a_config_and_builds_from_it(tmp_path):
    class FakeData:
        physical_batch_size = None
        steps_per_epoch = 1

    defaults = {}
    for name in METHODS:
        cfg = compose_cfg(f"method={name}", f"paths.runs={tmp_path}")
        assert cfg.method.name == name
        module = build_module(cfg, tiny_mlp(), FakeData(), total_steps=10)
        assert type(module) is METHODS[name]
        defaults[name] = dict(cfg.method)
    # the yaml defaults are the paper's CIFAR-10 values (Table 3 footnote a)
    assert defaults["sam"]["rho"] == 0.05
    assert defaults["asam"]["rho"] == 0.5 and defaults["asam"]["eta"] == 0.01
    assert defaults["asam"]["scaled_params"] == "weight"
    assert defaults["ejr_efficient"]["rho"] == 2.0
    assert defaults["ejr"]["num_projections"] == 1
