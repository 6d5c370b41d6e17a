"""VGG-11 for CIFAR, after chengyangfu/pytorch-vgg-cifar10 ``vgg.py``, dropout removed.

- ``vgg11``: no batch normalisation (paper 000, App. E.2: 9,750,922 parameters for CIFAR-10,
  9,797,092 for CIFAR-100 with the last Linear changed); also the "VGG11 without batch-norm" of
  companion paper 002, App. B.3.
- ``vgg11_bn``: the same with BatchNorm2d after every convolution, the VGG11 of companion paper
  002 (App. B.1, B.2 and B.4: "dropout layers removed, but BN layers retained"); 9,756,426
  parameters for CIFAR-10.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._registry import register
from ._shapes import SpatialOp, image_shape, spatial_size_after

# configuration 'A' of Simonyan & Zisserman (2015): channel counts, 'M' = 2x2 max-pool
VGG11_LAYOUT: tuple[int | str, ...] = (
    64,
    "M",
    128,
    "M",
    256,
    256,
    "M",
    512,
    512,
    "M",
    512,
    512,
    "M",
)


def _vgg_spatial_ops() -> tuple[SpatialOp, ...]:
    ops = []
    pool_index = 0
    for item in VGG11_LAYOUT:
        if item == "M":
            pool_index += 1
            ops.append(SpatialOp(f"max-pool {pool_index} (2x2)", kernel=2, stride=2))
        else:
            ops.append(SpatialOp("3x3 convolution", kernel=3, padding=1))
    return tuple(ops)


class VGG(nn.Module):
    """VGG-11 (configuration A): 8 conv3x3 layers (bias, optional BN, ReLU) with 5 max-pools,
    then Linear(512*h*w, 512) ReLU Linear(512, 512) ReLU Linear(512, classes).

    As in the reference, conv weights are N(0, 2/(3*3*out_channels)) (He, fan-out) with zero
    biases; Linear and BatchNorm layers keep PyTorch's default initialisation. On 32x32 inputs
    the feature map is 1x1, so the first Linear is 512 -> 512 as in the reference; larger inputs
    give a wider first Linear.
    """

    def __init__(
        self, in_channels: int, num_classes: int, feature_hw: tuple[int, int], batch_norm: bool
    ):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(channels, int(item), kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(item)))
            layers.append(nn.ReLU())
            channels = int(item)
        self.features = nn.Sequential(*layers)
        height, width = feature_hw
        self.classifier = nn.Sequential(
            nn.Linear(channels * height * width, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, num_classes),
        )
        self._initialise()

    @torch.no_grad()
    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
                module.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _build_vgg11(name: str, num_classes: int, in_shape: tuple[int, ...], batch_norm: bool) -> VGG:
    channels, _, _ = image_shape(name, in_shape)
    feature_hw = spatial_size_after(name, in_shape, _vgg_spatial_ops())
    return VGG(channels, num_classes, feature_hw, batch_norm)


@register("vgg11", "VGG-11 without BN or dropout (paper 000 App. E.2; chengyangfu vgg.py)")
def build_vgg11(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """VGG-11 without batch norm or dropout (paper 000, App. E.2)."""
    return _build_vgg11("vgg11", num_classes, in_shape, batch_norm=False)


@register("vgg11_bn", "VGG-11 with BN, no dropout (paper 002 App. B; chengyangfu vgg.py)")
def build_vgg11_bn(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """VGG-11 with batch norm, without dropout (companion paper 002, App. B)."""
    return _build_vgg11("vgg11_bn", num_classes, in_shape, batch_norm=True)
