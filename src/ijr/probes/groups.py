"""The probe groups, each declared once: the registry behind config validation
(:mod:`ijr.probes.config`), dispatch (:class:`ijr.probes.measure.ProbeMeasurer`) and the README's
metric table (``python -m ijr.probes.generate``). Pure torch: no Lightning, no Hydra.

A :class:`ProbeGroup` names a family of probe metrics (docs/design.md contract 2): whether it is
``cheap`` (every probe step, listed under ``probes.cheap``) or ``expensive`` (expensive probe
steps, ``probes.expensive``), the metric names it writes, the outputs beyond metrics it returns
(a :class:`ijr.probes.measure.Measurement` field and the run file the callback writes it to), the
groups whose results it reuses when they are measured at the same probe (``uses``: they run
first and their :class:`GroupResult` is passed in) or needs (``needs``: the config must enable
them), whether it is defined for a one-output (two-class MSE) model, the BatchNorm mode it runs
in, and the function that measures it. Groups run in registry order, which :func:`register`
keeps consistent with ``uses``/``needs``; the order is also the order in which the groups draw
from the probe's ``torch.Generator``, so it must not change for existing groups (new groups go
last unless they feed an existing one).

Adding a probe quantity: write ``def _my_group(ctx, uses) -> GroupResult`` below (the math goes
in :mod:`ijr.curvature`), :func:`register` it with its metrics, list it in a ``conf/probes``
file if a preset should run it, and regenerate the README table
(``python -m ijr.probes.generate``; ``tests/test_probe_groups.py`` checks it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ijr import curvature
from ijr.curvature import gram
from ijr.probes.trajectory import ParameterSketch
from ijr.state_guard import preserved

if TYPE_CHECKING:
    from ijr.probes.config import ProbeConfig

Batch = tuple[torch.Tensor, torch.Tensor]
Kind = Literal["cheap", "expensive"]
# The BatchNorm mode a group runs in: the value of probes.bn_mode, of probes.io_jacobian_bn_mode,
# always eval (per-example quantities), or none (the group handles the model's mode itself).
BnMode = Literal["bn_mode", "io_jacobian_bn_mode", "eval", "none"]


# ------------------------------------------------------------------------------ declarations
@dataclass(frozen=True)
class Metric:
    """One logged name (``<...>`` stands for a part filled in at run time, e.g. a layer name)."""

    name: str
    meaning: str
    multi_output_only: bool = False  # not logged for a one-output model (undefined there)


@dataclass(frozen=True)
class Output:
    """A result beyond metrics: the :class:`~ijr.probes.measure.Measurement` field it fills and
    the file of the run directory the callback writes it to (None: carried state, no file)."""

    field: str
    file: str | None
    meaning: str


@dataclass
class GroupResult:
    """What one group measured: ``probe/...`` metrics and its :class:`Output` values by field."""

    metrics: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeContext:
    """Everything a group's function may read at one probe (see :meth:`ProbeMeasurer.measure`)."""

    model: nn.Module  # the measured model (a float64 copy with probes.dtype=float64)
    loss_fn: Callable
    batches: list[Batch]  # the probe set, cast to the probe dtype and device
    config: ProbeConfig
    lr: float
    generator: torch.Generator  # every random draw of the probe (never the global RNG)
    state: Any  # ijr.probes.measure.ProbeState: theta_0, the warm-start vector
    one_output: bool
    cache: dict  # per-measurer memo across probes (trajectory sketch, X X^T eigenpair)
    rho_b_batches: Sequence[Batch] | None = None
    rho_b_reference: Sequence[Batch] | None = None
    full_batch: bool = False
    evaluate: Callable | None = None
    test_batches: Sequence[Batch] | None = None
    label_entropy: float | None = None  # H((1 - a) y + a/C) of cross-entropy with smoothing a

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def cast(self, batches: Sequence[Batch]) -> list[Batch]:
        return cast_batches(batches, self.dtype, self.device)


MeasureFn = Callable[[ProbeContext, Mapping[str, "GroupResult | None"]], GroupResult]


@dataclass(frozen=True)
class ProbeGroup:
    """One probe group (see the module docstring)."""

    name: str
    kind: Kind
    summary: str  # one line: what the group measures (README table, error messages)
    metrics: tuple[Metric, ...]
    measure: MeasureFn
    uses: tuple[str, ...] = ()  # groups whose results it reuses when measured at the same probe
    needs: tuple[str, ...] = ()  # groups the config must enable with it
    outputs: tuple[Output, ...] = ()
    multi_output_only: bool = False  # skipped for a one-output model (its quantities need C > 1)
    one_output_only: str | None = None  # why it needs a one-output model (None: any model)
    bn_mode: BnMode = "bn_mode"
    default: bool = False  # in ProbeConfig's default probes.cheap

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)


GROUPS: dict[str, ProbeGroup] = {}


def register(group: ProbeGroup) -> ProbeGroup:
    """Add ``group`` to the registry; the groups it uses or needs must be registered before it
    (so registry order is a valid order of evaluation)."""
    if group.name in GROUPS:
        raise ValueError(f"probe group {group.name!r} is registered twice")
    if group.kind not in ("cheap", "expensive"):
        raise ValueError(f"probe group {group.name!r}: kind must be cheap or expensive")
    for other in (*group.uses, *group.needs):
        if other not in GROUPS:
            raise ValueError(
                f"probe group {group.name!r} uses {other!r}, which is not registered before it"
            )
    taken = {m: g.name for g in GROUPS.values() for m in g.metric_names}
    for name in group.metric_names:
        if name in taken:
            raise ValueError(f"metric {name} of group {group.name!r} is {taken[name]!r}'s")
    GROUPS[group.name] = group
    return group


def names(kind: Kind) -> tuple[str, ...]:
    """The registered groups of one kind, in registry order."""
    return tuple(g.name for g in GROUPS.values() if g.kind == kind)


def default_cheap() -> tuple[str, ...]:
    return tuple(g.name for g in GROUPS.values() if g.kind == "cheap" and g.default)


def enabled(config: ProbeConfig, *, expensive: bool, one_output: bool) -> list[ProbeGroup]:
    """The groups to measure at a probe (``expensive``: an expensive probe step), in order."""
    wanted = set(config.cheap) | (set(config.expensive) if expensive else set())
    return [
        g for g in GROUPS.values() if g.name in wanted and not (one_output and g.multi_output_only)
    ]


def undefined_for_one_output() -> tuple[str, ...]:
    """Metric names never logged for a one-output (two-class MSE) model."""
    return tuple(
        m.name
        for g in GROUPS.values()
        for m in g.metrics
        if g.multi_output_only or m.multi_output_only
    )


def metric_pattern(name: str) -> re.Pattern:
    """A declared name as a regular expression (``<...>`` matches any non-empty text)."""
    parts = re.split(r"<[^>]+>", name)
    return re.compile(".+".join(re.escape(p) for p in parts) + r"\Z")


def group_of_metric(name: str) -> str | None:
    """The group that writes the logged metric ``name`` (None: not a probe-group metric)."""
    for g in GROUPS.values():
        if any(metric_pattern(m).match(name) for m in g.metric_names):
            return g.name
    return None


# ------------------------------------------------------------------------------ helpers
def cast_batches(batches: Sequence[Batch], dtype: torch.dtype, device: torch.device) -> list:
    out = []
    for x, y in batches:
        x = x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
        y = y.to(device=device, dtype=dtype if y.is_floating_point() else y.dtype)
        out.append((x, y))
    return out


@contextmanager
def measurement_mode(model: nn.Module, bn_mode: str) -> Iterator[nn.Module]:
    """Eval mode everywhere, BatchNorm layers in train mode if ``bn_mode == "train"``; on exit
    every module's flag and every buffer are restored exactly (:func:`ijr.state_guard.preserved`)."""
    if bn_mode not in ("train", "eval"):
        raise ValueError(f"bn_mode must be 'train' or 'eval', got {bn_mode!r}")
    with preserved(model, buffers=True, modes=True):
        model.eval()
        if bn_mode == "train":
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.train()
        yield model


@torch.no_grad()
def probe_logits(model: nn.Module, batches: Sequence[Batch]) -> torch.Tensor:
    """Logits of every probe example (concatenated over chunks), in the current mode."""
    return torch.cat([model(x) for x, _ in batches])


def targets(batches: Sequence[Batch]) -> torch.Tensor:
    return torch.cat([y for _, y in batches])


def true_class_probability(p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """p_y per row: ``labels`` are class indices or one-hot / soft target rows (argmax)."""
    if labels.dtype in (torch.int64, torch.int32):
        index = labels.long().reshape(-1, 1)
    else:
        index = labels.argmax(dim=-1, keepdim=True)
    return p.gather(1, index).reshape(-1)


def quantiles(values: torch.Tensor) -> tuple[float, float]:
    q = torch.quantile(
        values.detach().to(torch.float64),
        torch.tensor([0.25, 0.75], dtype=torch.float64, device=values.device),
    )
    return float(q[0]), float(q[1])


def first_examples(batches: Sequence[Batch], k: int) -> list[Batch]:
    """The first ``k`` examples of the probe set (the tracked examples), as chunks."""
    out, left = [], k
    for x, y in batches:
        if left <= 0:
            break
        out.append((x[:left], y[:left]))
        left -= x[:left].shape[0]
    return out


# ------------------------------------------------------------------------------ cheap groups
def _weights(ctx: ProbeContext, uses) -> GroupResult:
    model, m = ctx.model, {}
    m["probe/weight_norm"] = float(curvature.weight_norm(model))
    for name, value in curvature.layer_weight_norms(model).items():
        m[f"probe/layer_norm/{name}"] = float(value)
    m["probe/output_layer_norm"] = float(curvature.output_layer_norm(model))
    if ctx.state.theta0 is not None:
        theta0 = [t.to(device=ctx.device, dtype=ctx.dtype) for t in ctx.state.theta0]
        m["probe/dist_from_init"] = float(curvature.dist_from_init(model, theta0))
    return GroupResult(m)


def _trajectory(ctx: ProbeContext, uses) -> GroupResult:
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    if "sketch" not in ctx.cache:
        count = sum(p.numel() for p in params)
        ctx.cache["sketch"] = ParameterSketch(count, ctx.config.trajectory_dim, ctx.config.seed)
    return GroupResult(outputs={"sketch": ctx.cache["sketch"](params)})


def _logits(ctx: ProbeContext, uses) -> GroupResult:
    stats = curvature.logit_stats(ctx.model, ctx.batches)
    return GroupResult(
        {
            "probe/logit_norm": float(stats.logit_norm),
            "probe/logit_sum_abs": float(stats.logit_sum_abs),
        }
    )


def _impurity(ctx: ProbeContext, uses) -> GroupResult:
    p = torch.softmax(probe_logits(ctx.model, ctx.batches).to(torch.float64), dim=-1)
    lam = curvature.impurity(p)
    lower, upper = curvature.gini_bounds(p)
    m = {"probe/impurity_mean": float(lam.mean())}
    m["probe/impurity_q25"], m["probe/impurity_q75"] = quantiles(lam)
    m["probe/gini_lower_mean"] = float(lower.mean())
    m["probe/gini_upper_mean"] = float(upper.mean())
    out = GroupResult(m)
    k = min(ctx.config.track_examples, p.shape[0])
    if k:
        p_true = true_class_probability(p[:k], targets(ctx.batches)[:k])
        top1 = p[:k].max(dim=-1).values.tolist()
        out.outputs["examples"] = (top1, lam[:k].tolist(), p_true.tolist())
    return out


def _jacobian(ctx: ProbeContext, uses) -> GroupResult:
    cfg = ctx.config.jacobian
    norms = curvature.jacobian_norms(
        ctx.model,
        ctx.batches,
        method=cfg.method,
        tol=cfg.tol,
        max_iter=cfg.max_iter,
        generator=ctx.generator,
    )
    m = {
        "probe/jacobian_norm_sq": float(norms.spectral) ** 2,
        "probe/jacobian_fro_sq": float(norms.frobenius) ** 2,
    }
    if not ctx.one_output:
        m["probe/jacobian_ones_sq"] = float(norms.ones) ** 2
    return GroupResult(m)


# -------------------------------------------------------------------------- expensive groups
def _sharpness(ctx: ProbeContext, uses) -> GroupResult:
    cfg = ctx.config.sharpness
    res = curvature.hessian_top_eigenvalue(
        ctx.model,
        ctx.loss_fn,
        ctx.batches,
        method=cfg.method,
        tol=cfg.tol,
        max_iter=cfg.max_iter,
        init=ctx.state.warm_vector if cfg.warm_start else None,
        generator=ctx.generator,
    )
    m = {
        "probe/sharpness": float(res.value),
        "probe/sharpness_products": float(res.n_products),
        "probe/sharpness_residual": float(res.residual),
        "probe/sharpness_converged": float(bool(res.converged)),
    }
    jacobian = uses["jacobian"]
    if jacobian is not None:
        norm_sq = jacobian.metrics["probe/jacobian_norm_sq"]
        m["probe/lambda_hat"] = float(curvature.lambda_hat(m["probe/sharpness"], norm_sq))
    return GroupResult(m, {"warm_vector": res.vector.detach()})


def _gauss_newton(ctx: ProbeContext, uses) -> GroupResult:
    cfg = ctx.config.sharpness
    res = curvature.gauss_newton_top_eigenvalue(
        ctx.model,
        ctx.loss_fn,
        ctx.batches,
        method=cfg.method,
        tol=cfg.tol,
        max_iter=cfg.max_iter,
        generator=ctx.generator,
    )
    return GroupResult({"probe/sharpness_gn": float(res.value)})


def _rho_b(ctx: ProbeContext, uses) -> GroupResult:
    if ctx.full_batch:
        rho = 1.0  # B = N: the mini-batch gradient is the full gradient (rho_B = 1 exactly)
    else:
        minibatches = ctx.cast(ctx.rho_b_batches or [])
        reference = ctx.batches if ctx.rho_b_reference is None else ctx.cast(ctx.rho_b_reference)
        rho = float(curvature.rho_b(ctx.model, ctx.loss_fn, reference, minibatches))
    return GroupResult(
        {"probe/rho_b": rho, "probe/sgd_threshold": float(curvature.sgd_threshold(rho, ctx.lr))}
    )


def _gram(ctx: ProbeContext, uses) -> GroupResult:
    cfg = ctx.config.gram
    spec = gram.gram_spectrum(
        ctx.model,
        ctx.batches,
        method=cfg.method,
        tol=cfg.tol,
        max_iter=cfg.max_iter,
        second=cfg.second,
        output_layer=cfg.output_layer,
        generator=ctx.generator,
    )
    m = {"probe/gram_max": spec.top}
    if spec.second is not None:
        m["probe/gram_second"] = spec.second
    if spec.output_top is not None:
        m["probe/gram_output_max"] = spec.output_top
    m["probe/gram_loss"] = spec.loss
    m["probe/gram_rest_loss"] = spec.rest_loss
    m["probe/gram_d_v1"] = spec.d_v1
    m["probe/gram_d_dot_f"] = spec.d_dot_f
    m["probe/gram_products"] = float(spec.n_products)
    if cfg.linear_theory:
        inputs = torch.cat([x for x, _ in ctx.batches])
        if "input_gram" not in ctx.cache:  # the probe set is fixed: X X^T's eigenpair once
            ctx.cache["input_gram"] = gram.input_gram_top(inputs)
        theory = gram.two_layer_linear_theory(ctx.model, inputs, spec, ctx.cache["input_gram"])
        m["probe/gram_theory_ratio"] = theory["theory_ratio"]
        m["probe/gram_v1_input_alignment"] = theory["v1_alignment"]
        m["probe/input_gram_gap"] = theory["input_gap"]
    return GroupResult(m)


def _subspace(ctx: ProbeContext, uses) -> GroupResult:
    """Two modes: the subspace statistics in probes.bn_mode, then (after that block restored the
    buffers) the per-example cosines of the tracked examples with BatchNorm in eval mode."""
    with measurement_mode(ctx.model, ctx.config.bn_mode):
        out = _subspace_statistics(ctx, uses["sharpness"])
    if ctx.config.track_examples:
        tracked = first_examples(ctx.batches, ctx.config.track_examples)
        with measurement_mode(ctx.model, "eval"):  # per-example gradients: BN running stats
            cos = curvature.gradient_margin_cosine(ctx.model, ctx.loss_fn, tracked)
        out.metrics["probe/grad_margin_cos"] = float(cos.mean())
    return out


def _subspace_statistics(ctx: ProbeContext, sharpness: GroupResult | None) -> GroupResult:
    model, batches = ctx.model, ctx.batches
    r = None if sharpness is None else sharpness.outputs["warm_vector"]
    grad = curvature.mean_gradient(model, ctx.loss_fn, batches)
    dirs = curvature.margin_directions(model, batches)
    m = {
        "probe/margin_classes_present": float(int((dirs.counts > 0).sum())),
        "probe/random_direction_cos": curvature.expected_random_cosine(grad.numel()),
    }
    has_grad = float(grad.norm()) > 0
    if r is not None and has_grad:
        m["probe/grad_hessian_cos"] = abs(curvature.cosine(grad, r))
    if dirs.all_classes_present:
        if has_grad:
            m["probe/grad_subspace_alignment"] = curvature.subspace_alignment(grad, dirs.means)
        if r is not None:
            m["probe/hessian_subspace_alignment"] = curvature.subspace_alignment(r, dirs.means)
    p = torch.softmax(probe_logits(model, batches).to(torch.float64), dim=-1)
    return GroupResult(m, {"eigvec_heatmap": curvature.logit_eigvec_heatmap(p)})


def margin_arrays(model: nn.Module, batches: Sequence[Batch], track: int) -> dict:
    """The arrays of ``margins/step_<t>.npz`` (see :mod:`ijr.probes.examples`)."""
    stats = curvature.margin_statistics(model, [x for x, _ in batches])
    arrays = {
        "cos_to_means": stats.cos_to_means,
        "mean_gram": stats.mean_gram,
        "counts": stats.counts,
        "mrl": stats.mrl,
        "top1": stats.top1,
        "top2": stats.top2,
        "labels": targets(batches).cpu(),
    }
    if track:
        ratios, cos_sq = curvature.eigvec_jacobian_statistics(
            model, [x for x, _ in first_examples(batches, track)]
        )
        arrays.update(jq_ratios=ratios, jq_cos_sq=cos_sq)
    return arrays


def _margins(ctx: ProbeContext, uses) -> GroupResult:
    arrays = margin_arrays(ctx.model, ctx.batches, ctx.config.track_examples)
    mrl, m = arrays["mrl"], {}
    if (~torch.isnan(mrl)).any():
        m["probe/mrl_mean"] = float(mrl[~torch.isnan(mrl)].mean())
    return GroupResult(m, {"margins": arrays})


def _io_jacobian(ctx: ProbeContext, uses) -> GroupResult:
    if ctx.one_output:  # paper 002 App. C.3: the raw network's |f'(x)| (softmax of one logit is 1)
        norms = curvature.io_jacobian_norms(ctx.model, ctx.batches, softmax=False)
        return GroupResult({"probe/io_jacobian_raw_max": float(norms.max())})
    return GroupResult(
        {"probe/io_jacobian_max": float(curvature.io_jacobian_max(ctx.model, ctx.batches))}
    )


def _gen_gap(ctx: ProbeContext, uses) -> GroupResult:
    if ctx.evaluate is None or ctx.test_batches is None:
        raise ValueError("the gen_gap probe needs an evaluate function and the test batches")
    train_loss, train_acc = ctx.evaluate(ctx.batches)
    test_loss, test_acc = ctx.evaluate(ctx.test_batches)
    metrics = {
        "probe/gen_gap": float(train_acc - test_acc),
        "probe/gen_gap_loss": float(test_loss - train_loss),
    }
    if ctx.label_entropy is not None:  # paper 002 Fig. 1: the loss minus its minimum
        metrics["probe/train_loss_minus_entropy"] = float(train_loss - ctx.label_entropy)
    return GroupResult(metrics)


# ------------------------------------------------------------------------------ the registry
# Registry order is evaluation order (and generator order): do not reorder existing groups.
register(
    ProbeGroup(
        "weights",
        "cheap",
        "weight norms and the distance from initialisation (App. F; paper 004's ‖A‖)",
        (
            Metric("probe/weight_norm", "‖θ‖ over every weight tensor"),
            Metric("probe/layer_norm/<layer>", "‖θ‖ of one weight tensor"),
            Metric("probe/output_layer_norm", "‖A‖, the last layer's weight (paper 004)"),
            Metric("probe/dist_from_init", "‖θ − θ⁽⁰⁾‖"),
        ),
        _weights,
        default=True,
    )
)
register(
    ProbeGroup(
        "trajectory",
        "cheap",
        "a count sketch S θ ∈ ℝᴰ of the parameters at every probe (Figures 3, 27)",
        (),
        _trajectory,
        outputs=(Output("sketch", "trajectory.bin", "S θ_t per probe step"),),
    )
)
register(
    ProbeGroup(
        "logits",
        "cheap",
        "logit statistics (App. F, Figure 12)",
        (
            Metric("probe/logit_norm", "⟨‖z‖⟩ over the probe set"),
            Metric("probe/logit_sum_abs", "⟨\\|1ᵀz\\|/√C⟩ over the probe set"),
        ),
        _logits,
        default=True,
    )
)
register(
    ProbeGroup(
        "impurity",
        "cheap",
        "the impurity λ⁽¹⁾ of M = diag(p) − ppᵀ and the Gini bounds (Theorem 4.1)",
        (
            Metric("probe/impurity_mean", "⟨λ⁽¹⁾⟩ over the probe set (Theorem 4.1)"),
            Metric("probe/impurity_q25", "25 % quantile of λ⁽¹⁾"),
            Metric("probe/impurity_q75", "75 % quantile of λ⁽¹⁾"),
            Metric("probe/gini_lower_mean", "⟨p₍₁₎(1 − p₍₁₎)⟩ = ⟨½Gini(p₍₁₎)⟩ (Theorem 4.1 (d))"),
            Metric("probe/gini_upper_mean", "⟨min{p₍₁₎, Gini(p₍₁₎)}⟩ (Theorem 4.1 (c))"),
        ),
        _impurity,
        outputs=(
            Output(
                "examples",
                "probe_examples.csv",
                "p₍₁₎, λ⁽¹⁾ and p_y of the first `probes.track_examples` examples (Figure 1 top)",
            ),
        ),
        multi_output_only=True,
        default=True,
    )
)
register(
    ProbeGroup(
        "jacobian",
        "cheap",
        "norms of the mean logit-weight Jacobian ⟨J⟩ (eq. 8, Algorithm 2, App. G-I)",
        (
            Metric("probe/jacobian_norm_sq", "‖⟨J⟩‖²"),
            Metric("probe/jacobian_fro_sq", "‖⟨J⟩‖_F²"),
            Metric("probe/jacobian_ones_sq", "‖⟨J⟩1/√C‖²", multi_output_only=True),
        ),
        _jacobian,
        default=True,
    )
)
register(
    ProbeGroup(
        "sharpness",
        "expensive",
        "the sharpness ‖H‖_σ and λ̂* (Sections 4-5)",
        (
            Metric(
                "probe/sharpness",
                "top eigenvalue of the loss Hessian, largest *algebraic* (Lanczos, warm-started)",
            ),
            Metric("probe/sharpness_products", "Hessian-vector products the solver used"),
            Metric("probe/sharpness_residual", "‖Hv − λv‖ of the returned pair"),
            Metric("probe/sharpness_converged", "1 if the solver met `probes.sharpness.tol`"),
            Metric(
                "probe/lambda_hat",
                "sharpness / ‖⟨J⟩‖² (λ̂*, Section 5.1); with the `jacobian` group",
            ),
        ),
        _sharpness,
        uses=("jacobian",),
        outputs=(Output("warm_vector", None, "the top eigenvector (next probe's warm start)"),),
    )
)
register(
    ProbeGroup(
        "gauss_newton",
        "expensive",
        "the Gauss-Newton top eigenvalue ‖G‖_σ (eq. 9)",
        (Metric("probe/sharpness_gn", "top eigenvalue of the Gauss–Newton matrix G = ⟨J M Jᵀ⟩"),),
        _gauss_newton,
    )
)
register(
    ProbeGroup(
        "rho_b",
        "expensive",
        "ρ_B and the SGD threshold (Proposition 5.2)",
        (
            Metric("probe/rho_b", "ρ_B = ‖⟨g⟩‖² / E‖⟨g⟩_B‖² (Proposition 5.2; 1 for full batch)"),
            Metric("probe/sgd_threshold", "2ρ_B/η"),
        ),
        _rho_b,
    )
)
register(
    ProbeGroup(
        "gram",
        "expensive",
        "the Gram matrix M = (2/n) ∂F/∂θ ∂F/∂θᵀ of a scalar model (paper 004, Sections 2-4)",
        (
            Metric("probe/gram_max", "λ_max(M), paper 004's sharpness Λ"),
            Metric("probe/gram_second", "λ₂(M) (`probes.gram.second`)"),
            Metric("probe/gram_output_max", "λ_max(M_A), the output layer only"),
            Metric("probe/gram_loss", "‖D‖²/n"),
            Metric("probe/gram_rest_loss", "‖R‖²/n, R = (I − v₁v₁ᵀ)D"),
            Metric("probe/gram_d_v1", "\\|Dᵀv₁\\|"),
            Metric("probe/gram_d_dot_f", "DᵀF"),
            Metric("probe/gram_products", "Gram-vector products used"),
            Metric("probe/gram_theory_ratio", "Theorem 1's ratio (`probes.gram.linear_theory`)"),
            Metric("probe/gram_v1_input_alignment", "alignment of v₁ with X's top direction"),
            Metric("probe/input_gram_gap", "λ₁ − λ₂ of X Xᵀ (Assumption 4.1)"),
        ),
        _gram,
        one_output_only="paper 004's Gram matrix of a scalar model",
    )
)
register(
    ProbeGroup(
        "subspace",
        "expensive",
        "gradient descent in the top Hessian subspace (App. D, Figures 8, 10)",
        (
            Metric(
                "probe/margin_classes_present",
                "how many classes are some probe example's most likely class "
                "(S is defined at C of C)",
            ),
            Metric(
                "probe/random_direction_cos",
                "E\\|cos\\| of two random directions in ℝᵐ, the reference level of Figure 10 (left)",
            ),
            Metric(
                "probe/grad_hessian_cos",
                "\\|cos(g^D, r)\\|: the mean gradient over the probe set against the Hessian's "
                "top eigenvector r (Figure 10, left; with the `sharpness` group)",
            ),
            Metric(
                "probe/grad_subspace_alignment",
                "A_S(g^D) of eq. (48), S = span{m̄ⁱ}; once every class is some probe example's "
                "most likely class (Figure 10, right)",
            ),
            Metric("probe/hessian_subspace_alignment", "A_S(r) of eq. (48), as above"),
            Metric(
                "probe/grad_margin_cos",
                "mean over the tracked examples of cos(−g(x), J(x)q⁽¹⁾(x)) (Figure 10, middle)",
            ),
        ),
        _subspace,
        uses=("sharpness",),
        outputs=(
            Output(
                "eigvec_heatmap",
                "logit_eigvecs.csv",
                "the rank-ordered ⟨QΛ^{1/2}⟩ of the probe set (Figures 8, 30)",
            ),
        ),
        multi_output_only=True,
        bn_mode="none",
    )
)
register(
    ProbeGroup(
        "margins",
        "expensive",
        "per-example directions m = √λ⁽¹⁾ J q⁽¹⁾ (Figures 9, 11, 31-33)",
        (
            Metric(
                "probe/mrl_mean",
                "mean over classes of the mean resultant length of m/‖m‖ in D_i (Figure 33)",
            ),
        ),
        _margins,
        outputs=(
            Output(
                "margins",
                "margins/step_<t>.npz",
                "per-example cosines of m with the class means, the MRL per class, ‖Jq⁽ⁱ⁾‖ and "
                "cos²(Jq⁽ⁱ⁾, Jq⁽ʲ⁾) of the tracked examples",
            ),
        ),
        multi_output_only=True,
        bn_mode="eval",
    )
)
register(
    ProbeGroup(
        "io_jacobian",
        "expensive",
        "the input-output Jacobian of the softmaxed model (paper 002)",
        (
            Metric(
                "probe/io_jacobian_max",
                "spectral norm of d softmax(f(x))/dx, max over the probe set",
                multi_output_only=True,
            ),
            Metric(
                "probe/io_jacobian_raw_max",
                "one-output models: max ‖df(x)/dx‖ over the probe set (paper 002 App. C.3)",
            ),
        ),
        _io_jacobian,
        bn_mode="io_jacobian_bn_mode",
    )
)
register(
    ProbeGroup(
        "gen_gap",
        "expensive",
        "the generalisation gap, both in eval mode",
        (
            Metric("probe/gen_gap", "accuracy on the probe set (training data) − test accuracy"),
            Metric("probe/gen_gap_loss", "test loss − probe-set loss"),
            Metric(
                "probe/train_loss_minus_entropy",
                "cross-entropy: probe-set loss − H(smoothed label), its minimum (paper 002 Fig. 1)",
            ),
        ),
        _gen_gap,
        bn_mode="none",
    )
)

# Logged at every probe, whatever groups are enabled.
EVERY_PROBE = (Metric("probe/stability_threshold", "2/η (the GD stability threshold)"),)


# ------------------------------------------------------------------------------ README block
BLOCK = "probe-metrics"


def _cell(text: str) -> str:
    """Markdown table cell: pipes escaped (an already escaped one is kept), one line."""
    return re.sub(r"(?<!\\)\|", r"\\|", text).replace("\n", " ")


def metrics_block() -> str:
    """The README's table of probe metrics and files, from the registry."""
    lines = ["| name | group | meaning |", "|---|---|---|"]
    for metric in EVERY_PROBE:
        lines.append(f"| `{metric.name}` | (every probe) | {_cell(metric.meaning)} |")
    for g in GROUPS.values():
        for metric in g.metrics:
            note = " (C > 1 only)" if metric.multi_output_only and not g.multi_output_only else ""
            lines.append(f"| `{metric.name}` | `{g.name}` | {_cell(metric.meaning)}{note} |")
    lines += ["", "| group | kind | measures | files | one-output model |", "|---|---|---|---|---|"]
    for g in GROUPS.values():
        files = ", ".join(f"`{o.file}` ({o.meaning})" for o in g.outputs if o.file) or "—"
        one = "skipped" if g.multi_output_only else ("only" if g.one_output_only else "yes")
        lines.append(f"| `{g.name}` | {g.kind} | {_cell(g.summary)} | {files} | {one} |")
    return "\n".join(lines)


def block_pattern() -> re.Pattern:
    return re.compile(
        rf"(<!-- generated:{BLOCK} -->\n)(.*?)(<!-- /generated:{BLOCK} -->)", re.DOTALL
    )


def render(text: str) -> str:
    """``text`` with its ``<!-- generated:probe-metrics -->`` block rewritten."""
    body = metrics_block() + "\n"
    return block_pattern().sub(lambda m: m.group(1) + body + m.group(3), text)


__all__ = [
    "EVERY_PROBE",
    "GROUPS",
    "GroupResult",
    "Metric",
    "Output",
    "ProbeContext",
    "ProbeGroup",
    "default_cheap",
    "enabled",
    "group_of_metric",
    "measurement_mode",
    "metrics_block",
    "names",
    "probe_logits",
    "register",
    "undefined_for_one_output",
]
