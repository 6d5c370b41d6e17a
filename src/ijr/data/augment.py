"""Table 4's "Basic" augmentation, vectorised over a batch on its device: random crop of the
original size from the image zero-padded by 4 pixels, then random horizontal flip (p = 1/2),
as torchvision's ``RandomCrop(size, padding=4)`` + ``RandomHorizontalFlip()`` do per image.

The random numbers come from a caller-supplied CPU ``torch.Generator`` (the data module seeds one
per training step), so augmentation is a deterministic function of (seed, step) on any device.
"""

from __future__ import annotations

import torch


def draw_crop_flip(
    batch_size: int, padding: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example crop offsets (top, left) in [0, 2 * padding] and flip flags, on the CPU."""
    top = torch.randint(0, 2 * padding + 1, (batch_size,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch_size,), generator=generator)
    flip = torch.randint(0, 2, (batch_size,), generator=generator).bool()
    return top, left, flip


def crop_flip(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    flip: torch.Tensor,
    padding: int,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop ``x`` (B, C, H, W), padded by ``padding`` on every side with ``fill`` (per channel,
    shape (C,); zeros if None), at offsets (top[b], left[b]) in the padded image, then mirror
    left-right the examples with ``flip[b]``.

    The padded image is never built: two gathers (rows, then columns) read the source pixel of
    every output pixel, and pixels whose source lies in the padding get ``fill``, so the memory
    needed is a few times that of the batch (a full-batch CIFAR-10 augmentation fits on a GPU).
    """
    b, c, h, w = x.shape
    device = x.device
    top, left, flip = top.to(device), left.to(device), flip.to(device)
    src_rows = top[:, None] - padding + torch.arange(h, device=device)  # (B, H)
    plain = torch.arange(w, device=device)
    src_cols = (
        left[:, None] - padding + torch.where(flip[:, None], (w - 1) - plain, plain)
    )  # (B, W)
    rows_inside = (src_rows >= 0) & (src_rows < h)
    cols_inside = (src_cols >= 0) & (src_cols < w)
    rows_index = src_rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w)
    cols_index = src_cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w)
    out = torch.gather(torch.gather(x, 2, rows_index), 3, cols_index)
    inside = rows_inside[:, None, :, None] & cols_inside[:, None, None, :]  # (B, 1, H, W)
    if fill is None:
        return out.masked_fill_(~inside, 0.0)
    fill = fill.to(device=device, dtype=x.dtype).view(1, c, 1, 1)
    return torch.where(inside, out, fill)


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, fill: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`crop_flip` with offsets and flips drawn from ``generator``."""
    top, left, flip = draw_crop_flip(x.shape[0], padding, generator)
    return crop_flip(x, top, left, flip, padding, fill)
