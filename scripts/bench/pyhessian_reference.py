"""The PyHessian reference for the benchmarks and the independent-library tests (not part of
``ijr``): the top Hessian eigenvalue by the installed PyHessian package's ``hessian.eigenvalues``
(power iteration; paper 000, Appendix E.4), with its Hessian-vector products counted.

It lives here, not in ``ijr.curvature``, because running PyHessian needs global state that the
library promises to leave alone: PyHessian allocates its vectors in the *default dtype* and draws
its start vector from the *global RNG*, calls ``model.eval()`` and ``loss.backward()``, and its
products can only be counted by patching its module-level ``hessian_vector_product``. Here all of
that is confined to :func:`pyhessian_top_eigenvalue`: it works on a deep copy of the model whose
train/eval mode is locked, seeds the global RNG from the caller's generator, and restores the
default dtype, the global RNG and PyHessian's function on exit (one call at a time, under a lock).

    import sys; sys.path.insert(0, "scripts/bench")
    from pyhessian_reference import pyhessian_top_eigenvalue
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
import threading
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ijr.curvature import EigenResult

_LOCK = threading.Lock()


class _ModeLocked(nn.Module):
    """Wraps a module so that ``train()`` / ``eval()`` leave its mode alone (PyHessian calls
    ``model.eval()``; the measurement must use the mode the caller chose)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> _ModeLocked:  # noqa: ARG002 - the mode is locked
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def _global_state(seed: int, dtype: torch.dtype, device: torch.device):
    """Seed the global RNG and set the default dtype for PyHessian; restore both on exit."""
    devices = [device.index or 0] if device.type == "cuda" else []
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)
        torch.set_default_dtype(dtype)  # PyHessian allocates its vectors in the default dtype
        warnings.filterwarnings("ignore", message=".*create_graph=True.*reference cycle.*")
        try:
            with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
                yield
        finally:
            torch.set_default_dtype(default_dtype)


def pyhessian_top_eigenvalue(
    model: nn.Module,
    loss_fn,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]] | tuple[torch.Tensor, torch.Tensor],
    tol: float = 1e-3,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> EigenResult:
    """PyHessian's top eigenvalue (largest magnitude) of the Hessian of the mean loss over
    ``batches`` (one (inputs, targets) pair or a list of them), stopping when the estimate changes
    by <= ``tol`` (relative) or after ``max_iter`` products; ``n_products`` counts them."""
    # the module, not the class that pyhessian/__init__ exports under the same name
    pyhessian_module = importlib.import_module("pyhessian.hessian")

    if isinstance(batches, tuple):
        batches = [batches]
    work = copy.deepcopy(model)
    if dtype is not None:
        work = work.to(dtype)
    for p in work.parameters():
        p.grad = None
    device = _device_of(work)
    compute_dtype = dtype or next(work.parameters()).dtype
    chunks = [
        (x.to(device, compute_dtype) if x.is_floating_point() else x.to(device), y.to(device))
        for x, y in batches
    ]
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
    counter = {"products": 0}

    class _Counting(pyhessian_module.hessian):
        def dataloader_hv_product(self, v):  # one product over all chunks
            counter["products"] += 1
            return super().dataloader_hv_product(v)

    original_hvp = pyhessian_module.hessian_vector_product

    def counting_hvp(grads, params, v):
        counter["products"] += 1
        return original_hvp(grads, params, v)

    cuda = device.type == "cuda"
    with _LOCK, _global_state(seed, compute_dtype, device):
        pyhessian_module.hessian_vector_product = counting_hvp
        try:
            if len(chunks) == 1:
                computer = _Counting(_ModeLocked(work), loss_fn, data=chunks[0], cuda=cuda)
            else:
                computer = _Counting(_ModeLocked(work), loss_fn, dataloader=chunks, cuda=cuda)
            values, vectors = computer.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
        finally:
            pyhessian_module.hessian_vector_product = original_hvp
    vector = torch.cat([t.detach().reshape(-1) for t in vectors[0]])
    products = counter["products"]
    return EigenResult(
        value=float(values[0]),
        vector=vector / vector.norm(),
        n_products=products,
        residual=math.nan,  # PyHessian does not report it
        converged=products < max_iter,
        method="pyhessian",
    )
