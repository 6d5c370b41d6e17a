"""Wide residual networks (Zagoruyko & Komodakis, 2016) with batch norm, dropout rate 0.

- ``wrn28_2`` / ``wrn28_10``: paper 000, Table 1 (bottom) and Figure 6, trained "following a
  similar setting to Kwon et al. (2021)" (ASAM). The ASAM code (SamsungLabs/ASAM
  ``example_cifar.py``) takes ``wrn28_2`` / ``wrn28_10`` from homura
  (``homura/vision/models/cifar_resnet.py``); we follow that network. Its parameter counts
  are exactly paper 000's: 1,467,610 / 36,479,194 (CIFAR-10) and 1,479,220 / 36,536,884
  (CIFAR-100). The WideResNet in davda54/sam (``example/model/wide_res_net.py``) is not it:
  its groups have depth + 1 units (1,855,578 / 46,160,474 parameters for CIFAR-10).
- ``wrn34_10``: paper 000, Table 2 (adversarial training, following Pang et al. 2020), whose
  WideResNet is the TRADES one (yaodongyu/TRADES ``models/wideresnet.py``). That file also
  builds an unused ``sub_block1`` (never called in ``forward``); we leave it out, since it
  changes no output and gets no gradient: 46,160,474 parameters for CIFAR-10 here, 48,262,586
  with the dead block.

The two references differ in one detail, kept here: where a unit changes the channel count,
homura's 1x1 shortcut convolution reads the block's raw input, TRADES' reads the input after
BN + ReLU (``shortcut_reads='input'`` / ``'activation'``).

Initialisation as in both references: convolution weights Kaiming-normal (fan-out, ReLU gain;
TRADES writes it as N(0, 2 / (k*k*out_channels))), BatchNorm weight 1 and bias 0. The Linear
head keeps PyTorch's default weight; its bias is PyTorch's default for homura and zero for
TRADES.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register
from ._shapes import image_shape

SHORTCUT_READS = ("input", "activation")


class WideBasicUnit(nn.Module):
    """Pre-activation unit: a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut_reads: str):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.shortcut_reads = shortcut_reads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(activated))))
        if self.shortcut is None:
            return out + x
        source = activated if self.shortcut_reads == "activation" else x
        return out + self.shortcut(source)


class WideResNet(nn.Module):
    """WRN-depth-k: 3x3 stem (16 channels), three groups of (depth - 4) / 6 units with
    16k / 32k / 64k channels (strides 1, 2, 2), final BN + ReLU, global average pooling, Linear.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int,
        widen_factor: int,
        shortcut_reads: str,
        zero_linear_bias: bool,
    ):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        if shortcut_reads not in SHORTCUT_READS:
            raise ValueError(
                f"unknown shortcut_reads {shortcut_reads!r}; valid: {', '.join(SHORTCUT_READS)}"
            )
        units_per_group = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        groups = []
        channels = 16
        for group_channels, stride in (
            (16 * widen_factor, 1),
            (32 * widen_factor, 2),
            (64 * widen_factor, 2),
        ):
            units = [WideBasicUnit(channels, group_channels, stride, shortcut_reads)]
            units += [
                WideBasicUnit(group_channels, group_channels, 1, shortcut_reads)
                for _ in range(units_per_group - 1)
            ]
            groups.append(nn.Sequential(*units))
            channels = group_channels
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self._initialise(zero_linear_bias)

    @torch.no_grad()
    def _initialise(self, zero_linear_bias: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_linear_bias:
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.block3(self.block2(self.block1(out)))
        out = F.relu(self.bn(out))
        return self.fc(self.pool(out).flatten(1))


def _homura_wrn(name: str, num_classes: int, in_shape: tuple[int, ...], widen: int) -> WideResNet:
    channels, _, _ = image_shape(name, in_shape)
    return WideResNet(channels, num_classes, 28, widen, "input", zero_linear_bias=False)


@register("wrn28_2", "WRN-28-2 with BN (paper 000 Table 1; ASAM/homura wrn28_2)")
def build_wrn28_2(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """WRN-28-2 (paper 000, Table 1; see module docstring)."""
    return _homura_wrn("wrn28_2", num_classes, in_shape, widen=2)


@register("wrn28_10", "WRN-28-10 with BN (paper 000 Table 1; ASAM/homura wrn28_10)")
def build_wrn28_10(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """WRN-28-10 (paper 000, Table 1 and Figure 6; see module docstring)."""
    return _homura_wrn("wrn28_10", num_classes, in_shape, widen=10)


@register("wrn34_10", "WRN-34-10 with BN (paper 000 Table 2; TRADES / Pang et al. 2020)")
def build_wrn34_10(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """WRN-34-10 for adversarial training (paper 000, Table 2; see module docstring)."""
    channels, _, _ = image_shape("wrn34_10", in_shape)
    return WideResNet(channels, num_classes, 34, 10, "activation", zero_linear_bias=True)
