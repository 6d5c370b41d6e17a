"""Coordinate MLPs of paper 002 (MacDonald, Valmadre & Lucey), App. C.3, after its reference [42]
(Section 8): four-layer MLPs with Gaussian or ReLU activations regressing 8 points of R^2, from a
*high-frequency* or a *low-frequency* initialisation (Figure 32, Tables 1-2).

* Gaussian activation: g(z) = exp(-z^2 / (2 sigma^2)).
* Gaussian, high frequency: PyTorch's default initialisation ("default PyTorch initialisation on
  the Gaussian network").
* Gaussian, low frequency: the first layer's weights drawn from N(0, first_layer_std^2). Paper
  002 says only "a wide Gaussian distribution"; Table 1's first-layer weight norm after training,
  0.56 at width 256 (and 9.09 = sqrt(256 / 3) for the default uniform(-1, 1) with one input),
  fixes the scale: std 0.56 / sqrt(256) = 0.035 (our reading; docs/deviations_models.md).
* ReLU, low frequency: PyTorch's default initialisation.
* ReLU, high frequency: PyTorch's default initialisation, then pretrained with Adam (lr 1e-4,
  default betas, App. C.3) on sin(k pi x) (k = 6) at ``pretrain_points`` evenly spaced x in
  [0, 1] for ``pretrain_steps`` full-batch steps (the step count is ours: App. C.3 omits it).

The builder is deterministic given ``torch.manual_seed`` (the run seed): pretraining draws no
random numbers and uses a fixed grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._registry import register

COORD_ACTIVATIONS = ("gaussian", "relu")


class Gaussian(nn.Module):
    """g(z) = exp(-z^2 / (2 sigma^2)) (the Gaussian activation of [42])."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * (z / self.sigma).square())

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class CoordinateMLP(nn.Sequential):
    """Flatten -> Linear(d, w) -> act -> (Linear(w, w) -> act) x (depth - 2) -> Linear(w, C)."""

    def __init__(
        self, in_features: int, num_classes: int, depth: int, width: int, act: str, sigma: float
    ) -> None:
        sizes = [in_features] + [width] * (depth - 1)
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [
                nn.Linear(fan_in, fan_out),
                Gaussian(sigma) if act == "gaussian" else nn.ReLU(),
            ]
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


def pretrain_on_sine(
    model: nn.Module, frequency: float, points: int, steps: int, lr: float = 1e-4
) -> float:
    """Fit ``model`` to sin(frequency * pi * x) at ``points`` evenly spaced x in [0, 1] with
    full-batch Adam (App. C.3's high-frequency ReLU initialisation); returns the final MSE."""
    x = torch.linspace(0.0, 1.0, points).unsqueeze(1)
    target = torch.sin(frequency * math.pi * x)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss = torch.zeros(())
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - target).square().mean()
        loss.backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return float(loss.detach())


def _check(key: str, value, integer: bool = False):
    """``value`` if it is a positive finite number (an int with ``integer``); else one line."""
    kind, what = ((int,), "integer") if integer else ((int, float), "finite number")
    bad = isinstance(value, bool) or not isinstance(value, kind)
    if bad or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"model 'coord_mlp': {key} must be a positive {what}, got {value!r}")
    return value


@register("coord_mlp", "four-layer Gaussian/ReLU coordinate MLP of paper 002 App. C.3 (after [42])")
def build_coord_mlp(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    depth: int = 4,
    width: int = 256,
    activation: str = "gaussian",
    sigma: float = 0.1,
    first_layer_std: float | None = None,
    pretrain_frequency: float | None = None,
    pretrain_steps: int = 2000,
    pretrain_points: int = 128,
) -> nn.Module:
    """App. C.3's MLP (see the module docstring). ``depth`` counts the Linear layers (4 in the
    paper), ``width`` their hidden size (256: our reading of Table 1's 9.09), ``sigma`` the
    Gaussian's width (0.1, ours), ``first_layer_std`` null = PyTorch default, else the low-frequency
    N(0, std^2) first layer, ``pretrain_frequency`` null = no pretraining, else k of sin(k pi x)."""
    if activation not in COORD_ACTIVATIONS:
        raise ValueError(
            f"model 'coord_mlp': unknown activation {activation!r}; valid: {', '.join(COORD_ACTIVATIONS)}"
        )
    depth, width = _check("depth", depth, True), _check("width", width, True)
    if depth < 2:
        raise ValueError(f"model 'coord_mlp': depth must be >= 2 Linear layers, got {depth}")
    sigma = float(_check("sigma", sigma))
    in_features = math.prod(in_shape)
    model = CoordinateMLP(in_features, num_classes, depth, width, activation, sigma)
    if first_layer_std is not None:
        std = float(_check("first_layer_std", first_layer_std))
        with torch.no_grad():
            model[1].weight.normal_(0.0, std)
    if pretrain_frequency is not None:
        if in_features != 1 or num_classes != 1:
            raise ValueError("model 'coord_mlp': pretrain_frequency needs one input and one output")
        freq = float(_check("pretrain_frequency", pretrain_frequency))
        _check("pretrain_steps", pretrain_steps, True)
        _check("pretrain_points", pretrain_points, True)
        pretrain_on_sine(model, freq, pretrain_points, pretrain_steps)
    return model
