"""Input-shape bookkeeping shared by the convolutional models.

CNNs whose head is a ``Linear`` layer on the flattened feature map need that map's size, which
depends on the input's height and width; :func:`spatial_size_after` computes it exactly from the
same (kernel, stride, padding) arithmetic PyTorch uses, and raises a one-line ``ValueError``
naming the smallest valid input when an input is too small for the model's downsampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpatialOp:
    """A layer that changes height/width: a convolution or a pooling window."""

    label: str
    kernel: int
    stride: int = 1
    padding: int = 0

    def output_size(self, size: int) -> int:
        # floor((n + 2p - k) / s) + 1, the formula of torch.nn.Conv2d / MaxPool2d (dilation 1)
        span = size + 2 * self.padding - self.kernel
        return span // self.stride + 1 if span >= 0 else 0


def image_shape(model_name: str, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Check that ``in_shape`` is (C, H, W) and return it."""
    if len(in_shape) != 3:
        raise ValueError(
            f"model '{model_name}' needs an image in_shape (C, H, W) such as (3, 32, 32), "
            f"got {in_shape}"
        )
    channels, height, width = in_shape
    return channels, height, width


def _run(ops: Sequence[SpatialOp], size: int) -> tuple[int, str | None]:
    for op in ops:
        size = op.output_size(size)
        if size < 1:
            return size, op.label
    return size, None


def _smallest_valid(ops: Sequence[SpatialOp]) -> int:
    size = 1
    while _run(ops, size)[1] is not None:
        size += 1
    return size


def spatial_size_after(
    model_name: str, in_shape: tuple[int, ...], ops: Sequence[SpatialOp]
) -> tuple[int, int]:
    """Height and width of the feature map after ``ops``; ValueError if it vanishes."""
    _, height, width = image_shape(model_name, in_shape)
    out = []
    for axis, size in (("H", height), ("W", width)):
        result, failed_at = _run(ops, size)
        if failed_at is not None:
            raise ValueError(
                f"model '{model_name}' cannot take in_shape {in_shape}: {axis}={size} shrinks to "
                f"nothing at {failed_at}; it needs H and W >= {_smallest_valid(ops)}"
            )
        out.append(result)
    return out[0], out[1]
