"""A functional view of a model for measurements, and the small helpers every probe shares.

Non-perturbation (docs/design.md, "Curvature"): a :class:`FunctionalModel` evaluates the caller's
module through ``torch.func.functional_call`` with *copies* of its state, so nothing the
measurement does can reach the model:

* parameters: detached aliases (same dtype) or float64 copies (``dtype=torch.float64``) become
  fresh autograd leaves; the module's own ``nn.Parameter`` objects never enter a graph, so
  ``.grad`` is never written (all derivatives use ``torch.autograd.grad`` / ``torch.func``);
* buffers: cloned once per measurement; a BatchNorm layer that normalises with batch statistics
  (train mode, or ``track_running_stats=False``) gets ``None`` running statistics, which makes
  ``F.batch_norm`` use the batch statistics without updating anything (identical outputs to a
  training forward, and forward-mode AD works through it);
* the train/eval flag of every module is read, never written: the caller decides the mode;
* the global RNG is saved and restored around every measurement (:func:`rng_guard`); modules that
  draw random numbers in the current mode (dropout in train mode) are re-seeded per chunk from
  seeds drawn from the caller's generator, so every operator application sees the same masks
  and the operator is a fixed matrix.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from ijr.state_guard import preserved

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_STOCHASTIC_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


# ---------------------------------------------------------------- arguments -------------------
def check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no trainable parameters (requires_grad=True)")
    return model


def check_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise ValueError(f"dtype must be None or a floating torch.dtype, got {dtype!r}")
    return dtype


def check_loss_fn(loss_fn: Any) -> LossFn:
    if not callable(loss_fn):
        raise ValueError(
            f"loss_fn must be callable as loss_fn(logits, targets), got {type(loss_fn).__name__}"
        )
    return loss_fn


def as_batches(batches: Any, name: str = "batches") -> list[Batch]:
    """A list of (inputs, targets) chunks: accepts one (inputs, targets) pair or a sequence of them."""
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
        batches = [batches]
    if not isinstance(batches, Sequence) or isinstance(batches, torch.Tensor) or len(batches) == 0:
        raise ValueError(f"{name} must be a non-empty list of (inputs, targets) chunks")
    out = []
    for i, chunk in enumerate(batches):
        if not (isinstance(chunk, Sequence) and len(chunk) == 2):
            raise ValueError(f"{name}[{i}] must be an (inputs, targets) pair")
        x, y = chunk
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise ValueError(f"{name}[{i}] must hold two tensors (inputs, targets)")
        if x.ndim == 0 or x.shape[0] == 0 or y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name}[{i}]: inputs and targets need the same non-zero leading size, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        out.append((x, y))
    return out


def as_inputs(inputs: Any, name: str = "inputs") -> list[torch.Tensor]:
    """A list of input chunks: one tensor, a sequence of tensors, or (inputs, targets) chunks."""
    if isinstance(inputs, torch.Tensor):
        inputs = [inputs]
    if (
        isinstance(inputs, tuple)
        and len(inputs) == 2
        and isinstance(inputs[0], torch.Tensor)
        and isinstance(inputs[1], torch.Tensor)
        and inputs[0].ndim > inputs[1].ndim
    ):
        inputs = [inputs]  # one (inputs, targets) pair
    if not isinstance(inputs, Sequence) or len(inputs) == 0:
        raise ValueError(f"{name} must be a tensor or a non-empty list of input chunks")
    out = []
    for i, chunk in enumerate(inputs):
        if isinstance(chunk, Sequence) and not isinstance(chunk, torch.Tensor):
            if len(chunk) != 2 or not isinstance(chunk[0], torch.Tensor):
                raise ValueError(f"{name}[{i}] must be a tensor or an (inputs, targets) pair")
            chunk = chunk[0]
        if not isinstance(chunk, torch.Tensor) or chunk.ndim == 0 or chunk.shape[0] == 0:
            raise ValueError(
                f"{name}[{i}] must be a tensor with a non-empty leading (example) dimension"
            )
        out.append(chunk)
    return out


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_tol(tol: Any) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    return float(tol)


def make_generator(generator: torch.Generator | None) -> torch.Generator:
    """The caller's generator, or a fresh CPU generator seeded with 0 (never the global RNG)."""
    if generator is None:
        return torch.Generator(device="cpu").manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def random_vector(
    n: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """A standard normal vector drawn from ``generator`` (on its device), moved to ``device``."""
    v = torch.randn(n, generator=generator, device=generator.device, dtype=torch.float64)
    return v.to(device=device, dtype=dtype)


def model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


_GUARDED = threading.local()  # how many rng_guard blocks this thread is inside


@contextlib.contextmanager
def rng_guard(device: torch.device) -> Iterator[None]:
    """Restore the global CPU RNG (and the RNG of ``device`` if it is a GPU) on exit
    (:func:`ijr.state_guard.preserved`). The only place ``ijr.curvature`` may seed the global
    RNG is inside this block (:func:`_seed_global` checks it)."""
    with preserved(None, buffers=False, modes=False, rng=True, devices=[device]):
        _GUARDED.depth = getattr(_GUARDED, "depth", 0) + 1
        try:
            yield
        finally:
            _GUARDED.depth -= 1


def _seed_global(seed: int, device: torch.device) -> None:
    """Seed the global RNG for the dropout masks of one chunk; only inside :func:`rng_guard`,
    which puts the caller's RNG state back, so no global state leaks out of ``ijr.curvature``."""
    if getattr(_GUARDED, "depth", 0) < 1:
        raise RuntimeError(
            "ijr.curvature: a stochastic model was evaluated outside rng_guard; this would "
            "reseed the caller's global RNG"
        )
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.default_generators[index].manual_seed(seed)


def uses_batch_statistics(module: nn.Module) -> bool:
    """True for a BatchNorm layer that normalises with the statistics of the current batch."""
    return isinstance(module, _BatchNorm) and (module.training or not module.track_running_stats)


def couples_examples(model: nn.Module) -> bool:
    """True if an example's output depends on the other examples of its chunk (batch-stat BN)."""
    return any(uses_batch_statistics(m) for m in model.modules())


# ---------------------------------------------------------------- flat vectors ----------------
def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate tensors into one flat vector (a new tensor; the inputs are not modified)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Views of ``vector`` shaped like ``like`` (inverse of :func:`flatten`)."""
    sizes = [t.numel() for t in like]
    if vector.ndim != 1 or vector.numel() != sum(sizes):
        raise ValueError(
            f"vector must be flat with {sum(sizes)} entries, got shape {tuple(vector.shape)}"
        )
    return [piece.view(t.shape) for piece, t in zip(torch.split(vector, sizes), like, strict=True)]


# ---------------------------------------------------------------- the functional model -------
class FunctionalModel:
    """Evaluate ``model`` at a point ``theta`` (its current parameters, optionally cast) without
    touching it. See the module docstring for the non-perturbation guarantees.

    Attributes:
        names: names of the trainable parameters (``requires_grad``), in ``named_parameters``
            order -- the coordinates of every Hessian / Jacobian computed here;
        point: the parameter values theta (detached; float64 copies if ``dtype`` is float64);
        device, dtype: where and in which precision everything is computed.
    """

    def __init__(
        self,
        model: nn.Module,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ):
        self.model = check_model(model)
        check_dtype(dtype)
        self.device = model_device(model)
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.dtype = dtype if dtype is not None else trainable[0][1].dtype
        self.names = [n for n, _ in trainable]
        self.point = [self._cast(p) for _, p in trainable]
        constants: dict[str, torch.Tensor | None] = {
            n: self._cast(p) for n, p in model.named_parameters() if not p.requires_grad
        }
        for n, b in model.named_buffers():
            cast = self._cast(b)
            constants[n] = cast.clone() if cast.data_ptr() == b.data_ptr() else cast
        for prefix, module in model.named_modules():
            if uses_batch_statistics(module):
                for key in ("running_mean", "running_var", "num_batches_tracked"):
                    full = f"{prefix}.{key}" if prefix else key
                    if full in constants:
                        constants[full] = None
        self.constants = constants
        self.stochastic = any(
            isinstance(m, _STOCHASTIC_TYPES) and m.training for m in model.modules()
        )
        self._seed_base = 0
        if self.stochastic:
            gen = make_generator(generator)
            self._seed_base = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))

    # ---- casting ----
    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        if t.is_floating_point() and t.dtype != self.dtype:
            return t.to(dtype=self.dtype)
        return t

    def cast_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device)
        return x.to(self.dtype) if x.is_floating_point() and x.dtype != self.dtype else x

    def cast_batches(self, batches: Sequence[Batch]) -> list[Batch]:
        return [(self.cast_input(x), self.cast_input(y)) for x, y in batches]

    # ---- parameters ----
    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.point)

    def leaves(self) -> list[torch.Tensor]:
        """Fresh autograd leaves holding theta (the module's parameters are never graph nodes)."""
        return [p.detach().requires_grad_(True) for p in self.point]

    def flat_point(self) -> torch.Tensor:
        return flatten(self.point)

    # ---- evaluation ----
    def forward(
        self, params: Sequence[torch.Tensor], x: torch.Tensor, chunk: int = 0
    ) -> torch.Tensor:
        """Logits of the model at parameters ``params`` (aligned with ``names``) for inputs x."""
        if self.stochastic:
            _seed_global(self._seed_base + chunk, self.device)
        state: dict[str, Any] = dict(self.constants)
        state.update(zip(self.names, params, strict=True))
        return functional_call(self.model, state, (x,), strict=True)


def chunk_weights(sizes: Sequence[int]) -> list[float]:
    """Weight n_k / N of each chunk in the mean over all examples."""
    total = sum(sizes)
    return [n / total for n in sizes]
