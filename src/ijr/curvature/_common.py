"""Small list-of-tensor helpers and the "leave the model as found" guard. None of them mutates its
arguments."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class EigenResult:
    """A top eigenvalue with its diagnostics."""

    value: float
    vector: torch.Tensor  # flat, in the parameter order of ``trainable_parameters``
    n_products: int  # operator applications (Hessian- / Gauss-Newton-vector products)
    residual: float  # ||A v - value v|| / |value| at the returned vector
    converged: bool


def trainable_parameters(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, start = [], 0
    for t in like:
        out.append(vector[start : start + t.numel()].view_as(t))
        start += t.numel()
    return out


def chunk_weights(batches: Sequence[Batch]) -> list[float]:
    """Weight of each chunk in the mean over all examples: len(chunk) / N."""
    if not batches:
        raise ValueError("batches is empty: pass a list of (inputs, targets) chunks")
    sizes = [int(b[0].shape[0]) for b in batches]
    total = sum(sizes)
    return [s / total for s in sizes]


def as_batches(inputs) -> list[Batch]:
    """Accept a tensor, a list of tensors, or a list of (inputs, targets) chunks."""
    if isinstance(inputs, torch.Tensor):
        return [(inputs, inputs.new_zeros(0))]
    out = []
    for item in inputs:
        if isinstance(item, torch.Tensor):
            out.append((item, item.new_zeros(0)))
        else:
            out.append((item[0], item[1]))
    return out


def cast_batches(batches: Sequence[Batch], device, dtype) -> list[Batch]:
    out = []
    for x, y in batches:
        x = x.to(device=device, dtype=dtype if torch.is_floating_point(x) else x.dtype)
        y = y.to(device=device, dtype=dtype if torch.is_floating_point(y) else y.dtype)
        out.append((x, y))
    return out


@contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BN running statistics, num_batches_tracked) and the train/eval flag
    of every module on exit. Parameters and ``.grad`` are never written by this package (all
    derivatives go through ``torch.autograd.grad`` / ``torch.func``), and the global RNG is not
    used."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    # BatchNorm in train mode normalises with batch statistics either way; with
    # track_running_stats off it does not write running statistics (torch.func transforms forbid
    # that in-place update), so the forward computation is unchanged and nothing is mutated.
    norms = [
        (m, m.track_running_stats)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._NormBase)
    ]
    for m, _ in norms:
        if m.training:
            m.track_running_stats = False
    try:
        yield
    finally:
        for m, track in norms:
            m.track_running_stats = track
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, mode in modes:
            m.training = mode


@contextmanager
def measuring_copy(model: nn.Module, dtype: torch.dtype | None) -> Iterator[nn.Module]:
    """The model itself (guarded by :func:`preserved`), or a detached copy in ``dtype`` (float64
    probes) so the caller's model is never converted."""
    current = next(model.parameters()).dtype
    if dtype is None or dtype == current:
        with preserved(model):
            yield model
        return
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.grad = None
    clone = clone.to(dtype)
    with preserved(clone):
        yield clone


def make_generator(generator: torch.Generator | None, seed: int = 0) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(seed)


def random_unit(n: int, generator: torch.Generator, device, dtype) -> torch.Tensor:
    v = torch.randn(n, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
    return v / v.norm()


def relative(value: float, scale: float) -> float:
    return abs(value) / max(abs(scale), 1e-30) if math.isfinite(value) else math.inf
