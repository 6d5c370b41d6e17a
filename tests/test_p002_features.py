"""Paper 002 (MacDonald, Valmadre & Lucey) features: mixup and augmentation with probability p
(App. B.3), the loss minus the label entropy (Fig. 1), ghost-batch BatchNorm under full-batch GD
(App. B.1), the 2-D regression points and coordinate MLPs of App. C.3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ijr import curvature
from ijr.data import build_datamodule
from ijr.data.augment import random_crop_flip
from ijr.data.config import parse_data_config
from ijr.data.rng import derive_seed, generator
from ijr.methods.base import TrainingModule, loss_function, smoothed_label_entropy
from ijr.models import build


def _dm(**extra):
    cfg = {"name": "synthetic", "n_train": 64, "n_test": 16, "shape": [3, 8, 8], "batch_size": 16}
    cfg.update(extra)
    dm = build_datamodule(cfg, 3)
    dm.setup()
    return dm


# ----------------------------------------------------------------------------- mixup
def test_mixup_is_the_convex_combination_with_the_drawn_partner():
    plain, mixed = _dm(), _dm(mixup_beta=0.4)
    for step in (0, 5):
        x0, y0 = plain.train_batch(step)
        x, y = mixed.train_batch(step)
        theta, perm = mixed.mixup_draw(step, x0.shape[0])
        expected = np.random.default_rng(derive_seed("mixup_theta", 3, step)).beta(0.4, 0.4)
        assert theta == pytest.approx(expected)
        assert 0.0 <= theta <= 1.0
        onehot = F.one_hot(y0, 10).float()
        torch.testing.assert_close(x, (1 - theta) * x0 + theta * x0[perm])
        torch.testing.assert_close(y, (1 - theta) * onehot + theta * onehot[perm])
        torch.testing.assert_close(y.sum(1), torch.ones(16))


def test_mixup_is_a_function_of_seed_and_step_only():
    """Resume safety: batch s does not depend on which batches were drawn before."""
    a, b = (
        _dm(mixup_beta=1.0, augment=True, augment_p=0.5),
        _dm(mixup_beta=1.0, augment=True, augment_p=0.5),
    )
    for s in range(6):
        a.train_batch(s)
    for s in (7, 3):
        xa, ya = a.train_batch(s)
        xb, yb = b.train_batch(s)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = build_datamodule({**a.config.as_dict(), "name": "synthetic"}, 4)
    other.setup()
    assert not torch.equal(other.train_batch(3)[0], a.train_batch(3)[0])


def test_mixup_zero_is_off_and_draws_nothing():
    x0, y0 = _dm().train_batch(2)
    x, y = _dm(mixup_beta=0.0).train_batch(2)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_mixed_labels_are_smoothed_like_any_label():
    """CE(z, mix) with smoothing alpha = CE against (1 - alpha) mix + alpha / C (App. B.3)."""
    torch.manual_seed(0)
    logits = torch.randn(6, 5, dtype=torch.float64)
    mix = torch.softmax(torch.randn(6, 5, dtype=torch.float64), dim=1)
    alpha = 0.3
    smoothed = (1 - alpha) * mix + alpha / 5
    manual = -(smoothed * torch.log_softmax(logits, dim=1)).sum(1).mean()
    torch.testing.assert_close(loss_function("cross_entropy", alpha)(logits, mix), manual)
    onehot = F.one_hot(torch.tensor([0, 1, 2, 3, 4, 0]), 5).double()
    index = torch.tensor([0, 1, 2, 3, 4, 0])
    fn = loss_function("cross_entropy", alpha)
    torch.testing.assert_close(fn(logits, onehot), fn(logits, index))


@pytest.mark.parametrize("bad", [-0.1, float("inf"), True, "1"])
def test_bad_mixup_beta_is_one_line(bad):
    with pytest.raises(ValueError, match="data.mixup_beta must be a finite number >= 0"):
        parse_data_config({"name": "synthetic", "mixup_beta": bad})


# ----------------------------------------------------------------- augmentation with p
def test_augment_p_keeps_each_augmented_example_with_probability_p():
    plain, always, some = _dm(), _dm(augment=True), _dm(augment=True, augment_p=0.5)
    step = 4
    x0 = plain.train_batch(step)[0]
    xa = always.train_batch(step)[0]
    xs = some.train_batch(step)[0]
    expected = random_crop_flip(x0, generator("augment", 3, step), 4, plain.pad_fill)
    torch.testing.assert_close(xa, expected)  # p = 1 is the augmentation of before, unchanged
    keep = torch.rand(16, generator=generator("augment_p", 3, step)) < 0.5
    assert 0 < int(keep.sum()) < 16
    torch.testing.assert_close(xs[keep], expected[keep])
    torch.testing.assert_close(xs[~keep], x0[~keep])


def test_augment_p_zero_is_clean_data():
    x0 = _dm().train_batch(1)[0]
    assert torch.equal(_dm(augment=True, augment_p=0.0).train_batch(1)[0], x0)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"augment": True, "augment_p": 1.5}, "data.augment_p must be a number in"),
        ({"augment": False, "augment_p": 0.5}, "needs data.augment=true"),
    ],
)
def test_bad_augment_p_is_one_line(cfg, match):
    with pytest.raises(ValueError, match=match):
        parse_data_config({"name": "synthetic", **cfg})


# --------------------------------------------------------------- loss - label entropy
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75])
def test_label_entropy_is_the_minimum_of_the_smoothed_loss(alpha):
    """At the optimum softmax(z) = y_alpha the smoothed CE equals H(y_alpha) (Fig. 1)."""
    c = 10
    target = torch.tensor([3])
    y_alpha = torch.full((1, c), alpha / c, dtype=torch.float64)
    y_alpha[0, 3] += 1 - alpha
    best = torch.log(y_alpha.clamp_min(1e-300))  # logits of softmax = y_alpha
    fn = loss_function("cross_entropy", alpha)
    h = smoothed_label_entropy(alpha, c)
    if alpha > 0:
        assert float(fn(best, target)) == pytest.approx(h, rel=1e-12)
    else:
        assert h == 0.0
    torch.manual_seed(1)
    for _ in range(5):  # any other logits give more
        assert float(fn(torch.randn(1, c, dtype=torch.float64) * 3, target)) > h


def test_label_entropy_matches_its_formula():
    a, c = 0.5, 10
    top, rest = 1 - a + a / c, a / c
    want = -(top * math.log(top) + (c - 1) * rest * math.log(rest))
    assert smoothed_label_entropy(a, c) == pytest.approx(want, rel=1e-14)
    with pytest.raises(ValueError, match="label entropy needs label_smoothing"):
        smoothed_label_entropy(1.0, 10)


# ------------------------------------------------------------- ghost-batch BatchNorm
class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def test_physical_batch_size_is_ghost_batch_batchnorm():
    """App. B.1: the full-batch gradient is the mean of the ghost-batch gradients, each with
    BatchNorm statistics of its own ghost batch (data.physical_batch_size = the ghost size)."""
    torch.manual_seed(0)
    net = _BNNet().double()
    x = torch.randn(20, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (20,))
    module = TrainingModule(net, physical_batch_size=5)
    module.accumulate_loss_gradient(x, y)
    got = [p.grad.clone() for p in net.parameters()]
    ref = _BNNet().double()
    ref.load_state_dict(net.state_dict())
    ref.bn.reset_running_stats()
    expected = [torch.zeros_like(p) for p in ref.parameters()]
    for k in range(4):
        xc, yc = x[5 * k : 5 * k + 5], y[5 * k : 5 * k + 5]
        h = ref.fc1(xc)
        mean, var = h.mean(0), h.var(0, unbiased=False)  # this ghost batch's statistics
        z = (h - mean) / torch.sqrt(var + ref.bn.eps) * ref.bn.weight + ref.bn.bias
        loss = F.cross_entropy(ref.fc2(torch.relu(z)), yc)
        grads = torch.autograd.grad(loss, list(ref.parameters()))
        expected = [e + g / 4 for e, g in zip(expected, grads, strict=True)]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    whole = _BNNet().double()
    whole.load_state_dict(net.state_dict())
    F.cross_entropy(whole(x), y).backward()  # one 20-example batch: different statistics
    assert not torch.allclose(whole.fc1.weight.grad, got[0])


# ------------------------------------------------------------- App. C.3 regression
def test_points_dataset_is_fixed_regression_targets():
    dm = build_datamodule({"name": "points", "batch_size": "full"}, 0)
    dm.setup()
    assert dm.train_x.shape == (8, 1) and dm.train_y.shape == (8, 1)
    torch.testing.assert_close(dm.train_x[:, 0], torch.linspace(0, 1, 8))
    assert dm.num_classes == 1 and dm.target_kind == "real" and dm.is_full_batch
    assert float(dm.train_y.abs().max()) <= 1.0
    assert torch.equal(dm.test_y, dm.train_y)
    again = build_datamodule({"name": "points", "batch_size": "full"}, 7)
    again.setup()
    assert torch.equal(again.train_y, dm.train_y)  # data_seed, not the run seed


def test_points_and_regression_go_together():
    with pytest.raises(ValueError, match="data.task=regression is the points dataset's task"):
        parse_data_config({"name": "synthetic", "task": "regression"})
    with pytest.raises(ValueError, match="takes augment=false"):
        parse_data_config({"name": "points", "augment": True})


def test_gaussian_activation_and_inits():
    torch.manual_seed(0)
    model = build("coord_mlp", 1, (1,), activation="gaussian", sigma=0.5)
    z = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(model[2](z), torch.exp(-0.5 * (z / 0.5) ** 2))
    assert sum(isinstance(m, nn.Linear) for m in model) == 4
    # default: uniform(-1, 1) first layer (one input), ||W_1|| ~ sqrt(256 / 3) (Table 1: 9.09)
    assert float(model[1].weight.detach().norm()) == pytest.approx(math.sqrt(256 / 3), rel=0.1)
    low = build("coord_mlp", 1, (1,), activation="gaussian", first_layer_std=0.035)
    assert float(low[1].weight.detach().norm()) == pytest.approx(0.56, rel=0.15)  # Table 1: 0.56
    with pytest.raises(ValueError, match="unknown activation"):
        build("coord_mlp", 1, (1,), activation="sine")
    for key, bad in (("sigma", 0.0), ("sigma", float("inf")), ("width", 2.5), ("depth", True)):
        with pytest.raises(ValueError, match=f"coord_mlp': {key} must be a positive"):
            build("coord_mlp", 1, (1,), **{key: bad})


def test_sine_pretraining_fits_a_high_frequency_function():
    torch.manual_seed(0)
    plain = build("coord_mlp", 1, (1,), activation="relu")
    torch.manual_seed(0)
    high = build(
        "coord_mlp", 1, (1,), activation="relu", pretrain_frequency=2.0, pretrain_steps=300
    )
    x = torch.linspace(0, 1, 33).unsqueeze(1)
    target = torch.sin(2 * math.pi * x)
    with torch.no_grad():
        assert float((high(x) - target).square().mean()) < 0.5 * float(
            (plain(x) - target).square().mean()
        )
    assert all(p.grad is None for p in high.parameters())


def test_raw_io_jacobian_is_the_slope_of_a_scalar_model():
    torch.manual_seed(0)
    model = build("coord_mlp", 1, (1,), activation="gaussian", width=16).double()
    x = torch.linspace(0, 1, 8, dtype=torch.float64).unsqueeze(1)
    norms = curvature.io_jacobian_norms(model, [x], softmax=False)
    slopes = torch.func.vmap(torch.func.jacrev(lambda v: model(v.unsqueeze(0))[0, 0]))(x)
    torch.testing.assert_close(norms, slopes.abs().reshape(-1))


# ------------------------------------------------------------------ resume with mixup
def test_a_killed_mixup_run_resumes_byte_identically(tmp_path):
    """Mixup and augmentation with p draw from (seed, step) streams, so a run killed at step 13
    and resumed writes exactly the files of an uninterrupted run."""
    import signal

    from conftest import REPO, compose_cfg, run_cli
    from ijr.train import train
    from test_resume import FAST, at_step, files_of, run_dir_of

    extra = ["data.mixup_beta=0.4", "data.augment=true", "data.augment_p=0.5"]
    whole = tmp_path / "whole"
    assert train(compose_cfg(f"paths.runs={whole}", *FAST, *extra))["status"] == "completed"
    cut = tmp_path / "cut"
    args = [f"paths.runs={cut}", *FAST, *extra, "trainer.checkpoint_every_n_steps=1000"]
    paths = f"{REPO / 'tests'}:{REPO / 'src'}"  # this checkout's ijr in the subprocess too
    proc = run_cli(*args, at_step(13, int(signal.SIGTERM)), env={"PYTHONPATH": paths})
    assert proc.returncode == 128 + int(signal.SIGTERM), proc.stderr
    resumed = train(compose_cfg(*args))
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 13
    assert files_of(run_dir_of(cut)) == files_of(run_dir_of(whole))
