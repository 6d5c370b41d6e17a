"""ResNet-20 without batch normalisation (paper 000, App. E.2: 268,346 parameters).

Paper 000 uses ``src/resnet_cifar.py`` of locuslab/edge-of-stability (Cohen et al., 2021) with
batch normalisation removed. That file (read through its forks matekrk/edge-of-stability,
Avra98/variationallearning_eos, lutscha/slt-experiments, which carry it unchanged) is the He et
al. (2016) CIFAR ResNet: a 3x3 stem with 16 channels, three stages of three basic blocks with
16/32/64 channels, bias-free 3x3 convolutions, a parameter-free "option A" shortcut where the
stage changes (stride-2 subsampling, ``AvgPool2d(1, stride=2)``, then zero channels appended),
global average pooling and a Linear head.

Parameter arithmetic: convolutions 267,696 + Linear(64, 10) 650 = 268,346 -- exactly paper 000's
count, which rules out convolution biases and 1x1-convolution ("option B") shortcuts. With
batch norm the same file has 269,818 parameters (1,376 block BN + 96 shortcut BN parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register
from ._shapes import image_shape


class SubsampleZeroPadShortcut(nn.Module):
    """Option-A shortcut: keep every ``stride``-th pixel, append zero channels up to ``out``.

    Equals the reference's ``AvgPool2d(1, stride)`` followed by concatenating zeros after the
    input channels (its BatchNorm removed); it has no parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class BasicBlockNoBN(nn.Module):
    """relu(conv3x3(relu(conv3x3(x))) + shortcut(x)), the reference block with BN removed."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = SubsampleZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = self.conv2(out)
        return F.relu(out + self.shortcut(x))


class CifarResNetNoBN(nn.Module):
    """He et al. (2016) CIFAR ResNet-(6n+2) without batch normalisation (n = 3: ResNet-20).

    Initialisation as in the reference: conv weights Kaiming-normal (fan-out, ReLU gain);
    the Linear head keeps PyTorch's default. (The reference's zero-init of the last BN weight of
    each block has nothing to act on once BN is removed.) Global average pooling makes any
    (C, H, W) input valid.
    """

    def __init__(self, in_channels: int, num_classes: int, blocks_per_stage: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        stages = []
        channels = 16
        for stage_channels, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [BasicBlockNoBN(channels, stage_channels, stride)]
            blocks += [
                BasicBlockNoBN(stage_channels, stage_channels, 1)
                for _ in range(blocks_per_stage - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            channels = stage_channels
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self._initialise()

    @torch.no_grad()
    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.pool(out).flatten(1))


@register(
    "resnet20", "ResNet-20 without BN (paper 000 App. E.2; edge-of-stability resnet_cifar.py)"
)
def build_resnet20(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """ResNet-20 without batch normalisation (see module docstring)."""
    channels, _, _ = image_shape("resnet20", in_shape)
    return CifarResNetNoBN(channels, num_classes, blocks_per_stage=3)
