"""One probe measurement at the current parameters: runs every enabled probe group of the
registry (:mod:`ijr.probes.groups`, where each group, its metric names and its function are
declared) and collects the results (docs/design.md contract 2). No Lightning here: the callback
(:mod:`ijr.probes.callback`) decides *when*, this module *what*, ``ijr.curvature`` does the math.

Dispatch: the enabled groups run in registry order; a group that reuses another's result (the
sharpness group's lambda_hat needs ||<J>||^2 from ``jacobian``; ``subspace`` reuses the
sharpness eigenvector) receives that group's :class:`~ijr.probes.groups.GroupResult` of the same
probe, or None when it was not measured.

Non-perturbation: each group runs under :func:`~ijr.probes.groups.measurement_mode` (eval mode
with, for ``bn_mode="train"``, only the BatchNorm layers in train mode; dropout is always off),
which restores every module's train/eval flag and every buffer (BN running statistics,
``num_batches_tracked``) afterwards; ``ijr.curvature`` leaves parameters, ``.grad`` and the
global RNG alone and every random draw uses the caller's ``torch.Generator``. With
``dtype=float64`` the measurement runs on a float64 copy of the model.

``probe/stability_threshold`` = 2 / eta is logged at every probe. For a one-output model (the
two-class MSE task of paper 004) the groups and metrics that need C > 1 classes are skipped; see
:func:`undefined_for_one_output`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ijr import curvature
from ijr.probes import groups
from ijr.probes.config import ProbeConfig
from ijr.probes.groups import (
    GroupResult,
    ProbeContext,
    cast_batches,
    measurement_mode,
    probe_logits,
    true_class_probability,
    undefined_for_one_output,
)

Batch = tuple[torch.Tensor, torch.Tensor]
DTYPES = {"float32": torch.float32, "float64": torch.float64}
UNDEFINED_FOR_ONE_OUTPUT = undefined_for_one_output()


@dataclass
class ProbeState:
    """What one measurement carries to the next (part of the callback's checkpoint state)."""

    theta0: list[torch.Tensor] | None = None
    warm_vector: torch.Tensor | None = None


@dataclass
class Measurement:
    """The metrics of one probe and the groups' outputs (:class:`ijr.probes.groups.Output`)."""

    metrics: dict[str, float] = field(default_factory=dict)
    warm_vector: torch.Tensor | None = None
    examples: tuple[list[float], list[float], list[float]] | None = None  # p_top1, impurity, p_true
    eigvec_heatmap: torch.Tensor | None = None  # (C, C) rank-ordered <Q Lambda^{1/2}> (Figure 8)
    sketch: torch.Tensor | None = None  # count sketch S theta of the parameters (Figures 3, 27)
    margins: dict | None = None  # arrays of margins/step_<t>.npz (Figures 9, 11, 31-33)


class ProbeMeasurer:
    """Measure the enabled probe groups of ``config`` on ``batches`` (the probe set)."""

    def __init__(self, config: ProbeConfig, *, num_outputs: int) -> None:
        self.config = config
        self.num_outputs = int(num_outputs)
        if config.enabled and self.num_outputs != 1:
            for name in config.expensive:
                reason = groups.GROUPS[name].one_output_only
                if reason:
                    raise ValueError(
                        f"probes.expensive lists {name} ({reason}) but the model has {self.num_outputs} outputs; use data.task=two_class_mse"
                    )
        self.dtype = DTYPES[config.dtype]
        self._cache: dict = {}  # the groups' memo across probes (ProbeContext.cache)

    # -------------------------------------------------------------- model
    def model_for_measurement(self, model: nn.Module) -> nn.Module:
        """The training model itself, or (``dtype=float64``) a float64 copy of it."""
        param = next(model.parameters())
        if param.dtype == self.dtype:
            return model
        clone = copy.deepcopy(model).to(self.dtype)
        for p in clone.parameters():
            p.grad = None
        return clone

    # ---------------------------------------------------------- measuring
    def measure(
        self,
        model: nn.Module,
        loss_fn,
        batches: Sequence[Batch],
        *,
        lr: float,
        expensive: bool,
        state: ProbeState,
        generator: torch.Generator,
        rho_b_batches: Sequence[Batch] | None = None,
        rho_b_reference: Sequence[Batch] | None = None,
        full_batch: bool = False,
        evaluate=None,
        test_batches: Sequence[Batch] | None = None,
        label_entropy: float | None = None,
    ) -> Measurement:
        """The groups due at this probe (the cheap ones; with ``expensive`` also the expensive
        ones), in registry order. ``rho_b_batches`` / ``rho_b_reference`` / ``full_batch`` feed
        the ``rho_b`` group, ``evaluate`` (batches -> (loss, accuracy)) and ``test_batches`` the
        ``gen_gap`` group, ``label_entropy`` (the entropy of the smoothed label, cross-entropy
        only) its ``train_loss_minus_entropy``."""
        measured = self.model_for_measurement(model)
        device = next(measured.parameters()).device
        ctx = ProbeContext(
            model=measured,
            loss_fn=loss_fn,
            batches=cast_batches(batches, self.dtype, device),
            config=self.config,
            lr=lr,
            generator=generator,
            state=state,
            one_output=self.num_outputs == 1,
            cache=self._cache,
            rho_b_batches=rho_b_batches,
            rho_b_reference=rho_b_reference,
            full_batch=full_batch,
            evaluate=evaluate,
            test_batches=test_batches,
            label_entropy=label_entropy,
        )
        out = Measurement()
        out.metrics["probe/stability_threshold"] = curvature.sgd_threshold(1.0, lr)
        results: dict[str, GroupResult] = {}
        for group in groups.enabled(self.config, expensive=expensive, one_output=ctx.one_output):
            result = self._run(group, ctx, {name: results.get(name) for name in group.uses})
            results[group.name] = result
            out.metrics.update(result.metrics)
            for name, value in result.outputs.items():
                setattr(out, name, value)
        return out

    def _run(self, group: groups.ProbeGroup, ctx: ProbeContext, uses: dict) -> GroupResult:
        """One group in its BatchNorm mode (``none``: the group sets modes itself)."""
        if group.bn_mode == "none":
            return group.measure(ctx, uses)
        mode = "eval" if group.bn_mode == "eval" else getattr(self.config, group.bn_mode)
        with measurement_mode(ctx.model, mode):
            return group.measure(ctx, uses)


__all__ = [
    "Measurement",
    "ProbeMeasurer",
    "ProbeState",
    "measurement_mode",
    "probe_logits",
    "true_class_probability",
    "undefined_for_one_output",
]
