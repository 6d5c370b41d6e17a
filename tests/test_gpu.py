"""The suite's checks on a CUDA device (``pytest -m gpu``; skipped without one; run by
scripts/gpu_check.sh): curvature results equal to CPU float64 references, non-perturbation
bit-identity of the curvature functions and of probes=all training, the two-pass methods at
rho = 0 bit-identical to SGD, and a batched Hessian-vector product equal to single ones.

No device had been lent when these were written: they have run only as "skipped" (CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ijr.curvature as cv

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
GPU = ["trainer.accelerator=gpu"]


def bn_dropout_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )


def cifar_like(n: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(),
    }


def assert_same(before: dict, after: dict) -> None:
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    for a, b in zip(before["grads"], after["grads"], strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
    assert before["modes"] == after["modes"]
    assert torch.equal(before["cpu_rng"], after["cpu_rng"])
    assert torch.equal(before["cuda_rng"], after["cuda_rng"])


def test_curvature_on_cuda_leaves_model_grads_modes_and_rngs_bit_identical():
    model = bn_dropout_cnn().cuda().train()
    x, y = cifar_like()
    x, y = x.cuda(), y.cuda()
    model(x).sum().backward()  # .grad set, BN running statistics moved
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    before = snapshot(model)
    cv.hessian_top_eigenvalue(model, F.cross_entropy, batches, max_iter=5)
    cv.hessian_top_eigenvalue(model, F.cross_entropy, batches, method="power", max_iter=3)
    cv.gauss_newton_top_eigenvalue(model, F.cross_entropy, batches, max_iter=3)
    model.eval()
    eval_before = snapshot(model)
    cv.jacobian_norms(model, batches, method="exact")
    cv.jacobian_norms(model, batches, method="jvp", max_iter=3)
    cv.rho_b(model, F.cross_entropy, batches, batch_size=8, num_minibatches=2)
    cv.margin_directions(model, batches)
    cv.per_example_jacobian_norms(model, x[:4])
    assert_same(eval_before, snapshot(model))
    model.train()
    assert_same(before, snapshot(model))


def test_cuda_curvature_equals_cpu_float64():
    cpu = bn_dropout_cnn().eval().double()
    gpu = bn_dropout_cnn().eval().double().cuda()
    x, y = cifar_like()
    sharpness, norms = {}, {}
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        batch = [(x.double().to(dev), y.to(dev))]
        sharpness[dev] = cv.hessian_top_eigenvalue(
            model, F.cross_entropy, batch, tol=1e-10, max_iter=200
        ).value
        norms[dev] = cv.jacobian_norms(model, x.double().to(dev), method="exact")
    assert abs(sharpness["cuda"] - sharpness["cpu"]) <= 1e-8 * abs(sharpness["cpu"])
    for name in ("spectral", "frobenius", "ones"):
        want = getattr(norms["cpu"], name)
        assert abs(getattr(norms["cuda"], name) - want) <= 1e-10 * want, name


def test_batched_hvp_equals_single_products_on_cuda():
    model = bn_dropout_cnn().eval().cuda()
    x, y = cifar_like()
    params = list(model.parameters())
    grads = torch.autograd.grad(
        F.cross_entropy(model(x.cuda()), y.cuda()), params, create_graph=True
    )
    vs = [torch.randn(4, *p.shape, device="cuda") for p in params]
    batched = torch.autograd.grad(grads, params, vs, retain_graph=True, is_grads_batched=True)
    for k in range(4):
        single = torch.autograd.grad(grads, params, [v[k] for v in vs], retain_graph=True)
        for b, s in zip(batched, single, strict=True):
            torch.testing.assert_close(b[k], s, rtol=1e-4, atol=1e-6)


def test_two_pass_methods_at_rho_zero_are_bit_identical_to_sgd_on_cuda(tmp_path):
    from test_methods import final_state

    reference = final_state(tmp_path / "sgd", *GPU, "optim.momentum=0.9")
    for name, overrides in {
        "sam": ["method=sam", "method.rho=0"],
        "asam": ["method=asam", "method.rho=0"],
        "ejr_efficient": ["method=ejr_efficient", "method.rho=0"],
        "ejr_v2": ["method=ejr_v2", "method.rho=0", "method.mu=0"],
    }.items():
        state = final_state(tmp_path / name, *GPU, "optim.momentum=0.9", *overrides)
        for key in reference:
            assert torch.equal(state[key], reference[key]), f"{name}: {key} differs from sgd"


def test_probes_all_on_cuda_completes_and_does_not_change_training(tmp_path):
    from test_probes import MOMENTUM, PROBE_RUN, _assert_bit_identical, _final_state, train_cfg

    on = train_cfg(tmp_path, "probes=all", *PROBE_RUN, *GPU)
    off = train_cfg(tmp_path, MOMENTUM, "probes=none", *GPU)
    assert on["status"] == off["status"] == "completed"
    _assert_bit_identical(_final_state(on, tmp_path), _final_state(off, tmp_path))
