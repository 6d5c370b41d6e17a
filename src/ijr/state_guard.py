"""One guard for "measure or craft, then leave the model as found" (pure torch, no ijr imports).

Measuring never changes training (docs/design.md): the probes, the two-pass methods' extra
passes, the PGD attack and the robust evaluation all run forward passes that would otherwise move
BatchNorm running statistics, flip train/eval flags or draw from the global RNG. They all use
:func:`preserved`, which saves on entry and writes back on exit, exactly (saved copies are copied
back; nothing is recomputed):

* ``buffers``: every buffer of the model, by name (BatchNorm ``running_mean``, ``running_var``
  and ``num_batches_tracked`` included);
* ``modes``: the ``training`` flag of every module (only the flags: ``model.train()`` is not
  called on exit, so a module whose flags were mixed on entry gets the same mix back);
* ``rng``: the global CPU RNG and the RNG of every CUDA device the model lives on, plus any
  listed in ``devices`` (``torch.random.fork_rng``).

Parameters and ``.grad`` are not saved: callers that change them (the two-pass methods) restore
them themselves, and the measurements never write them (``ijr.curvature`` differentiates copies).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn


def _cuda_indices(model: nn.Module | None, devices: Sequence[torch.device | str | int]) -> list:
    """Indices of the CUDA devices of ``model``'s tensors and of ``devices`` (sorted, unique)."""
    found: set[int] = set()
    tensors = [] if model is None else [*model.parameters(), *model.buffers()]
    for device in [t.device for t in tensors] + [torch.device(d) for d in devices]:
        if device.type == "cuda":
            found.add(device.index if device.index is not None else torch.cuda.current_device())
    return sorted(found)


@contextmanager
def _buffers_kept(model: nn.Module) -> Iterator[None]:
    saved = [(name, buf.detach().clone()) for name, buf in model.named_buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved:
                model.get_buffer(name).copy_(value)


@contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@contextmanager
def preserved(
    model: nn.Module | None = None,
    *,
    buffers: bool = True,
    modes: bool = True,
    rng: bool = False,
    devices: Sequence[torch.device | str | int] = (),
) -> Iterator[None]:
    """Run the body, then restore what is selected (see the module docstring).

    Args:
        model: whose buffers / module flags to keep (and whose CUDA devices' RNG, with ``rng``);
            may be None with ``buffers=modes=False`` to guard the RNG only.
        buffers, modes: keep every buffer / every module's train-eval flag of ``model``.
        rng: keep the global CPU RNG and the CUDA RNG of the model's devices and ``devices``.
        devices: extra devices whose RNG to keep (CPU entries are ignored: the CPU RNG is kept
            whenever ``rng`` is true).
    """
    if model is None and (buffers or modes):
        raise ValueError("preserved(buffers=True or modes=True) needs the model")
    with ExitStack() as stack:
        if rng:
            indices = _cuda_indices(model, devices)
            stack.enter_context(torch.random.fork_rng(devices=indices, device_type="cuda"))
        if modes:
            stack.enter_context(_modes_kept(model))  # type: ignore[arg-type]
        if buffers:
            stack.enter_context(_buffers_kept(model))  # type: ignore[arg-type]
        yield


__all__ = ["preserved"]
