"""Small CNNs of paper 000: 6CNN (App. E.2) and SimpleCNN (Jastrzębski et al., 2021).

The size of the flattened feature map feeding each model's first Linear layer is computed from
``in_shape``, so both work on any image large enough for their downsampling (6CNN on 8x8 digits,
SimpleCNN on MNIST; SimpleCNN needs H, W >= 10).
"""

from __future__ import annotations

from torch import nn

from ._registry import register
from ._shapes import SpatialOp, image_shape, spatial_size_after

CNN6_SPATIAL_OPS = (
    SpatialOp("conv1 (3x3, stride 1, pad 1)", kernel=3, stride=1, padding=1),
    SpatialOp("conv2 (4x4, stride 2, pad 1)", kernel=4, stride=2, padding=1),
    SpatialOp("conv3 (3x3, stride 1, pad 1)", kernel=3, stride=1, padding=1),
    SpatialOp("conv4 (4x4, stride 2, pad 1)", kernel=4, stride=2, padding=1),
)


class SixLayerCNN(nn.Sequential):
    """6CNN, the PyTorch code printed in paper 000, Appendix E.2:

    Conv(C,32,3,s1,p1) ReLU Conv(32,32,4,s2,p1) ReLU Conv(32,64,3,s1,p1) ReLU
    Conv(64,64,4,s2,p1) ReLU Flatten Linear(64*h*w,100) ReLU Linear(100,classes);
    convolutions without bias, Linear layers with bias, PyTorch default initialisation.
    511,926 parameters on CIFAR-10 (h = w = 8, so the first Linear is 4096 -> 100).
    """

    def __init__(self, in_channels: int, num_classes: int, feature_hw: tuple[int, int]):
        height, width = feature_hw
        super().__init__(
            nn.Conv2d(in_channels, 32, 3, stride=1, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(32, 32, 4, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=1, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(64, 64, 4, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * height * width, 100, bias=True),
            nn.ReLU(),
            nn.Linear(100, num_classes, bias=True),
        )


@register("cnn6", "6CNN printed in paper 000 App. E.2")
def build_cnn6(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """6CNN of paper 000, App. E.2 (see :class:`SixLayerCNN`)."""
    channels, _, _ = image_shape("cnn6", in_shape)
    feature_hw = spatial_size_after("cnn6", in_shape, CNN6_SPATIAL_OPS)
    return SixLayerCNN(channels, num_classes, feature_hw)


SIMPLECNN_SPATIAL_OPS = (
    SpatialOp("conv1 (3x3, 'same')", kernel=3, padding=1),
    SpatialOp("conv2 (3x3, 'valid')", kernel=3, padding=0),
    SpatialOp("max-pool 1 (2x2)", kernel=2, stride=2),
    SpatialOp("conv3 (3x3, 'same')", kernel=3, padding=1),
    SpatialOp("conv4 (3x3, 'valid')", kernel=3, padding=0),
    SpatialOp("max-pool 2 (2x2)", kernel=2, stride=2),
)


class SimpleCNN(nn.Sequential):
    """SimpleCNN of Jastrzębski et al. (2021, "Catastrophic Fisher explosion"), used by paper 000
    for Table 1 (top), Table 5 and several figures (App. E.2: 361,706 parameters on CIFAR-10).

    Layout, from the authors' earlier SimpleCNN (kudkudak/dnn_sharpest_directions,
    ``src/models/simple_cnn.py``, defaults n_filters=32, n_dense=128, kernel 3):
    Conv(C,32,3,'same') ReLU Conv(32,32,3,'valid') ReLU MaxPool2
    Conv(32,64,3,'same') ReLU Conv(64,64,3,'valid') ReLU MaxPool2
    Flatten Linear(64*h*w,128) ReLU Linear(128,classes).

    The convolutions have no bias: that reference keeps them (361,898 parameters on CIFAR-10),
    and dropping exactly those 32+32+64+64 = 192 biases gives the count paper 000 reports, so the
    model paper 000 trained is this one. The Linear layers keep their biases. Initialisation is
    PyTorch's default (the Keras reference used Glorot-uniform; the PyTorch code of Jastrzębski
    et al. 2021 was not available to us) -- see docs/deviations_models.md.
    """

    def __init__(self, in_channels: int, num_classes: int, feature_hw: tuple[int, int]):
        height, width = feature_hw
        super().__init__(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=0, bias=False),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=0, bias=False),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * height * width, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )


@register("simplecnn", "SimpleCNN of Jastrzebski et al. 2021 (paper 000 App. E.2)")
def build_simplecnn(num_classes: int, in_shape: tuple[int, ...]) -> nn.Module:
    """SimpleCNN (see :class:`SimpleCNN`)."""
    channels, _, _ = image_shape("simplecnn", in_shape)
    feature_hw = spatial_size_after("simplecnn", in_shape, SIMPLECNN_SPATIAL_OPS)
    return SimpleCNN(channels, num_classes, feature_hw)
