"""Adversarial training (paper 000, Table 2 / App. R): PGD in pixel space, TRADES' loss, AT and
TRADES composed with the methods, robust evaluation, and the exactness of the degenerate cases."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose_cfg, tiny_overrides
from ijr.attacks import PixelBox, kl_divergence, pgd, robust_accuracy, trades_loss

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
BOX = PixelBox(MEAN, STD)
EPS, ALPHA = 8 / 255, 2 / 255


def model_and_data(seed=0, n=16):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    )
    g = torch.Generator().manual_seed(seed + 1)
    pixels = torch.rand(n, 3, 4, 4, generator=g)
    x = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    y = torch.randint(0, 5, (n,), generator=g)
    return model, pixels, x, y


def to_pixels(x):
    return x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)


@pytest.mark.parametrize("objective", ["ce", "kl"])
def test_pgd_stays_in_the_pixel_ball_and_raises_the_loss(objective):
    model, pixels, x, y = model_and_data()
    model.eval()
    x_adv = pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=10, box=BOX, objective=objective)
    p_adv = to_pixels(x_adv)
    assert float((p_adv - pixels).abs().max()) <= EPS + 1e-6
    assert float(p_adv.min()) >= -1e-6 and float(p_adv.max()) <= 1 + 1e-6
    with torch.no_grad():
        clean, adv = model(x), model(x_adv)
    if objective == "ce":
        assert float(F.cross_entropy(adv, y)) > float(F.cross_entropy(clean, y))
    else:
        assert float(kl_divergence(clean, adv)) > 1e-6


def test_pgd_leaves_model_grad_buffers_and_rng_alone_and_is_seeded():
    model, _, x, y = model_and_data()
    model.train()
    model(x)  # non-trivial running stats
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    rng = torch.get_rng_state()

    def attack():
        gen = torch.Generator().manual_seed(4)
        return pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=3, box=BOX, generator=gen)

    a, b = attack(), attack()
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(p, q) for p, q in zip(params, model.parameters(), strict=True))
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    assert all(torch.equal(u, v) for u, v in zip(buffers, model.buffers(), strict=True))
    assert model.training


def test_zero_radius_returns_the_clean_inputs_and_clean_accuracy():
    model, _, x, y = model_and_data()
    model.eval()
    assert torch.equal(pgd(model, x, y, eps=0.0, alpha=ALPHA, steps=5, box=BOX), x)
    acc, loss = robust_accuracy(
        model, [(x[:7], y[:7]), (x[7:], y[7:])], eps=0.0, alpha=ALPHA, steps=5, box=BOX
    )
    with torch.no_grad():
        logits = model(x)
    assert acc == float((logits.argmax(-1) == y).float().mean())
    assert loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)


def test_robust_accuracy_is_at_most_clean_accuracy_here():
    model, _, x, y = model_and_data(seed=3, n=64)
    model.eval()
    clean = float((model(x).argmax(-1) == y).float().mean())
    robust, _ = robust_accuracy(model, [(x, y)], eps=EPS, alpha=ALPHA, steps=10, box=BOX)
    assert robust <= clean


def test_trades_loss_formula():
    g = torch.Generator().manual_seed(0)
    clean, adv = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)
    p, q = clean.softmax(-1), adv.softmax(-1)
    kl = (p * (p.log() - q.log())).sum(-1).mean()
    expected = F.cross_entropy(clean, y) + 6.0 * kl
    assert float(trades_loss(clean, adv, y, 6.0)) == pytest.approx(float(expected), rel=1e-6)


def test_bad_attack_input():
    model, _, x, y = model_and_data()
    with pytest.raises(ValueError, match="eps must be >= 0"):
        pgd(model, x, y, eps=-1, alpha=ALPHA, steps=1, box=BOX)
    with pytest.raises(ValueError, match="unknown attack objective"):
        pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=1, box=BOX, objective="cw")
    with pytest.raises(ValueError, match="channels"):
        pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=1, box=PixelBox((0.0,), (1.0,)))


# ------------------------------------------------------------------ through train(cfg)
def _train(runs, *extra):
    from ijr.train import train

    return train(compose_cfg(*tiny_overrides(runs, "trainer.max_steps=20", *extra)))


def _params(summary, runs, experiment="default"):
    ckpt = torch.load(
        runs / experiment / summary["run_key"] / "checkpoints" / "last.ckpt",
        map_location="cpu",
        weights_only=False,
    )
    return ckpt["state_dict"]


def _rows(summary, runs):
    with open(runs / "default" / summary["run_key"] / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "degenerate",
    [
        ("adversary=at", "adversary.eps=0.0"),
        ("adversary=trades", "adversary.beta=0.0"),
    ],
)
def test_degenerate_adversaries_equal_sgd_bit_for_bit(tmp_path, degenerate):
    sgd = _train(tmp_path, "optim.momentum=0.9")
    adv = _train(tmp_path, "optim.momentum=0.9", *degenerate)
    assert adv["status"] == sgd["status"] == "completed" and adv["run_key"] != sgd["run_key"]
    a, b = _params(sgd, tmp_path), _params(adv, tmp_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_at_trains_differently_and_logs_robust_accuracy(tmp_path):
    sgd = _train(tmp_path)
    at = _train(
        tmp_path, "adversary=at", "adversary.eval_size=100", "adversary.eval_every_n_steps=10"
    )
    a, b = _params(sgd, tmp_path), _params(at, tmp_path)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    robust = [
        (int(r["step"]), float(r["test/robust_acc"]))
        for r in _rows(at, tmp_path)
        if r.get("test/robust_acc")
    ]
    assert [s for s, _ in robust] == [10, 20]
    final = {int(r["step"]): r for r in _rows(at, tmp_path)}[20]
    assert 0.0 <= float(final["test/robust_acc"]) <= float(final["test/acc"]) + 0.05
    assert math.isfinite(float(final["test/robust_loss"]))
    assert "test/robust_acc" in at["final"]


@pytest.mark.parametrize("method", ["ejr_efficient", "sam"])
def test_adversaries_compose_with_two_pass_methods(tmp_path, method):
    """Also crafted and trained in physical chunks of 24 of the batches of 64."""
    for adversary in ("at", "trades"):
        s = _train(
            tmp_path,
            f"method={method}",
            f"adversary={adversary}",
            "data.physical_batch_size=24",
            "adversary.steps=2",
            "adversary.eval_size=50",
        )
        assert s["status"] == "completed", s.get("error")


def test_trades_with_an_own_loss_method_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot be combined with method=ejr"):
        _train(tmp_path, "method=ejr", "adversary=trades")
    with pytest.raises(ValueError, match="adversary.eps must be >= 0"):
        _train(tmp_path, "adversary=at", "adversary.eps=-0.1")


def test_adversary_none_keeps_the_run_key():
    from ijr.rundir import compute_run_key

    cfg = compose_cfg("data=digits")
    assert cfg.adversary.name == "none"
    stripped = compose_cfg("data=digits")
    from omegaconf import open_dict

    with open_dict(stripped):
        del stripped["adversary"]
    assert compute_run_key(cfg) == compute_run_key(stripped)
