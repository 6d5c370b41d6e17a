"""Helpers shared by the regularised and two-pass training methods.

* the per-step random directions (u on the unit sphere S^{C-1} of EJR, eqs. 11-13 / 51 / 54,
  and v of the input-Jacobian penalty), drawn from a ``torch.Generator`` seeded by
  (run seed, step, stream name) with :func:`ijr.seeds.stream_seed` -- never from the global
  RNG -- so a run is deterministic, a resumed run draws the same directions as an uninterrupted
  one, and the directions do not depend on the device or on how the batch is split into
  physical chunks;
* snapshot / exact restore of parameters and of module buffers (BatchNorm running statistics)
  around a second forward pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ijr.seeds import stream_generator
from ijr.state_guard import preserved


# ------------------------------------------------------------------------- directions
def direction_generator(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator seeded from (run seed, training step, stream name)
    (:func:`ijr.seeds.stream_generator`); ``stream`` separates independent uses (``"ejr_u"``)."""
    return stream_generator(seed, step, stream)


def random_unit_vectors(generator: torch.Generator, count: int, dim: int) -> torch.Tensor:
    """``count`` independent vectors uniform on the unit sphere S^{dim-1}, shape (count, dim),
    float32 on the CPU (normalised standard Gaussians). For dim = 1 they are +-1."""
    vectors = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    return vectors.to(torch.float32)


# ------------------------------------------------------------------------- parameters
def trainable_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Parameters that receive gradients, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def grads_or_zeros(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each parameter's ``.grad`` (zeros for a parameter without one)."""
    return [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Euclidean norm of the concatenation of ``tensors`` (a 0-d tensor)."""
    if not tensors:
        raise ValueError("global_norm of an empty list of tensors")
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t.detach()) for t in tensors])
    )


def dot_all(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum_i <a_i, b_i> over lists of equally shaped tensors (differentiable in both)."""
    return torch.stack([(x * y).sum() for x, y in zip(a, b, strict=True)]).sum()


@contextmanager
def buffers_restored(model: nn.Module) -> Iterator[None]:
    """Run the body, then put every buffer of ``model`` (BatchNorm ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` included) back to its value on entry, exactly
    (saved copies are written back; nothing is recomputed)."""
    with preserved(model, buffers=True, modes=False):
        yield
