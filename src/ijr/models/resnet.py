"""ResNet-18 family for 32x32 inputs (3x3 stem, no max-pool, stages of 64/128/256/512 channels).

- ``resnet18_bn``: the ResNet18 of companion paper 002 (MacDonald et al.), "superficially
  modifying" kuangliu/pytorch-cifar ``models/resnet.py`` (App. B.1, B.2; with batch norm in
  Figure 5 and App. B.3). 11,173,962 parameters for 10 classes.
- ``resnet18``: the same network with every BatchNorm removed, for the "ResNet18 without
  batch-norm" runs of paper 002, App. B.3 (Figures 22 and 26). Paper 002 ran those in JAX and
  does not print the network; we remove the BN layers and keep the convolutions bias-free
  (11,164,362 parameters for 10 classes).
- ``preact_resnet18``: the PreAct ResNet-18 of paper 000, Table 2 (App. R), which follows Pang
  et al. (2020, "Bag of tricks for adversarial training"); their model is the PreActResNet18 of
  Rice et al. (2020, locuslab/robust_overfitting): pre-activation blocks with 1x1-convolution
  shortcuts (no BN on the shortcut) and a final BN + ReLU before pooling. 11,172,170 parameters
  for 10 classes.

All three keep PyTorch's default initialisation, as their references do. The references pool
with ``avg_pool2d(out, 4)``, which on 32x32 inputs (4x4 final map) equals the global average
pooling used here; global pooling also lets other input sizes through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register
from ._shapes import image_shape

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class BasicBlock(nn.Module):
    """Post-activation basic block of He et al. (2016) as in kuangliu ``resnet.py``:
    relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut = conv1x1 + BN when the
    shape changes. ``batch_norm=False`` replaces every BN by the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, batch_norm: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(out_channels, batch_norm)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(out_channels, batch_norm)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                _norm(out_channels, batch_norm),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for CIFAR (kuangliu/pytorch-cifar layout), with or without batch norm."""

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(64, batch_norm)
        layers = []
        channels = 64
        for stage_channels, stride in STAGES:
            layers.append(
                nn.Sequential(
                    BasicBlock(channels, stage_channels, stride, batch_norm),
                    BasicBlock(stage_channels, stage_channels, 1, batch_norm),
                )
            )
            channels = stage_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(self.pool(out).flatten(1))


@register("resnet18_bn", "ResNet-18 with BN (paper 002; kuangliu/pytorch-cifar resnet.py)")
def build_resnet18_bn(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-18 with batch norm, as used by companion paper 002 (see module docstring)."""
    channels, _, _ = image_shape("resnet18_bn", in_shape)
    return ResNet18(channels, num_classes, batch_norm=True)


@register("resnet18", "ResNet-18 without BN (paper 002 App. B.3 no-BN runs)")
def build_resnet18(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-18 with all batch norm removed (companion paper 002, App. B.3)."""
    channels, _, _ = image_shape("resnet18", in_shape)
    return ResNet18(channels, num_classes, batch_norm=False)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016b) as in Rice et al. / Pang et al.:
    a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + (conv1x1(a) if the shape changes
    else x).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        residual = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + residual


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 (paper 000, Table 2; Pang et al. 2020 / Rice et al. 2020)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        layers = []
        channels = 64
        for stage_channels, stride in STAGES:
            layers.append(
                nn.Sequential(
                    PreActBlock(channels, stage_channels, stride),
                    PreActBlock(stage_channels, stage_channels, 1),
                )
            )
            channels = stage_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        return self.linear(self.pool(out).flatten(1))


@register("preact_resnet18", "PreAct ResNet-18 of paper 000 Table 2 (Pang et al. 2020)")
def build_preact_resnet18(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """PreAct ResNet-18 for adversarial training (paper 000, Table 2; see module docstring)."""
    channels, _, _ = image_shape("preact_resnet18", in_shape)
    return PreActResNet18(channels, num_classes)
