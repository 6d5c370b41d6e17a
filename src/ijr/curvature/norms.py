"""Weight and logit statistics of Appendix F (Figures 12-14) and companion paper 004."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ijr.curvature._common import as_batches, measuring_copy


@torch.no_grad()
def weight_norm(model: nn.Module) -> float:
    """||theta||: the Euclidean norm of all trainable parameters."""
    return float(
        torch.sqrt(
            sum(p.detach().double().pow(2).sum() for p in model.parameters() if p.requires_grad)
        )
    )


@torch.no_grad()
def layer_weight_norms(model: nn.Module) -> dict[str, float]:
    """||W|| per parameter tensor, by parameter name (Figure 14's layer-wise norms)."""
    return {n: float(p.detach().norm()) for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def output_layer_norm(model: nn.Module) -> float:
    """||W_out||_F of the last nn.Linear's weight (the output layer of paper 004)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("output_layer_norm: the model has no nn.Linear layer")
    return float(linears[-1].weight.detach().norm())


@torch.no_grad()
def dist_from_init(model: nn.Module, init_params: Sequence[torch.Tensor]) -> float:
    """||theta - theta^(0)|| with ``init_params`` in ``model.parameters()`` order."""
    params = [p for p in model.parameters()]
    if len(params) != len(init_params):
        raise ValueError(
            f"dist_from_init: {len(init_params)} initial tensors for {len(params)} parameters"
        )
    return float(
        torch.sqrt(
            sum(
                (p.detach().double() - q.to(p.device).double()).pow(2).sum()
                for p, q in zip(params, init_params, strict=True)
            )
        )
    )


@dataclass
class LogitStats:
    logit_norm: float  # <||z||>
    logit_sum_abs: float  # <|1^T z|>


@torch.no_grad()
def logit_stats(model: nn.Module, inputs) -> LogitStats:
    """Mean logit norm <||z||> and mean |1^T z| over ``inputs`` (Figure 12), in the model's
    current mode; buffers are left untouched."""
    total_norm, total_sum, n = 0.0, 0.0, 0
    with measuring_copy(model, None) as m:
        for x, _ in as_batches(inputs):
            z = m(x)
            total_norm += float(z.norm(dim=-1).sum())
            total_sum += float(z.sum(dim=-1).abs().sum())
            n += z.shape[0]
    return LogitStats(total_norm / n, total_sum / n)
