"""Fully connected networks: 3FCN (paper 000, App. E.2) and the two-layer network of paper 004.

Both flatten any input shape, so they take CIFAR (3, 32, 32), MNIST (1, 28, 28), digits (1, 8, 8)
or an already-flat (d,) input alike.
"""

from __future__ import annotations

import math
from math import prod

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
}


def make_activation(model_name: str, activation: str) -> nn.Module:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"model '{model_name}': unknown activation {activation!r}; "
            f"valid activations: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[activation]()


def _positive_int(model_name: str, key: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model '{model_name}': {key} must be a positive int, got {value!r}")
    return value


class ThreeLayerFC(nn.Sequential):
    """3FCN of paper 000, Appendix E.2: Flatten -> Linear(d, 200) -> act -> Linear(200, 200)
    -> act -> Linear(200, C), all with bias, PyTorch default initialisation.

    It is the ``fc-relu`` network of Cohen et al. (2021) (locuslab/edge-of-stability,
    ``src/archs.py``), used by paper 000 as 3FCN-CIFAR (d = 3072, 656,810 parameters) and
    3FCN-MNIST (d = 784, 199,210 parameters). ``activation='tanh'`` gives the tanh network that
    companion paper 002 (App. B.5, "three layer networks, of width 200 ... ReLU and tanh") trains
    alongside the ReLU one.
    """

    def __init__(self, in_features: int, num_classes: int, width: int, activation: str):
        super().__init__(
            nn.Flatten(),
            nn.Linear(in_features, width),
            make_activation("fcn3", activation),
            nn.Linear(width, width),
            make_activation("fcn3", activation),
            nn.Linear(width, num_classes),
        )


@register("fcn3", "3FCN of paper 000 App. E.2 (Cohen et al. fc-relu, width 200)")
def build_fcn3(
    num_classes: int, in_shape: tuple[int, ...], *, width: int = 200, activation: str = "relu"
) -> nn.Module:
    """3FCN (paper 000, App. E.2). ``width`` 200 and ``activation`` 'relu' are the paper's."""
    width = _positive_int("fcn3", "width", width)
    return ThreeLayerFC(prod(in_shape), num_classes, width, activation)


FC2_INITS = ("ntk", "pytorch")


class TwoLayerFC(nn.Module):
    """Two-layer fully connected network of companion paper 004 (Li, Wang & Li), Section 4.1:

        f(x) = (1/sqrt(m)) A^T sigma(W x),   W in R^{m x d},  A in R^{m (x C)},

    with ``sigma`` the identity (the paper's analysed case, "two-layer neural network with linear
    activation"), ReLU or tanh, and ``m`` the width. Paper 004 studies a binary task with a scalar
    output and MSE loss (Section 2), so ``num_classes=1`` gives outputs of shape (batch, 1);
    ``num_classes=C`` gives C outputs (one column of A per output).

    Parameters (all keyword arguments of ``build('fc2', ...)``):

    - ``output_scaling='ntk'`` multiplies ``A^T sigma(Wx)`` by 1/sqrt(m) as in Section 4.1;
      ``'none'`` drops the factor (a plain two-layer network).
    - ``bias=False`` as in Section 4.1 (the model has no bias terms); ``True`` adds a bias to both
      layers (the output bias is added after the 1/sqrt(m) factor, and is zero-initialised
      under ``init='ntk'``).
    - ``init='ntk'``: W_ij ~ N(0, 1/d) and A_q ~ N(0, 1). This is our reading of Theorem 1, whose
      proof uses W^T W ~ (m/d) I at initialisation (M(t) ~ 2/(mn) (||A||^2 + m/d) X^T X).
      ``init='pytorch'`` keeps nn.Linear's default (uniform +-1/sqrt(fan_in)).
    - ``init_scale`` multiplies every initial weight (Section 3.3 assumes the output is small at
      initialisation, "true if we use very small initial weights"; a scale < 1 gives that regime).

    The width, initialisation variances and any bias actually used in paper 004's experiments are
    described only in its appendix, which our copy of the paper does not contain; the defaults
    here follow Section 4.1 and are listed in docs/deviations_models.md.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        width: int,
        activation: str,
        output_scaling: str,
        bias: bool,
        init: str,
        init_scale: float,
    ):
        super().__init__()
        self.hidden = nn.Linear(in_features, width, bias=bias)
        self.activation = make_activation("fc2", activation)
        self.output = nn.Linear(width, num_classes, bias=bias)
        self.output_multiplier = 1.0 / math.sqrt(width) if output_scaling == "ntk" else 1.0
        self._initialise(init, init_scale)

    @torch.no_grad()
    def _initialise(self, init: str, init_scale: float) -> None:
        if init == "ntk":
            nn.init.normal_(
                self.hidden.weight, mean=0.0, std=1.0 / math.sqrt(self.hidden.in_features)
            )
            nn.init.normal_(self.output.weight, mean=0.0, std=1.0)
            for layer in (self.hidden, self.output):
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        for layer in (self.hidden, self.output):
            layer.weight.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.activation(self.hidden(x.flatten(1)))
        logits = F.linear(features, self.output.weight) * self.output_multiplier
        if self.output.bias is not None:
            logits = logits + self.output.bias
        return logits


@register("fc2", "two-layer FC network f(x) = A^T sigma(Wx)/sqrt(m) of paper 004, Sec. 4.1")
def build_fc2(
    num_classes: int,
    in_shape: tuple[int, ...],
    *,
    width: int = 1000,
    activation: str = "linear",
    output_scaling: str = "ntk",
    bias: bool = False,
    init: str = "ntk",
    init_scale: float = 1.0,
) -> nn.Module:
    """Two-layer network of paper 004, Section 4.1 (see :class:`TwoLayerFC`)."""
    width = _positive_int("fc2", "width", width)
    make_activation("fc2", activation)  # validates the name before any allocation
    if output_scaling not in ("ntk", "none"):
        raise ValueError(
            f"model 'fc2': unknown output_scaling {output_scaling!r}; valid: ntk, none"
        )
    if not isinstance(bias, bool):
        raise ValueError(f"model 'fc2': bias must be true or false, got {bias!r}")
    if init not in FC2_INITS:
        raise ValueError(f"model 'fc2': unknown init {init!r}; valid inits: {', '.join(FC2_INITS)}")
    if (
        isinstance(init_scale, bool)
        or not isinstance(init_scale, (int, float))
        or not (init_scale > 0 and math.isfinite(init_scale))
    ):
        raise ValueError(f"model 'fc2': init_scale must be a positive number, got {init_scale!r}")
    return TwoLayerFC(
        prod(in_shape),
        num_classes,
        width,
        activation,
        output_scaling,
        bias,
        init,
        float(init_scale),
    )
