"""Every registered method composed with every adversary gets the adversarial term: AT's attack
is what the method trains on, TRADES' KL term reaches the method's loss (or the method declares
``computes_own_loss`` and the combination is refused). A method that skips ``chunk_loss``
without declaring it is stopped at its first TRADES step instead of silently losing the term."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from ijr.attacks import PixelBox, kl_divergence
from ijr.methods import METHODS, build_adversary
from ijr.methods.adversarial import Adversary, AdversaryConfig
from ijr.methods.base import TrainingModule, correct_count, register_method

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
STEP = 3


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    )


def tiny_batch(n: int = 8):
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(n, 3, 4, 4, generator=g)
    x = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.randint(0, 5, (n,), generator=g)


def adversary(name: str, **overrides) -> Adversary:
    config = AdversaryConfig.parse({"name": name, "steps": 2, **overrides})
    return Adversary(config, PixelBox(MEAN, STD), seed=0)


def module_for(method: str, adv=None, cls=None, physical=None) -> TrainingModule:
    return (cls or METHODS[method])(
        tiny_model(), total_steps=10, physical_batch_size=physical, adversary=adv
    )


def step(module: TrainingModule, x, y):
    """(.grad of every parameter after one step composed with the adversary, the logs)."""
    module.model.zero_grad(set_to_none=True)
    logs = module.step_gradients(x, y, STEP)
    return [p.grad.detach().clone() for p in module.model.parameters()], logs


def differ(a, b) -> bool:
    return any(not torch.equal(u, v) for u, v in zip(a, b, strict=True))


def same(a, b) -> bool:
    return not differ(a, b)


@pytest.mark.parametrize("physical", [None, 3])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_the_at_attack(method, physical):
    x, y = tiny_batch()
    at = adversary("at")
    grads_at, _ = step(module_for(method, at, physical=physical), x, y)
    crafter = module_for(method, physical=physical)
    x_adv, term = at.attack_step(crafter.model, x, y, STEP, crafter.chunks(x, y))
    assert term is None and not torch.equal(x_adv, x)
    grads_on_attack, _ = step(module_for(method, physical=physical), x_adv, y)
    grads_clean, _ = step(module_for(method, physical=physical), x, y)
    assert same(grads_at, grads_on_attack)
    assert differ(grads_at, grads_clean)


@pytest.mark.parametrize("physical", [None, 3])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gets_the_trades_term_or_is_refused(method, physical):
    if METHODS[method].computes_own_loss:
        cfg = OmegaConf.create(
            {
                "adversary": {"name": "trades"},
                "data": {"name": "digits"},
                "loss": {"name": "cross_entropy"},
                "method": {"name": method},
                "seed": 0,
            }
        )
        dm = SimpleNamespace(target_kind="index", channel_mean=MEAN, channel_std=STD)
        with pytest.raises(ValueError, match=f"cannot be combined with method={method}"):
            build_adversary(cfg, dm)
        return
    x, y = tiny_batch()
    grads_kl, logs_kl = step(module_for(method, adversary("trades"), physical=physical), x, y)
    grads_zero, logs_zero = step(
        module_for(method, adversary("trades", beta=0.0), physical=physical), x, y
    )
    assert differ(grads_kl, grads_zero)  # the KL term reached the differentiated loss
    # the differentiated loss: the descent pass's for the two-pass methods (efficient EJR's
    # logged loss is its ascent pass on the clean batch, which TRADES leaves alone)
    key = "perturbed_loss" if "perturbed_loss" in logs_kl else "loss"
    assert float(logs_kl[key]) > float(logs_zero[key])


def test_the_trades_loss_of_sgd_is_ce_plus_beta_kl():
    x, y = tiny_batch()
    trades = adversary("trades", beta=6.0)
    module = module_for("sgd", trades)
    crafter = module_for("sgd")
    _, term = trades.attack_step(crafter.model, x, y, STEP, crafter.chunks(x, y))
    with torch.no_grad():
        logits = crafter.model(x)
        expected = F.cross_entropy(logits, y) + 6.0 * kl_divergence(
            logits, crafter.model(term.x_adv)
        )
    _, logs = step(module, x, y)
    assert float(logs["loss"]) == pytest.approx(float(expected), rel=1e-6)


class OwnLossWithoutDeclaring(TrainingModule):
    """The trip-wire: a method differentiating a loss of its own, not declaring it."""

    def compute_gradients(self, x, y, step):
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.backward_scaled(loss)
        return {"loss": loss.detach(), "correct": correct_count(logits.detach(), y)}


def test_a_method_that_skips_chunk_loss_is_stopped_at_its_first_trades_step():
    x, y = tiny_batch()
    module = module_for("sgd", adversary("trades"), cls=OwnLossWithoutDeclaring)
    with pytest.raises(RuntimeError, match="without TRADES' KL term for 8 of 8 examples"):
        step(module, x, y)
    step(module_for("sgd", adversary("at"), cls=OwnLossWithoutDeclaring), x, y)  # AT: fine


def test_a_method_name_registers_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_method("sgd")(type("Again", (TrainingModule,), {}))
