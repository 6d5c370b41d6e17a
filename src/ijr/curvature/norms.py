"""Weight and logit norms: ||theta||, layer-wise ||W_l||, ||theta - theta_0|| (paper 000,
Appendix F, Figures 12-14), the output-layer norm ||A|| (paper 004, Section 3.2) and the logit
statistics <||z||>, <|1-hat^T z|> (paper 000, Figure 12).

``||theta||`` and ``||theta - theta_0||`` run over all parameters of the model (every
``model.parameters()`` entry); layer norms over the ``weight`` of every Conv/Linear layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ._functional import FunctionalModel, as_inputs, check_model, rng_guard

_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Bilinear)


def _norm(tensors) -> float:
    total = 0.0
    for t in tensors:
        total += float(t.detach().to(torch.float64).square().sum())
    return math.sqrt(total)


def weight_norm(model: nn.Module) -> float:
    """||theta||: Euclidean norm of all parameters (Figure 12, third panel)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return _norm(model.parameters())


def layer_weight_norms(model: nn.Module) -> dict[str, float]:
    """{parameter name: ||W||_F} for the ``weight`` of every Linear / Conv layer (Figure 14),
    keyed like ``model.named_parameters()`` (e.g. ``"0.weight"``)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return {
        (f"{name}.weight" if name else "weight"): _norm([module.weight])
        for name, module in model.named_modules()
        if isinstance(module, _LAYER_TYPES)
        and isinstance(getattr(module, "weight", None), torch.Tensor)
    }


def output_layer_norm(model: nn.Module) -> float:
    """||A||_F of the output layer: the weight of the last ``nn.Linear`` (paper 004, Sec. 3.2)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no nn.Linear layer, so no output-layer weight")
    return _norm([linears[-1].weight])


def dist_from_init(
    model: nn.Module, init_params: Sequence[torch.Tensor] | Mapping[str, torch.Tensor]
) -> float:
    """||theta - theta_0|| (Figure 12, fourth panel).

    ``init_params``: a sequence aligned with ``model.parameters()`` or a mapping from parameter
    names (``model.named_parameters()``) to tensors.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = list(model.named_parameters())
    if isinstance(init_params, Mapping):
        missing = [n for n, _ in named if n not in init_params]
        if missing:
            raise ValueError(f"init_params lacks parameters: {', '.join(missing[:5])}")
        init = [init_params[n] for n, _ in named]
    elif isinstance(init_params, Sequence) and all(
        isinstance(t, torch.Tensor) for t in init_params
    ):
        if len(init_params) != len(named):
            raise ValueError(
                f"init_params has {len(init_params)} tensors, the model {len(named)} parameters"
            )
        init = list(init_params)
    else:
        raise ValueError("init_params must be a list of tensors or a {name: tensor} mapping")
    for (n, p), t in zip(named, init, strict=True):
        if t.shape != p.shape:
            raise ValueError(
                f"init_params[{n!r}] has shape {tuple(t.shape)}, the parameter {tuple(p.shape)}"
            )
    return _norm(
        [
            p.detach().to(torch.float64) - t.detach().to(device=p.device, dtype=torch.float64)
            for (_, p), t in zip(named, init, strict=True)
        ]
    )


class LogitStats(NamedTuple):
    """<||z||> and <|1-hat^T z|> with 1-hat = 1/sqrt(C) over the examples (Figure 12)."""

    logit_norm: float
    logit_sum_abs: float


def logit_stats(model: nn.Module, inputs: Any, dtype: torch.dtype | None = None) -> LogitStats:
    """Mean logit norm <||z||> and mean |1-hat^T z| (Figure 12, first two panels).

    ``inputs``: a tensor, input chunks or (inputs, targets) chunks. The model runs in the
    caller's mode; BatchNorm running statistics are not updated.
    """
    check_model(model)
    chunks = as_inputs(inputs)
    fm = FunctionalModel(model, dtype)
    norm_sum = sum_abs = 0.0
    count = 0
    with rng_guard(fm.device), torch.no_grad():
        for k, x in enumerate(chunks):
            z = fm.forward(fm.point, fm.cast_input(x), chunk=k).to(torch.float64)
            norm_sum += float(torch.linalg.vector_norm(z, dim=-1).sum())
            sum_abs += float((z.sum(-1) / math.sqrt(z.shape[-1])).abs().sum())
            count += z.shape[0]
    return LogitStats(logit_norm=norm_sum / count, logit_sum_abs=sum_abs / count)
