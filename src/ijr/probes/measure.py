"""One probe measurement at the current parameters: calls :mod:`ijr.curvature` for every enabled
metric group and names the results (docs/design.md contract 2). No Lightning here: the callback
(:mod:`ijr.probes.callback`) decides *when*, this module decides *what*, ``ijr.curvature`` does
the math.

Non-perturbation: :func:`measurement_mode` puts the model in eval mode with (``bn_mode="train"``)
only its BatchNorm layers in train mode — dropout is always off while measuring — and restores
every module's train/eval flag and every buffer (BN running statistics, ``num_batches_tracked``)
afterwards; ``ijr.curvature`` leaves parameters, ``.grad`` and the global RNG alone and every
random draw here uses the caller's ``torch.Generator``. With ``dtype=float64`` the measurement
runs on a float64 copy of the model, so the training model is not even read-modified.

Metric groups and what they log (``probe/`` prefix omitted):

* ``weights``: ``weight_norm`` ||theta||, ``layer_norm/<name>`` per weight tensor,
  ``output_layer_norm``, ``dist_from_init`` ||theta_t - theta_0||;
* ``margins`` (Figures 9, 11, 31-33): ``mrl_mean``, the mean over classes of the mean
  resultant length of m / ||m|| within D_i; the per-example directional data go to
  ``margins/step_<t>.npz`` (per-example quantities: BatchNorm in eval mode);
* ``trajectory`` (not a metric): a count sketch S theta in R^D of the parameters for
  ``trajectory.bin`` (Figures 3, 27; :mod:`ijr.probes.trajectory`);
* ``logits``: ``logit_norm`` <||z||>, ``logit_sum_abs`` <|1^T z / sqrt(C)|> (App. F, Figure 12);
* ``impurity``: ``impurity_mean``, ``impurity_q25``, ``impurity_q75`` (lambda^(1) of
  M = diag(p) - p p^T over the probe set, Theorem 4.1), ``gini_lower_mean`` <p_(1)(1 - p_(1))>
  and ``gini_upper_mean`` <min{p_(1), 2 p_(1)(1 - p_(1))}> (Theorem 4.1 (c)-(d));
* ``jacobian``: ``jacobian_norm_sq`` ||<J>||^2, ``jacobian_fro_sq`` ||<J>||_F^2,
  ``jacobian_ones_sq`` ||<J> 1/sqrt(C)||^2;
* ``sharpness``: ``sharpness`` (largest algebraic Hessian eigenvalue, warm-started),
  ``lambda_hat`` = sharpness / ||<J>||^2, plus solver diagnostics ``sharpness_products``,
  ``sharpness_residual``, ``sharpness_converged``;
* ``gauss_newton``: ``sharpness_gn`` (top eigenvalue of G = <J M J^T>);
* ``rho_b``: ``rho_b`` and ``sgd_threshold`` = 2 rho_B / eta (Proposition 5.2); <g> is the mean
  gradient over ``rho_b_reference`` (the set the mini-batches ``rho_b_batches`` are drawn from;
  default the probe set);
* ``io_jacobian``: ``io_jacobian_max`` — max over the probe set of the spectral norm of the
  input-output Jacobian d softmax(f(x)) / dx;
* ``gen_gap``: ``gen_gap`` = accuracy on the probe set (training data) - accuracy on the test
  split, ``gen_gap_loss`` = test loss - probe-set loss, both with the model in eval mode;
  with cross-entropy also ``train_loss_minus_entropy`` = probe-set loss - H(smoothed label)
  (paper 002, Fig. 1: the loss's minimum under label smoothing is that entropy); for a
  one-output model ``io_jacobian`` logs ``io_jacobian_raw_max`` = max ||d f(x) / dx|| instead
  (paper 002, App. C.3's regression networks);
* ``subspace`` (Appendix D, Figure 10): with g^D the mean gradient over the probe set, r the
  Hessian's top eigenvector (from ``sharpness`` at the same probe) and S = span{m_bar^i} the
  class means of m = sqrt(lambda^(1)) J q^(1) over the probe examples whose most likely class is
  i: ``grad_hessian_cos`` |cos(g^D, r)| (r's sign is arbitrary), ``grad_subspace_alignment``
  A_S(g^D) and ``hessian_subspace_alignment`` A_S(r) (eq. 48; logged only once every class is
  some example's most likely one, as the paper defines S), ``margin_classes_present`` (how many
  D_i are non-empty), ``random_direction_cos`` (E|cos| of two random directions in R^m, the
  reference level of Figure 10, left), and ``grad_margin_cos`` the mean of cos(-g(x), J(x) q^(1)(x)) over the
  ``track_examples`` tracked examples (per-example quantities: BatchNorm in eval mode); the
  rank-ordered <Q Lambda^{1/2}> of the probe set (Figure 8) goes to ``logit_eigvecs.csv``.

* ``gram`` (paper 004, Sections 2-4, Figure 3; one-output models): with M = (2/n) dF/dtheta
  dF/dtheta^T over the probe set, ``gram_max`` lambda_max(M) (paper 004's sharpness),
  ``gram_second`` lambda_2(M), ``gram_output_max`` lambda_max(M_A) (output layer only),
  ``gram_loss`` ||D||^2/n, ``gram_rest_loss`` ||R||^2/n, ``gram_d_v1`` |D^T v_1|,
  ``gram_d_dot_f`` D^T F, ``gram_products``; with ``gram.linear_theory`` (fc2, linear) also
  ``gram_theory_ratio``, ``gram_v1_input_alignment`` and ``input_gram_gap`` (Theorem 1,
  Assumption 4.1; see :func:`ijr.curvature.gram.two_layer_linear_theory`).

``stability_threshold`` = 2 / eta is logged at every probe.

For a one-output model (the two-class MSE task of paper 004) the softmax impurity, the Gini
bounds, ``jacobian_ones_sq`` and ``io_jacobian_max`` (softmax of one logit is constant) are
undefined and are not logged; see :func:`undefined_for_one_output`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ijr import curvature
from ijr.curvature import gram
from ijr.probes.config import ProbeConfig
from ijr.probes.trajectory import ParameterSketch

Batch = tuple[torch.Tensor, torch.Tensor]
DTYPES = {"float32": torch.float32, "float64": torch.float64}

UNDEFINED_FOR_ONE_OUTPUT = (
    "probe/impurity_mean",
    "probe/impurity_q25",
    "probe/impurity_q75",
    "probe/gini_lower_mean",
    "probe/gini_upper_mean",
    "probe/jacobian_ones_sq",
    "probe/io_jacobian_max",
)


def undefined_for_one_output() -> tuple[str, ...]:
    """Metric names skipped for a one-output (two-class MSE) model."""
    return UNDEFINED_FOR_ONE_OUTPUT


@contextmanager
def measurement_mode(model: nn.Module, bn_mode: str) -> Iterator[nn.Module]:
    """Eval mode everywhere, BatchNorm layers in train mode if ``bn_mode == "train"``; on exit
    every module's flag and every buffer are restored exactly."""
    if bn_mode not in ("train", "eval"):
        raise ValueError(f"bn_mode must be 'train' or 'eval', got {bn_mode!r}")
    flags = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        model.eval()
        if bn_mode == "train":
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.train()
        yield model
    finally:
        for m, flag in flags:
            m.training = flag
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


@dataclass
class ProbeState:
    """What one measurement carries to the next (part of the callback's checkpoint state)."""

    theta0: list[torch.Tensor] | None = None
    warm_vector: torch.Tensor | None = None


@dataclass
class Measurement:
    metrics: dict[str, float] = field(default_factory=dict)
    warm_vector: torch.Tensor | None = None
    examples: tuple[list[float], list[float], list[float]] | None = None  # p_top1, impurity, p_true
    eigvec_heatmap: torch.Tensor | None = None  # (C, C) rank-ordered <Q Lambda^{1/2}> (Figure 8)
    sketch: torch.Tensor | None = None  # count sketch S theta of the parameters (Figures 3, 27)
    margins: dict | None = None  # arrays of margins/step_<t>.npz (Figures 9, 11, 31-33)


def _cast_batches(
    batches: Sequence[Batch], dtype: torch.dtype, device: torch.device
) -> list[Batch]:
    out = []
    for x, y in batches:
        x = x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype)
        y = y.to(device=device, dtype=dtype if y.is_floating_point() else y.dtype)
        out.append((x, y))
    return out


@torch.no_grad()
def probe_logits(model: nn.Module, batches: Sequence[Batch]) -> torch.Tensor:
    """Logits of every probe example (concatenated over chunks), in the current mode."""
    return torch.cat([model(x) for x, _ in batches])


def _targets(batches: Sequence[Batch]) -> torch.Tensor:
    return torch.cat([y for _, y in batches])


def true_class_probability(p: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """p_y per row: ``targets`` are class indices or one-hot / soft target rows (argmax)."""
    if targets.dtype in (torch.int64, torch.int32):
        index = targets.long().reshape(-1, 1)
    else:
        index = targets.argmax(dim=-1, keepdim=True)
    return p.gather(1, index).reshape(-1)


def _quantiles(values: torch.Tensor) -> tuple[float, float]:
    q = torch.quantile(
        values.detach().to(torch.float64),
        torch.tensor([0.25, 0.75], dtype=torch.float64, device=values.device),
    )
    return float(q[0]), float(q[1])


class ProbeMeasurer:
    """Measure the enabled metric groups of ``config`` on ``batches`` (the probe set)."""

    def __init__(self, config: ProbeConfig, *, num_outputs: int) -> None:
        self.config = config
        self.num_outputs = int(num_outputs)
        if config.enabled and "gram" in config.expensive and self.num_outputs != 1:
            raise ValueError(
                f"probes.expensive lists gram (paper 004's Gram matrix of a scalar model) but the model has {self.num_outputs} outputs; use data.task=two_class_mse"
            )
        self.dtype = DTYPES[config.dtype]
        self._sketch: ParameterSketch | None = None
        self._input_gram: tuple | None = (
            None  # (lambda_1, lambda_2, u_1) of X X^T (gram.linear_theory)
        )

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
        cfg = self.config
        out = Measurement()
        m = out.metrics
        m["probe/stability_threshold"] = curvature.sgd_threshold(1.0, lr)
        measured = self.model_for_measurement(model)
        device = next(measured.parameters()).device
        batches = _cast_batches(batches, self.dtype, device)
        one_output = self.num_outputs == 1
        with measurement_mode(measured, cfg.bn_mode):
            if "weights" in cfg.cheap:
                m["probe/weight_norm"] = float(curvature.weight_norm(measured))
                for name, value in curvature.layer_weight_norms(measured).items():
                    m[f"probe/layer_norm/{name}"] = float(value)
                m["probe/output_layer_norm"] = float(curvature.output_layer_norm(measured))
                if state.theta0 is not None:
                    theta0 = [t.to(device=device, dtype=self.dtype) for t in state.theta0]
                    m["probe/dist_from_init"] = float(curvature.dist_from_init(measured, theta0))
            if "trajectory" in cfg.cheap:
                params = [p for p in measured.parameters() if p.requires_grad]
                if self._sketch is None:
                    count = sum(p.numel() for p in params)
                    self._sketch = ParameterSketch(count, cfg.trajectory_dim, cfg.seed)
                out.sketch = self._sketch(params)
            if "logits" in cfg.cheap:
                stats = curvature.logit_stats(measured, batches)
                m["probe/logit_norm"] = float(stats.logit_norm)
                m["probe/logit_sum_abs"] = float(stats.logit_sum_abs)
            if "impurity" in cfg.cheap and not one_output:
                p = torch.softmax(probe_logits(measured, batches).to(torch.float64), dim=-1)
                lam = curvature.impurity(p)
                lower, upper = curvature.gini_bounds(p)
                m["probe/impurity_mean"] = float(lam.mean())
                m["probe/impurity_q25"], m["probe/impurity_q75"] = _quantiles(lam)
                m["probe/gini_lower_mean"] = float(lower.mean())
                m["probe/gini_upper_mean"] = float(upper.mean())
                k = min(cfg.track_examples, p.shape[0])
                if k:
                    p_true = true_class_probability(p[:k], _targets(batches)[:k])
                    out.examples = (
                        p[:k].max(dim=-1).values.tolist(),
                        lam[:k].tolist(),
                        p_true.tolist(),
                    )
            if "jacobian" in cfg.cheap:
                norms = curvature.jacobian_norms(
                    measured,
                    batches,
                    method=cfg.jacobian.method,
                    tol=cfg.jacobian.tol,
                    max_iter=cfg.jacobian.max_iter,
                    generator=generator,
                )
                m["probe/jacobian_norm_sq"] = float(norms.spectral) ** 2
                m["probe/jacobian_fro_sq"] = float(norms.frobenius) ** 2
                if not one_output:
                    m["probe/jacobian_ones_sq"] = float(norms.ones) ** 2
            if expensive and "sharpness" in cfg.expensive:
                init = state.warm_vector if cfg.sharpness.warm_start else None
                res = curvature.hessian_top_eigenvalue(
                    measured,
                    loss_fn,
                    batches,
                    method=cfg.sharpness.method,
                    tol=cfg.sharpness.tol,
                    max_iter=cfg.sharpness.max_iter,
                    init=init,
                    generator=generator,
                )
                m["probe/sharpness"] = float(res.value)
                m["probe/sharpness_products"] = float(res.n_products)
                m["probe/sharpness_residual"] = float(res.residual)
                m["probe/sharpness_converged"] = float(bool(res.converged))
                out.warm_vector = res.vector.detach()
                if "probe/jacobian_norm_sq" in m:
                    m["probe/lambda_hat"] = float(
                        curvature.lambda_hat(m["probe/sharpness"], m["probe/jacobian_norm_sq"])
                    )
            if expensive and "gauss_newton" in cfg.expensive:
                res = curvature.gauss_newton_top_eigenvalue(
                    measured,
                    loss_fn,
                    batches,
                    method=cfg.sharpness.method,
                    tol=cfg.sharpness.tol,
                    max_iter=cfg.sharpness.max_iter,
                    generator=generator,
                )
                m["probe/sharpness_gn"] = float(res.value)
            if expensive and "rho_b" in cfg.expensive:
                if full_batch:
                    rho = 1.0  # B = N: the mini-batch gradient is the full gradient (rho_B = 1 exactly)
                else:
                    minibatches = _cast_batches(rho_b_batches or [], self.dtype, device)
                    reference = (
                        batches
                        if rho_b_reference is None
                        else _cast_batches(rho_b_reference, self.dtype, device)
                    )
                    rho = float(curvature.rho_b(measured, loss_fn, reference, minibatches))
                m["probe/rho_b"] = rho
                m["probe/sgd_threshold"] = float(curvature.sgd_threshold(rho, lr))
            if expensive and "gram" in cfg.expensive:
                self._gram(measured, batches, m, generator)
            if expensive and "subspace" in cfg.expensive and not one_output:
                out.eigvec_heatmap = self._subspace(measured, loss_fn, batches, m, out.warm_vector)
        if expensive and "subspace" in cfg.expensive and not one_output and cfg.track_examples:
            tracked = _first_examples(batches, cfg.track_examples)
            with measurement_mode(measured, "eval"):  # per-example gradients: BN running stats
                cos = curvature.gradient_margin_cosine(measured, loss_fn, tracked)
            m["probe/grad_margin_cos"] = float(cos.mean())
        if expensive and "margins" in cfg.expensive and not one_output:
            with measurement_mode(measured, "eval"):  # per-example quantities: BN running stats
                out.margins = _margin_arrays(measured, batches, cfg.track_examples)
            mrl = out.margins["mrl"]
            if (~torch.isnan(mrl)).any():
                m["probe/mrl_mean"] = float(mrl[~torch.isnan(mrl)].mean())
        if expensive and "io_jacobian" in cfg.expensive and not one_output:
            with measurement_mode(measured, cfg.io_jacobian_bn_mode):
                m["probe/io_jacobian_max"] = float(curvature.io_jacobian_max(measured, batches))
        if expensive and "io_jacobian" in cfg.expensive and one_output:
            with measurement_mode(measured, cfg.io_jacobian_bn_mode):  # paper 002 App. C.3
                norms = curvature.io_jacobian_norms(measured, batches, softmax=False)
                m["probe/io_jacobian_raw_max"] = float(norms.max())
        if expensive and "gen_gap" in cfg.expensive:
            if evaluate is None or test_batches is None:
                raise ValueError(
                    "the gen_gap probe needs an evaluate function and the test batches"
                )
            train_loss, train_acc = evaluate(batches)
            test_loss, test_acc = evaluate(test_batches)
            m["probe/gen_gap"] = float(train_acc - test_acc)
            m["probe/gen_gap_loss"] = float(test_loss - train_loss)
            if label_entropy is not None:  # paper 002 Fig. 1: the loss minus its minimum
                m["probe/train_loss_minus_entropy"] = float(train_loss - label_entropy)
        return out

    def _gram(
        self, model: nn.Module, batches: Sequence[Batch], m: dict[str, float], generator
    ) -> None:
        """The ``gram`` group (paper 004, Sections 2-4, Figure 3) into ``m``."""
        cfg = self.config.gram
        spec = gram.gram_spectrum(
            model,
            batches,
            method=cfg.method,
            tol=cfg.tol,
            max_iter=cfg.max_iter,
            second=cfg.second,
            output_layer=cfg.output_layer,
            generator=generator,
        )
        m["probe/gram_max"] = spec.top
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
            inputs = torch.cat([x for x, _ in batches])
            if self._input_gram is None:  # the probe set is fixed: X X^T's eigenpair once
                self._input_gram = gram.input_gram_top(inputs)
            theory = gram.two_layer_linear_theory(model, inputs, spec, self._input_gram)
            m["probe/gram_theory_ratio"] = theory["theory_ratio"]
            m["probe/gram_v1_input_alignment"] = theory["v1_alignment"]
            m["probe/input_gram_gap"] = theory["input_gap"]

    @staticmethod
    def _subspace(
        model: nn.Module,
        loss_fn,
        batches: Sequence[Batch],
        m: dict[str, float],
        hessian_vector: torch.Tensor | None,
    ) -> torch.Tensor:
        """The ``subspace`` group's metrics into ``m``; returns the Figure 8 heatmap."""
        grad = curvature.mean_gradient(model, loss_fn, batches)
        dirs = curvature.margin_directions(model, batches)
        m["probe/margin_classes_present"] = float(int((dirs.counts > 0).sum()))
        m["probe/random_direction_cos"] = curvature.expected_random_cosine(grad.numel())
        has_grad = float(grad.norm()) > 0
        if hessian_vector is not None and has_grad:
            m["probe/grad_hessian_cos"] = abs(curvature.cosine(grad, hessian_vector))
        if dirs.all_classes_present:
            if has_grad:
                m["probe/grad_subspace_alignment"] = curvature.subspace_alignment(grad, dirs.means)
            if hessian_vector is not None:
                m["probe/hessian_subspace_alignment"] = curvature.subspace_alignment(
                    hessian_vector, dirs.means
                )
        p = torch.softmax(probe_logits(model, batches).to(torch.float64), dim=-1)
        return curvature.logit_eigvec_heatmap(p)


def _margin_arrays(model: nn.Module, batches: Sequence[Batch], track: int) -> dict:
    """The arrays of ``margins/step_<t>.npz`` (see :mod:`ijr.probes.examples`)."""
    stats = curvature.margin_statistics(model, [x for x, _ in batches])
    arrays = {
        "cos_to_means": stats.cos_to_means,
        "mean_gram": stats.mean_gram,
        "counts": stats.counts,
        "mrl": stats.mrl,
        "top1": stats.top1,
        "top2": stats.top2,
        "labels": _targets(batches).cpu(),
    }
    if track:
        ratios, cos_sq = curvature.eigvec_jacobian_statistics(
            model, [x for x, _ in _first_examples(batches, track)]
        )
        arrays.update(jq_ratios=ratios, jq_cos_sq=cos_sq)
    return arrays


def _first_examples(batches: Sequence[Batch], k: int) -> list[Batch]:
    """The first ``k`` examples of the probe set (the tracked examples), as chunks."""
    out, left = [], k
    for x, y in batches:
        if left <= 0:
            break
        out.append((x[:left], y[:left]))
        left -= x[:left].shape[0]
    return out


__all__ = [
    "Measurement",
    "ProbeMeasurer",
    "ProbeState",
    "measurement_mode",
    "probe_logits",
    "undefined_for_one_output",
]
