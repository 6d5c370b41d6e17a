"""The paper's figures from run directories (matplotlib; PNG + PDF).

Every function takes ``runs`` — :func:`ijr.reporting.load_runs`'s frame (or rows of it), a run
directory, a runs root, or a list of run directories — and returns the ``matplotlib.figure.Figure``
(built without pyplot, so no global state and no display needed); with ``out=PATH`` it also
writes ``PATH.png`` and ``PATH.pdf``. Every figure carries a footer naming the profile(s) of its
runs.

==========  ===========================================================================
function    paper figure
==========  ===========================================================================
fig1        Fig. 1: λ⁽¹⁾ against p₍₁₎ for one example (bounds from Theorem 4.1 (c),(d));
            ⟨λ⁽¹⁾⟩ against step with the 25–75 % quantile band
fig2        Fig. 2 (and 15–21, 35 with other ``left``/``right``): two metrics on twin axes
            per step window, 2/η dashed
fig4        Fig. 4: the three IJR phases (‖⟨J⟩‖² red, sharpness purple, ⟨λ⁽¹⁾⟩ orange)
fig5        Fig. 5 (and 22–25): settings as solid/dashed/dotted lines, ARP end as "x"
curves      Figs. 12–14, 22–25, 35: any metrics, one panel each, one line style per setting
fig6        Fig. 6 / 29: test accuracy and loss per epoch, SGD solid, EJR dashed
fig36       Fig. 36: final test accuracy over η × λ_reg (lines or heatmap)
fig3        Figs. 3 / 27: UMAP of the parameter trajectory (count sketches), blue → red by step
fig7        Fig. 7: the secular function v(λ) of eq. (10) for one p (no runs needed)
fig8        Figs. 8 / 30: heatmaps of the rank-ordered ⟨QΛ^{1/2}⟩ at chosen probe steps
fig9        Figs. 9 / 31 / 32: directional data of m = √λ⁽¹⁾Jq⁽¹⁾ for two classes; cos(m̄ⁱ, m̄ʲ)
fig11       Fig. 11: histograms of ‖Jq⁽ⁱ⁾‖ / mean and cos²(Jq⁽ⁱ⁾, Jq⁽ʲ⁾)
fig33       Fig. 33: the mean resultant length ρ of m / ‖m‖ in each D_i against step
fig10       Figs. 10 / 34: cos(g^D, r); cos(−g, Jq⁽¹⁾); A_S(g^D) and A_S(r) (eq. 48)
==========  ===========================================================================

Per-example input of Fig. 1 (top): ``<run_dir>/probe_examples.csv``, written by the probes
(``probes.track_examples``, :mod:`ijr.probes.examples`), long format, one row per (probe step,
tracked example): ``step`` (updates applied), ``example`` (position in the probe set), ``p_top1``
(the example's largest softmax probability p₍₁₎), ``impurity`` (λ⁽¹⁾ of its logit Hessian
M = diag(p) − ppᵀ) and ``p_true`` (the probability of its label; not plotted). Input of Figs. 8
and 30: ``<run_dir>/logit_eigvecs.csv`` (the ``subspace`` probe group), one row per (probe step,
rank, eigenpair) with the probe-set mean of √λ⁽ⁱ⁾ q⁽ⁱ⁾ at the class of that rank.
"""

from __future__ import annotations

import fnmatch
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.naming import (
    METRIC_COLORS,
    PERCENT_METRICS,
    TRAIN_SIZES,
    config_label,
    dataset_name,
    metric_label,
)
from ijr.reporting.runs import load_metrics, load_runs, select_runs, varying_keys

EXAMPLES_FILE = "probe_examples.csv"  # ijr.probes.examples.FILE_NAME
EIGVECS_FILE = "logit_eigvecs.csv"  # ijr.probes.examples.EIGVEC_FILE_NAME
EIGVECS_COLUMNS = ("step", "rank", "eigenpair", "value")
EXAMPLES_COLUMNS = ("step", "example", "p_top1", "impurity")  # required; p_true is not plotted
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
METHOD_STYLES = {
    "sgd": "-",
    "ejr": "--",
    "ejr_efficient": "--",
    "ejr_v2": "--",
    "sam": ":",
    "asam": "-.",
}
JACOBIAN, SHARPNESS, IMPURITY = "probe/jacobian_norm_sq", "probe/sharpness", "probe/impurity_mean"
SGD_THRESHOLD = "probe/sgd_threshold"
ARP_END_IMPURITY = 0.25  # Fig. 4/5 captions: ARP ends where <λ⁽¹⁾> falls below 0.25


# ----------------------------------------------------------------------------- inputs
def as_runs(runs) -> pd.DataFrame:
    """A runs frame from a frame, a row, a directory (runs root, experiment or run) or a list of them."""
    if isinstance(runs, pd.DataFrame):
        frame = runs
    elif isinstance(runs, pd.Series):
        frame = runs.to_frame().T
    elif isinstance(runs, (str, os.PathLike)):
        frame = load_runs(runs)
    elif isinstance(runs, Sequence):
        frames = [load_runs(r) for r in runs]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    else:
        raise TypeError(
            f"runs must be a DataFrame, a path or a list of paths, not {type(runs).__name__}"
        )
    if frame.empty:
        raise ValueError("no runs to plot")
    return frame.reset_index(drop=True)


def one_run(runs, what: str) -> pd.Series:
    frame = as_runs(runs)
    if len(frame) != 1:
        raise ValueError(
            f"{what} plots one run, got {len(frame)}; select one (e.g. --select optim.lr=0.04 --select seed=0)"
        )
    return frame.iloc[0]


class _Metrics:
    """metrics.csv of each run, read once per figure."""

    def __init__(self) -> None:
        self._cache: dict[str, pd.DataFrame] = {}

    def __call__(self, run: pd.Series) -> pd.DataFrame:
        key = str(run["run_dir"])
        if key not in self._cache:
            self._cache[key] = load_metrics(key)
        return self._cache[key]


def series(metrics: pd.DataFrame, name: str, x: str = "step") -> pd.Series:
    """Metric ``name`` indexed by ``x`` (NaN rows dropped; accuracies in %; ``a*b`` multiplies two
    metrics measured at the same steps). Empty when the run never logged it."""
    parts = name.split("*")
    if any(p not in metrics.columns for p in parts) or x not in metrics.columns:
        return pd.Series(dtype=float)
    values = metrics[parts[0]].astype(float)
    for part in parts[1:]:
        values = values * metrics[part].astype(float)
    if name in PERCENT_METRICS:
        values = values * 100.0
    out = pd.Series(values.to_numpy(), index=metrics[x].to_numpy()).dropna()
    return out[~out.index.duplicated(keep="last")]


def smooth(values: pd.Series, window: int | None) -> pd.Series:
    """Centred moving average over ``window`` logged points (the paper smooths Fig. 5)."""
    if not window or window <= 1 or values.empty:
        return values
    return values.rolling(int(window), center=True, min_periods=1).mean()


def _clip(values: pd.Series, steps: tuple[float, float] | None) -> pd.Series:
    if steps is None:
        return values
    lo, hi = steps
    return values[(values.index >= lo) & (values.index <= hi)]


def _lr(run: pd.Series) -> float | None:
    lr = run.get("optim.lr")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        return None
    return lr if lr > 0 and math.isfinite(lr) else None


def arp_steps(run: pd.Series, metrics: pd.DataFrame) -> tuple[float | None, float | None]:
    """(start, end) of the Active Regularization Period: the summary markers ``arp_start_step`` /
    ``arp_end_step``, else the first steps where the logged ``arp/phase`` reaches 2 / 3."""
    found = []
    for marker, phase in (("marker.arp_start_step", 2), ("marker.arp_end_step", 3)):
        value = run.get(marker)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            found.append(float(value))
            continue
        phases = series(metrics, "arp/phase")
        reached = phases[phases >= phase]
        found.append(float(reached.index[0]) if len(reached) else None)
    return found[0], found[1]


# ----------------------------------------------------------------------------- settings
def setting_groups(
    runs: pd.DataFrame, style_by: str | Sequence[str] | None = None
) -> list[tuple[str, pd.DataFrame]]:
    """Split runs into settings (seeds of one setting are averaged): by the config keys
    ``style_by``, or by every config key that varies between the runs when None. Returns
    ``[(legend label, runs), ...]`` in a stable order."""
    if isinstance(style_by, str):
        style_by = [style_by]
    keys = list(style_by) if style_by is not None else varying_keys(runs)
    for key in keys:
        if key not in runs.columns:
            raise KeyError(f"style_by: no column '{key}' in the runs")
    if not keys:
        return [("", runs)]
    groups = []
    for values, group in runs.groupby(keys, sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(
            config_label(k, v) for k, v in zip(keys, values, strict=True) if not _is_missing(v)
        )
        groups.append((tuple(_order(v) for v in values), label, group))
    groups.sort(key=lambda item: item[0])
    return [(label, group) for _, label, group in groups]


def _order(value) -> tuple:
    """Sort key for mixed config values: numbers by value, then strings (``full`` after 50000)."""
    if _is_missing(value):
        return (2, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mean_curve(group: pd.DataFrame, metric: str, x: str, metrics: _Metrics) -> pd.Series:
    """``metric`` averaged over the runs (seeds) of one setting, at the x values they share."""
    curves = [series(metrics(run), metric, x) for _, run in group.iterrows()]
    curves = [c for c in curves if not c.empty]
    if not curves:
        return pd.Series(dtype=float)
    if len(curves) == 1:
        return curves[0]
    return pd.concat(curves, axis=1, join="inner").mean(axis=1)


def _linestyle(label_index: int, group: pd.DataFrame, by_method: bool) -> object:
    if by_method:
        methods = set(group["method.name"].dropna()) if "method.name" in group.columns else set()
        if len(methods) == 1:
            return METHOD_STYLES.get(methods.pop(), LINESTYLES[label_index % len(LINESTYLES)])
    return LINESTYLES[label_index % len(LINESTYLES)]


def expand_metrics(runs: pd.DataFrame, patterns: Sequence[str], metrics: _Metrics) -> list[str]:
    """Metric names from names, ``a*b`` products and globs (``probe/layer_norm/*``), in the order
    given; a name (or glob) that none of the runs logged is an error."""
    columns: list[str] = []
    for _, run in runs.iterrows():
        columns += [
            c for c in metrics(run).columns if c not in columns and c not in ("step", "epoch")
        ]
    names: list[str] = []
    for pattern in patterns:
        if all(part in columns for part in pattern.split("*")):  # a metric or a product a*b
            names.append(pattern)
            continue
        matched = [c for c in columns if fnmatch.fnmatchcase(c, pattern) and c not in names]
        if not matched:
            raise ValueError(
                f"metric '{pattern}' is not in the runs' metrics.csv (logged: {', '.join(columns) or 'nothing'})"
            )
        names += matched
    return names


# ----------------------------------------------------------------------------- drawing helpers
def new_figure(
    nrows: int, ncols: int, panel: tuple[float, float] = (4.2, 3.0), **kwargs
) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def threshold_line(ax, lr: float | None, label: bool = True) -> None:
    """The stability threshold 2/η as a dashed horizontal line (Figs. 2, 4, 21)."""
    if lr:
        ax.axhline(
            2.0 / lr,
            color="black",
            linestyle="--",
            linewidth=1.0,
            label=r"$2/\eta$" if label else None,
        )


def quantile_band(
    ax, metrics: pd.DataFrame, low: str, high: str, x: str, color: str, steps=None
) -> bool:
    lo, hi = _clip(series(metrics, low, x), steps), _clip(series(metrics, high, x), steps)
    both = pd.concat([lo, hi], axis=1, join="inner")
    if both.empty:
        return False
    ax.fill_between(
        both.index,
        both.iloc[:, 0],
        both.iloc[:, 1],
        color=color,
        alpha=0.6,
        linewidth=0,
        label="25–75 %",
    )
    return True


def _plot(ax, values: pd.Series, **kwargs):
    if values.empty:
        return None
    return ax.plot(values.index, values.to_numpy(), **kwargs)[0]


def _footer(fig: Figure, runs: pd.DataFrame) -> None:
    profiles = (
        sorted(set(runs["profile"].fillna("unknown").astype(str)))
        if "profile" in runs.columns
        else ["unknown"]
    )
    fig.text(
        0.995,
        0.002,
        f"profile: {', '.join(profiles)}",
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.4",
    )


def _legend(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, frameon=False)


def save_figure(
    fig: Figure, out: str | os.PathLike, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150
) -> list[Path]:
    """Write ``out.png`` and ``out.pdf`` (a suffix on ``out`` is dropped); returns the paths."""
    stem = Path(out)
    if stem.suffix in {".png", ".pdf"}:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.parent / f"{stem.name}.{fmt}"
        fig.savefig(path, dpi=dpi)
        written.append(path)
    return written


def _finish(fig: Figure, runs: pd.DataFrame, out) -> Figure:
    _footer(fig, runs)
    if out is not None:
        save_figure(fig, out)
    return fig


# ----------------------------------------------------------------------------- Figure 1
def impurity_bounds(p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 4.1 (c), (d): ½Gini(p₍₁₎) ≤ λ⁽¹⁾ ≤ min{p₍₁₎, Gini(p₍₁₎)}, Gini(q) = 2q(1−q)."""
    p1 = np.asarray(p1, dtype=float)
    gini = 2.0 * p1 * (1.0 - p1)
    return 0.5 * gini, np.minimum(p1, gini)


def load_examples(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """``probe_examples.csv`` of a run (None when the run has none)."""
    path = Path(run_dir) / EXAMPLES_FILE
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    missing = [c for c in EXAMPLES_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks columns {', '.join(missing)} (expected {', '.join(EXAMPLES_COLUMNS)})"
        )
    return frame


def fig1(
    runs, example: int | None = None, examples: pd.DataFrame | None = None, out=None
) -> Figure:
    """Figure 1. Top: λ⁽¹⁾ against p₍₁₎ of one example over training (blue → red), with the upper
    bound min{p₍₁₎, Gini(p₍₁₎)} (solid black) and the lower bound ½Gini(p₍₁₎) (dashed black).
    Bottom: ⟨λ⁽¹⁾⟩ against step (blue) with the 25–75 % quantile band (sky blue).
    ``examples`` defaults to the run's ``probe_examples.csv``; ``example`` to its first example."""
    run = one_run(runs, "fig1")
    metrics = load_metrics(run["run_dir"])
    examples = examples if examples is not None else load_examples(run["run_dir"])
    fig, axes = new_figure(2, 1, panel=(4.8, 3.2))
    top, bottom = axes[0, 0], axes[1, 0]
    grid = np.linspace(0.0, 1.0, 201)
    lower, upper = impurity_bounds(grid)
    top.plot(
        grid,
        upper,
        color="black",
        linestyle="-",
        linewidth=1.2,
        label=r"$\min\{p_{(1)}, \mathrm{Gini}(p_{(1)})\}$",
    )
    top.plot(
        grid,
        lower,
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=r"$\frac{1}{2}\mathrm{Gini}(p_{(1)})$",
    )
    if examples is not None and len(examples):
        chosen = examples["example"].iloc[0] if example is None else example
        traj = examples[examples["example"] == chosen].sort_values("step")
        if traj.empty:
            raise ValueError(
                f"example {chosen} is not in the per-example file (examples: {sorted(set(examples['example']))[:10]})"
            )
        points = top.scatter(
            traj["p_top1"], traj["impurity"], c=traj["step"], cmap="coolwarm", s=10, zorder=3
        )
        fig.colorbar(points, ax=top, label="step")
        top.set_title(f"example {chosen}", fontsize=9)
    else:
        warnings.warn(
            f"{run['run_dir']}: no {EXAMPLES_FILE}; Figure 1 (top) shows the bounds only",
            stacklevel=2,
        )
        top.text(
            0.5,
            0.9,
            f"no per-example data ({EXAMPLES_FILE})",
            transform=top.transAxes,
            ha="center",
            fontsize=8,
        )
    top.set_xlabel(r"$p_{(1)}$")
    top.set_ylabel(r"$\lambda^{(1)}$")
    _legend(top)
    quantile_band(bottom, metrics, "probe/impurity_q25", "probe/impurity_q75", "step", "skyblue")
    _plot(bottom, series(metrics, IMPURITY), color="tab:blue", label=metric_label(IMPURITY))
    bottom.set_xlabel("step")
    bottom.set_ylabel(r"$\lambda^{(1)}$")
    _legend(bottom)
    return _finish(fig, as_runs(runs), out)


# ----------------------------------------------------------------------------- Figure 2
def fig2(
    runs,
    windows: Sequence[tuple[float, float]] | None = None,
    left: str = SHARPNESS,
    right: str = JACOBIAN,
    threshold: bool = True,
    out=None,
) -> Figure:
    """Figure 2: ``left`` (sharpness, purple) and ``right`` (‖⟨J⟩‖², red, twin axis) against step,
    one panel per step window (default: the whole run), 2/η dashed on the left axis. With
    ``right="probe/impurity_mean*probe/jacobian_ones_sq"`` it is Figs. 15–21; with an MSE run, Fig. 35."""
    run = one_run(runs, "fig2")
    metrics = load_metrics(run["run_dir"])
    windows = list(windows) if windows else [None]
    fig, axes = new_figure(1, len(windows), panel=(4.6, 3.2))
    for ax, window in zip(axes[0], windows, strict=True):
        twin = ax.twinx()
        _plot(
            ax,
            _clip(series(metrics, left), window),
            color=METRIC_COLORS.get(left, "tab:purple"),
            label=metric_label(left),
        )
        _plot(
            twin,
            _clip(series(metrics, right), window),
            color=METRIC_COLORS.get(right, "tab:red"),
            label=metric_label(right),
        )
        if threshold:
            threshold_line(ax, _lr(run))
        ax.set_xlabel("step")
        ax.set_ylabel(metric_label(left), color=METRIC_COLORS.get(left, "tab:purple"))
        twin.set_ylabel(metric_label(right), color=METRIC_COLORS.get(right, "tab:red"))
        if window is not None:
            ax.set_title(f"steps {window[0]:g}–{window[1]:g}", fontsize=9)
        _legend(ax)
    return _finish(fig, as_runs(runs), out)


# ----------------------------------------------------------------------------- Figure 4
def fig4(runs, arp_threshold: float = ARP_END_IMPURITY, out=None) -> Figure:
    """Figure 4: the three phases of IJR. Top: ‖⟨J⟩‖² (red, left) and sharpness (purple, right)
    with 2/η dashed black and, where ρ_B was measured, 2ρ_B/η dashed purple (the ARP start's
    threshold); bottom: ⟨λ⁽¹⁾⟩ (orange) with its 25–75 % band and ``arp_threshold`` dotted.
    The ARP (phase II) start and end are vertical lines; its end on ‖⟨J⟩‖² is an "x"."""
    run = one_run(runs, "fig4")
    metrics = load_metrics(run["run_dir"])
    fig, axes = new_figure(2, 1, panel=(5.6, 2.8), sharex=True)
    top, bottom = axes[0, 0], axes[1, 0]
    twin = top.twinx()
    jac = series(metrics, JACOBIAN)
    _plot(top, jac, color=METRIC_COLORS[JACOBIAN], label=metric_label(JACOBIAN))
    _plot(
        twin,
        series(metrics, SHARPNESS),
        color=METRIC_COLORS[SHARPNESS],
        label=metric_label(SHARPNESS),
    )
    _plot(
        twin,
        series(metrics, SGD_THRESHOLD),
        color=METRIC_COLORS[SHARPNESS],
        linestyle="--",
        linewidth=1.0,
        label=metric_label(SGD_THRESHOLD),
    )
    threshold_line(twin, _lr(run))
    twin.legend(fontsize=7, frameon=False, loc="center right")
    top.set_ylabel(metric_label(JACOBIAN), color=METRIC_COLORS[JACOBIAN])
    twin.set_ylabel(metric_label(SHARPNESS), color=METRIC_COLORS[SHARPNESS])
    quantile_band(bottom, metrics, "probe/impurity_q25", "probe/impurity_q75", "step", "moccasin")
    _plot(
        bottom,
        series(metrics, IMPURITY),
        color=METRIC_COLORS[IMPURITY],
        label=metric_label(IMPURITY),
    )
    bottom.axhline(
        arp_threshold, color="0.4", linestyle=":", linewidth=1.0, label=f"{arp_threshold:g}"
    )
    bottom.set_ylabel(metric_label(IMPURITY))
    bottom.set_xlabel("step")
    start, end = arp_steps(run, metrics)
    for ax in (top, bottom):
        for step in (start, end):
            if step is not None:
                ax.axvline(step, color="0.5", linestyle="-.", linewidth=0.8)
    _phase_labels(top, start, end, jac)
    _mark_arp_end(top, run, jac, end, color=METRIC_COLORS[JACOBIAN])
    _legend(bottom)
    return _finish(fig, as_runs(runs), out)


def _phase_labels(ax, start, end, curve: pd.Series) -> None:
    if curve.empty:
        return
    lo, hi = float(curve.index.min()), float(curve.index.max())
    edges = [lo] + [s for s in (start, end) if s is not None] + [hi]
    for name, a, b in zip(("I", "II", "III"), edges[:-1], edges[1:], strict=False):
        ax.text(
            (a + b) / 2,
            0.95,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=9,
        )


def _mark_arp_end(ax, run: pd.Series, curve: pd.Series, end, color: str) -> None:
    """'x' at the end of the ARP on the ‖⟨J⟩‖² curve (value from the summary marker if present)."""
    if end is None or curve.empty:
        return
    value = run.get("marker.arp_end_jacobian_norm_sq")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = float(np.interp(end, curve.index.to_numpy(dtype=float), curve.to_numpy()))
    ax.plot(
        [end], [value], marker="x", markersize=8, markeredgewidth=2, color=color, linestyle="none"
    )


# ----------------------------------------------------------------------------- curves / Fig. 5
def _draw_panels(
    axes_row, metrics_names, groups, cache, x, smoothing, steps, mark_arp_end, by_method, logy
):
    for ax, metric in zip(axes_row, metrics_names, strict=True):
        for i, (label, group) in enumerate(groups):
            curve = smooth(_clip(mean_curve(group, metric, x, cache), steps), smoothing)
            color = METRIC_COLORS.get(metric, f"C{i % 10}") if not by_method else f"C{i % 10}"
            _plot(
                ax,
                curve,
                color=color,
                linestyle=_linestyle(i, group, by_method),
                label=label or None,
            )
            if mark_arp_end and metric in (JACOBIAN, IMPURITY) and x == "step":
                for _, run in group.iterrows():
                    _, end = arp_steps(run, cache(run))
                    raw = series(cache(run), metric, x)
                    if metric == JACOBIAN:
                        _mark_arp_end(ax, run, raw, end, color)
                    elif end is not None and not raw.empty:
                        ax.plot(
                            [end],
                            [
                                float(
                                    np.interp(end, raw.index.to_numpy(dtype=float), raw.to_numpy())
                                )
                            ],
                            marker="x",
                            markersize=7,
                            markeredgewidth=2,
                            color=color,
                            linestyle="none",
                        )
        ax.set_xlabel(x)
        ax.set_ylabel(metric_label(metric))
        if logy:
            ax.set_yscale("log")


def curves(
    runs,
    metrics: Sequence[str],
    style_by: str | Sequence[str] | None = None,
    x: str = "step",
    smoothing: int | None = None,
    steps: tuple[float, float] | None = None,
    mark_arp_end: bool = False,
    logy: bool = False,
    ncols: int | None = None,
    out=None,
) -> Figure:
    """One panel per metric (names, ``a*b`` products or globs such as ``probe/layer_norm/*``);
    one line per setting (seeds averaged; settings split by ``style_by`` or by every varying config
    key), solid/dashed/dotted/... per setting, colour per metric as in the paper (red ‖⟨J⟩‖²,
    purple sharpness, orange ⟨λ⁽¹⁾⟩). Figs. 12–14 (one run), 22–25 (several), 35."""
    frame = as_runs(runs)
    cache = _Metrics()
    names = expand_metrics(frame, metrics, cache)
    if not names:
        raise ValueError("curves needs at least one metric")
    groups = setting_groups(frame, style_by)
    ncols = ncols or min(len(names), 4)
    nrows = math.ceil(len(names) / ncols)
    fig, axes = new_figure(nrows, ncols)
    flat = list(axes.flat)
    _draw_panels(
        flat[: len(names)], names, groups, cache, x, smoothing, steps, mark_arp_end, False, logy
    )
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    _legend(flat[0])
    return _finish(fig, frame, out)


def fig5(
    runs,
    rows: Sequence[Mapping[str, object]] | None = None,
    style_by: str | Sequence[str] | None = None,
    smoothing: int | None = None,
    out=None,
) -> Figure:
    """Figure 5: ‖⟨J⟩‖² (red), sharpness (purple) and ⟨λ⁽¹⁾⟩ (orange) of several settings as
    solid/dashed/dotted lines, the ARP end marked "x". ``rows`` is a list of config filters, one
    panel row each (the paper: ``[{"data.batch_size": 128}, {"optim.lr": 0.01}]`` — fixed B with
    varying η on top, fixed η with varying B below); default one row with every run. Within a
    row the settings go solid, dashed, dotted, ... by increasing η/B (the paper's order: η =
    0.01/0.02/0.03 and B = 128/64/32, the dotted line regularising most)."""
    frame = as_runs(runs)
    rows = list(rows) if rows else [{}]
    panels = [JACOBIAN, SHARPNESS, IMPURITY]
    fig, axes = new_figure(len(rows), len(panels))
    cache = _Metrics()
    for r, where in enumerate(rows):
        subset = select_runs(frame, where)
        if subset.empty:
            raise ValueError(f"fig5 row {r + 1}: no run matches {dict(where)}")
        _draw_panels(
            axes[r],
            panels,
            sorted(setting_groups(subset, style_by), key=lambda item: _noise_scale(item[1])),
            cache,
            "step",
            smoothing,
            None,
            True,
            False,
            False,
        )
        _legend(axes[r, 0])
    return _finish(fig, frame, out)


def _noise_scale(group: pd.DataFrame) -> float:
    """Mean η/B of a setting's runs (full batch: B = the training-set size); inf without one."""
    ratios = []
    for _, run in group.iterrows():
        lr, batch = _lr(run), run.get("data.batch_size")
        if isinstance(batch, str) and batch.strip().lower() == "full":
            subset = run.get("data.subset")
            batch = (
                subset if not _is_missing(subset) else TRAIN_SIZES.get(str(run.get("data.name")))
            )
        try:
            ratios.append(lr / float(batch))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return float(np.mean(ratios)) if ratios else math.inf


# ----------------------------------------------------------------------------- Figure 6
def fig6(
    runs,
    row_by: str = "data.name",
    style_by: str = "method.name",
    mark_lr_decay: bool = True,
    out=None,
) -> Figure:
    """Figure 6: test accuracy and test loss per epoch, one row per ``row_by`` value (CIFAR-10 /
    CIFAR-100), SGD solid and EJR dashed (SAM dotted, ASAM dash-dotted); seeds averaged. With a
    multi-step schedule the learning-rate decays are thin vertical lines."""
    frame = as_runs(runs)
    cache = _Metrics()
    row_values = (
        sorted(set(frame[row_by].dropna().astype(str))) if row_by in frame.columns else [""]
    )
    fig, axes = new_figure(len(row_values), 2)
    for r, value in enumerate(row_values):
        subset = frame[frame[row_by].astype(str) == value] if value else frame
        groups = sorted(setting_groups(subset, style_by), key=lambda item: not _is_sgd(item[1]))
        _draw_panels(
            axes[r],
            ["test/acc", "test/loss"],
            groups,
            cache,
            "epoch",
            None,
            None,
            False,
            True,
            False,
        )
        if mark_lr_decay:
            for epoch in _lr_decay_epochs(subset):
                for ax in axes[r]:
                    ax.axvline(epoch, color="0.7", linestyle=":", linewidth=0.8)
        if value:
            axes[r, 0].set_title(
                dataset_name(value) if row_by == "data.name" else config_label(row_by, value),
                fontsize=9,
            )
        _legend(axes[r, 0])
    return _finish(fig, frame, out)


def _is_sgd(group: pd.DataFrame) -> bool:
    return "method.name" in group.columns and set(group["method.name"].dropna()) == {"sgd"}


def _lr_decay_epochs(runs: pd.DataFrame) -> list[float]:
    """Epochs of the multi-step decays (milestones are fractions of the run) of the first run."""
    run = runs.iloc[0]
    if run.get("sched.name") != "multistep":
        return []
    milestones, epochs = run.get("sched.milestones"), run.get("trainer.max_epochs")
    if (
        not isinstance(milestones, (tuple, list))
        or epochs is None
        or (isinstance(epochs, float) and math.isnan(epochs))
    ):
        return []
    return [float(m) * float(epochs) for m in milestones]


# ----------------------------------------------------------------------------- Figure 36
def _reg_value(run: pd.Series) -> float | None:
    if run.get("method.name") == "sgd":
        return 0.0
    value = run.get("method.lambda_reg")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def fig36_grid(runs) -> pd.DataFrame:
    """Mean / std / n over seeds of the final test accuracy (%) of completed runs, per
    (lr, lambda_reg); SGD runs have lambda_reg 0. One dataset, model and batch size only."""
    frame = as_runs(runs)
    frame = frame[
        (frame["status"] == "completed")
        & frame.get("final.test/acc", pd.Series(index=frame.index, dtype=float)).notna()
    ]
    rows = []
    for _, run in frame.iterrows():
        lam = _reg_value(run)
        if lam is None:
            continue
        setting = tuple(str(run.get(k)) for k in ("data.name", "model.name", "data.batch_size"))
        rows.append(
            {
                "setting": setting,
                "lr": float(run["optim.lr"]),
                "lambda_reg": lam,
                "acc": 100.0 * float(run["final.test/acc"]),
            }
        )
    if not rows:
        raise ValueError(
            "fig36 needs completed SGD / EJR (method.lambda_reg) runs with a final test/acc"
        )
    data = pd.DataFrame(rows)
    settings = sorted(set(data["setting"]))
    if len(settings) > 1:
        shown = "; ".join("/".join(s) for s in settings)
        raise ValueError(
            f"fig36 plots one dataset/model/batch size, found {shown}; narrow with --select"
        )
    grouped = data.groupby(["lambda_reg", "lr"])["acc"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def fig36(runs, kind: str = "lines", out=None) -> Figure:
    """Figure 36: final test accuracy over learning rate η × λ_reg. ``kind="lines"``: accuracy
    against η (log axis), one line per λ_reg (SGD = λ_reg 0, solid), std over seeds as error bars;
    ``kind="heatmap"``: the λ_reg × η grid of mean accuracies, annotated."""
    frame = as_runs(runs)
    grid = fig36_grid(frame)
    fig, axes = new_figure(1, 1, panel=(5.0, 3.6))
    ax = axes[0, 0]
    lams = sorted(set(grid["lambda_reg"]))
    if kind == "lines":
        for i, lam in enumerate(lams):
            part = grid[grid["lambda_reg"] == lam].sort_values("lr")
            label = "SGD" if lam == 0 else rf"EJR $\lambda_{{reg}}$={lam:g}"
            ax.errorbar(
                part["lr"].to_numpy(dtype=float),
                part["mean"].to_numpy(dtype=float),
                yerr=part["std"].fillna(0.0).to_numpy(dtype=float),
                marker="o",
                markersize=4,
                capsize=2,
                linestyle="-" if lam == 0 else LINESTYLES[1 + (i - 1) % (len(LINESTYLES) - 1)],
                color="black" if lam == 0 else f"C{i % 10}",
                label=label,
            )
        ax.set_xscale("log")
        ax.set_xlabel(r"learning rate $\eta$")
        ax.set_ylabel(metric_label("test/acc"))
        _legend(ax)
    elif kind == "heatmap":
        lrs = sorted(set(grid["lr"]))
        table = grid.pivot(index="lambda_reg", columns="lr", values="mean").reindex(
            index=lams, columns=lrs
        )
        image = ax.imshow(table.to_numpy(), cmap="viridis", aspect="auto", origin="lower")
        for (i, j), value in np.ndenumerate(table.to_numpy()):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
        ax.set_yticks(range(len(lams)), ["0 (SGD)" if v == 0 else f"{v:g}" for v in lams])
        ax.set_xlabel(r"learning rate $\eta$")
        ax.set_ylabel(r"$\lambda_{reg}$")
        fig.colorbar(image, ax=ax, label=metric_label("test/acc"))
    else:
        raise ValueError(f"fig36 kind must be 'lines' or 'heatmap', got '{kind}'")
    return _finish(fig, frame, out)


# ----------------------------------------------------------------------------- Figure 7
FIG7_P = (0.45, 0.25, 0.15, 0.1, 0.05)  # an illustrative p (the paper does not print its own)


def fig7(p: Sequence[float] = FIG7_P, out=None) -> Figure:
    """Figure 7: the secular function v(λ) = 1 − Σⱼ pⱼ² / (pⱼ − λ) of eq. (10) (blue) for one
    probability vector ``p``, its poles λ = pⱼ (red vertical lines) and its zeros — the
    eigenvalues λ⁽ⁱ⁾ of M = diag(p) − ppᵀ, computed by :func:`ijr.curvature.logit_hessian_eigh`
    (black dots): one in each interval (p₍ᵢ₊₁₎, p₍ᵢ₎) and λ⁽ᶜ⁾ = 0 (Theorem 4.1 (c))."""
    import torch

    from ijr.curvature import logit_hessian_eigh

    probs = np.sort(np.asarray(p, dtype=float))[::-1].copy()
    if probs.ndim != 1 or probs.size < 2 or (probs <= 0).any() or abs(probs.sum() - 1) > 1e-9:
        raise ValueError(
            f"p must be a probability vector with >= 2 positive entries, got {list(p)}"
        )
    eig = logit_hessian_eigh(torch.tensor(probs, dtype=torch.float64))[0].numpy()
    fig, axes = new_figure(1, 1, panel=(6.0, 3.6))
    ax = axes[0, 0]
    poles = np.concatenate([[-0.1], probs[::-1], [probs[0] + 0.15]])
    for lo, hi in zip(poles[:-1], poles[1:], strict=True):  # each branch between two poles
        gap = (hi - lo) * 1e-3
        lam = np.linspace(lo + gap, hi - gap, 400)
        v = 1.0 - np.sum(probs[:, None] ** 2 / (probs[:, None] - lam[None, :]), axis=0)
        ax.plot(lam, v, color="tab:blue", linewidth=1.2)
    for q in probs:
        ax.axvline(q, color="tab:red", linewidth=0.8)
    ax.axhline(0.0, color="0.5", linewidth=0.6)
    ax.scatter(eig, np.zeros_like(eig), color="black", s=14, zorder=3, label=r"$\lambda^{(i)}$")
    ax.set_ylim(-4, 4)
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel(r"$v(\lambda)$")
    ax.set_title("p = (" + ", ".join(f"{q:g}" for q in probs) + ")", fontsize=9)
    _legend(ax)
    if out is not None:
        save_figure(fig, out)
    return fig


# ----------------------------------------------------------------------------- Figures 8, 30
def load_eigvecs(run_dir: str | os.PathLike) -> pd.DataFrame:
    """``logit_eigvecs.csv`` of a run; a clear error when the run did not write one."""
    path = Path(run_dir) / EIGVECS_FILE
    if not path.is_file():
        raise ValueError(
            f"{run_dir} has no {EIGVECS_FILE}: run it with the 'subspace' probe group (probes=all, or probes.expensive=[...,subspace])"
        )
    frame = pd.read_csv(path)
    missing = [c for c in EIGVECS_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {', '.join(missing)}")
    return frame


def fig8(runs, steps: Sequence[int] | None = None, out=None) -> Figure:
    """Figures 8 and 30: the probe-set mean of QΛ^{1/2} = [√λ⁽¹⁾q⁽¹⁾; …; √λ⁽ᶜ⁻¹⁾q⁽ᶜ⁻¹⁾; 0] with
    the rows in rank order (row r = the r-th most probable class of each example), one heatmap
    per probe step in ``steps`` (default: the last probe; the paper's Figure 30 uses
    100/500/1000/2000/4000/6000), red positive, blue negative; the two salient entries
    q⁽ⁱ⁾₍ᵢ₎ and q⁽ⁱ⁾₍ᵢ₊₁₎ of each column in dashed boxes (eq. 45)."""
    from matplotlib.patches import Rectangle

    run = one_run(runs, "fig8")
    table = load_eigvecs(run["run_dir"])
    logged = sorted(set(int(s) for s in table["step"]))
    if not logged:
        raise ValueError(f"{run['run_dir']}/{EIGVECS_FILE} has no rows")
    wanted = [logged[-1]] if not steps else [int(s) for s in steps]
    nearest = [min(logged, key=lambda s, w=w: (abs(s - w), s)) for w in wanted]
    chosen = list(dict.fromkeys(nearest))  # the nearest logged probe of each, once
    c = int(table["rank"].max()) + 1
    fig, axes = new_figure((len(chosen) + 2) // 3, min(3, len(chosen)), panel=(3.6, 3.2))
    flat = axes.reshape(-1)
    limit = float(table["value"].abs().max()) or 1.0
    image = None
    for ax, step in zip(flat, chosen, strict=False):
        at = table[table["step"] == step]
        matrix = np.zeros((c, c))
        matrix[at["rank"].astype(int), at["eigenpair"].astype(int)] = at["value"].astype(float)
        image = ax.imshow(matrix, cmap="bwr", vmin=-limit, vmax=limit)
        for i in range(c - 1):  # the two salient entries of column i
            ax.add_patch(
                Rectangle((i - 0.5, i - 0.5), 1, 2, fill=False, linestyle="--", linewidth=0.8)
            )
        ax.set_title(f"step {step}", fontsize=9)
        ax.set_xlabel("eigenpair i")
        ax.set_ylabel("class rank (r)")
    for ax in flat[len(chosen) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(flat[: len(chosen)]), shrink=0.8)
    return _finish(fig, as_runs(runs), out)


# ----------------------------------------------------------------------------- Figures 10, 34
GRAD_HESSIAN_COS = "probe/grad_hessian_cos"
GRAD_MARGIN_COS = "probe/grad_margin_cos"
GRAD_ALIGNMENT = "probe/grad_subspace_alignment"
HESSIAN_ALIGNMENT = "probe/hessian_subspace_alignment"
RANDOM_COS = "probe/random_direction_cos"


def fig10(runs, out=None) -> Figure:
    """Figure 10 (and 34). Left: |cos(g^D, r)| of the total gradient and the Hessian's top
    eigenvector (log scale) with E|cos| of two random directions in R^m dashed. Middle: the mean
    over the tracked examples of cos(−g, Jq⁽¹⁾). Right: A_S(g^D) and A_S(r), S = span{m̄ⁱ}
    (eq. 48), defined once every class is some example's most likely one."""
    run = one_run(runs, "fig10")
    metrics = load_metrics(run["run_dir"])
    if GRAD_HESSIAN_COS not in metrics.columns and GRAD_ALIGNMENT not in metrics.columns:
        raise ValueError(
            f"{run['run_dir']} logged no subspace metrics: run it with the 'subspace' probe group"
        )
    fig, axes = new_figure(1, 3, panel=(4.0, 3.0))
    left, middle, right = axes[0]
    _plot(
        left,
        series(metrics, GRAD_HESSIAN_COS),
        color="tab:purple",
        marker=".",
        label=r"$|\cos(g^{\mathcal{D}}, r)|$",
    )
    level = series(metrics, RANDOM_COS)
    if not level.empty:
        left.axhline(
            float(level.iloc[-1]),
            color="black",
            linestyle="--",
            linewidth=1.0,
            label="random directions",
        )
    left.set_yscale("log")
    left.set_ylabel("cosine similarity")
    _plot(
        middle,
        series(metrics, GRAD_MARGIN_COS),
        color="tab:red",
        marker=".",
        label=r"$\cos(-g, Jq^{(1)})$",
    )
    middle.set_ylim(-1.05, 1.05)
    _plot(
        right,
        series(metrics, GRAD_ALIGNMENT),
        color="tab:blue",
        marker=".",
        label=r"$A_{\mathcal{S}}(g^{\mathcal{D}})$",
    )
    _plot(
        right,
        series(metrics, HESSIAN_ALIGNMENT),
        color="tab:purple",
        marker=".",
        label=r"$A_{\mathcal{S}}(r)$",
    )
    right.set_ylim(0, 1.05)
    if series(metrics, GRAD_ALIGNMENT).empty:
        right.text(
            0.5,
            0.5,
            "S undefined: some class is no example's top class",
            transform=right.transAxes,
            ha="center",
            fontsize=7,
        )
    for ax in (left, middle, right):
        ax.set_xlabel("step")
        _legend(ax)
    return _finish(fig, as_runs(runs), out)


# ----------------------------------------------------------------------------- Figures 3, 27
def fig3(
    runs,
    windows: Sequence[tuple[float, float] | None] = (None, (100, 300)),
    n_neighbors: int = 15,
    seed: int = 0,
    out=None,
) -> Figure:
    """Figures 3 and 27: UMAP (McInnes et al. 2018) of the optimisation trajectory {theta_t},
    one panel per step window (default: the whole run, then the oscillatory steps 100-300, each
    embedded on its own as in Figure 27), points coloured by step from blue to red and joined in
    order. The input is the run's ``trajectory.bin`` (count sketches S theta_t, the
    ``trajectory`` probe group; :mod:`ijr.probes.trajectory`); UMAP runs with a fixed
    ``random_state`` so the figure is reproducible."""
    import umap

    from ijr.probes.trajectory import read_trajectory

    run = one_run(runs, "fig3")
    steps, sketches = read_trajectory(run["run_dir"])
    fig, axes = new_figure(1, len(windows), panel=(4.4, 3.6))
    for ax, window in zip(axes[0], windows, strict=True):
        keep = np.ones_like(steps, dtype=bool)
        if window is not None:
            keep = (steps >= window[0]) & (steps <= window[1])
        if int(keep.sum()) < 4:
            raise ValueError(
                f"fig3: {int(keep.sum())} trajectory points in steps {window or 'all'}; UMAP needs at least 4"
            )
        points = sketches[keep].astype(np.float64)
        reducer = umap.UMAP(
            n_neighbors=min(n_neighbors, len(points) - 1), random_state=seed, n_jobs=1
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs / spectral-initialisation notices
            embedding = reducer.fit_transform(points)
        ax.plot(embedding[:, 0], embedding[:, 1], color="0.75", linewidth=0.5, zorder=1)
        dots = ax.scatter(
            embedding[:, 0], embedding[:, 1], c=steps[keep], cmap="coolwarm", s=8, zorder=2
        )
        fig.colorbar(dots, ax=ax, label="step")
        lo, hi = int(steps[keep].min()), int(steps[keep].max())
        ax.set_title(f"steps {lo}–{hi}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
    return _finish(fig, as_runs(runs), out)


# ----------------------------------------------------------------------------- Figures 9, 11, 31-33
def load_margins(run_dir: str | os.PathLike) -> dict[int, dict]:
    """``margins/step_<t>.npz`` of a run as {step: arrays}; a clear error when it has none."""
    from ijr.probes.examples import MARGINS_DIR, StepArrays

    data = StepArrays(Path(run_dir) / MARGINS_DIR).load()
    if not data:
        raise ValueError(
            f"{run_dir} has no {MARGINS_DIR}/step_*.npz: run it with the 'margins' probe group (experiment=fig10_subspace)"
        )
    return data


def _at_step(data: dict[int, dict], step: int | None) -> tuple[int, dict]:
    steps = list(data)
    chosen = steps[-1] if step is None else min(steps, key=lambda s: (abs(s - step), s))
    return chosen, data[chosen]


def _mean_cosines(gram: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.clip(np.diag(gram), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = gram / np.outer(norms, norms)
    cos[norms == 0, :] = np.nan
    cos[:, norms == 0] = np.nan
    return cos


def default_pair(arrays: dict) -> tuple[int, int]:
    """The two classes whose mean vectors m̄ⁱ, m̄ʲ are the most negatively aligned."""
    cos = _mean_cosines(np.asarray(arrays["mean_gram"], dtype=float))
    np.fill_diagonal(cos, np.nan)
    if np.all(np.isnan(cos)):
        raise ValueError("fewer than two classes are some example's most likely class")
    i, j = np.unravel_index(np.nanargmin(cos), cos.shape)
    return int(min(i, j)), int(max(i, j))


def fig9(runs, step: int | None = None, pair: tuple[int, int] | None = None, out=None) -> Figure:
    """Figures 9 (and 31, 32). Left: the unit vectors m / ‖m‖ of the examples of D_i (blue) and
    D_j (red), projected onto the plane spanned by m̄ⁱ and m̄ʲ (arrows), with each class's mean
    resultant length ρ; ``pair`` defaults to the most negatively aligned means. Right: the
    cosine similarities cos(m̄ⁱ, m̄ʲ) of the class means. At the probe step nearest ``step``
    (default: the last)."""
    run = one_run(runs, "fig9")
    chosen, a = _at_step(load_margins(run["run_dir"]), step)
    gram = np.asarray(a["mean_gram"], dtype=float)
    cos_to = np.asarray(a["cos_to_means"], dtype=float)
    top1 = np.asarray(a["top1"])
    i, j = pair if pair is not None else default_pair(a)
    c = gram.shape[0]
    if not (0 <= i < c and 0 <= j < c and i != j):
        raise ValueError(f"fig9: pair must be two different classes in 0..{c - 1}, got {(i, j)}")
    if gram[i, i] <= 0 or gram[j, j] <= 0:
        raise ValueError(
            f"fig9: class {i if gram[i, i] <= 0 else j} is no example's most likely class at step {chosen}"
        )
    ni, nj = math.sqrt(gram[i, i]), math.sqrt(gram[j, j])
    along = gram[i, j] / ni  # m̄ʲ · e1
    n2 = math.sqrt(max(gram[j, j] - along**2, 0.0)) or 1.0
    fig, axes = new_figure(1, 2, panel=(4.2, 3.8))
    left, right = axes[0]
    for cls, color in ((i, "tab:blue"), (j, "tab:red")):
        members = top1 == cls
        x1 = cos_to[members, i]
        x2 = (nj * cos_to[members, j] - along * cos_to[members, i]) / n2
        rho = float(np.asarray(a["mrl"])[cls])
        left.scatter(x1, x2, s=8, color=color, alpha=0.6, label=f"D_{cls} (ρ = {rho:.2f})")
    left.annotate(
        "", xy=(1.0, 0.0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "tab:blue"}
    )
    left.annotate(
        "",
        xy=(along / nj, n2 / nj),
        xytext=(0, 0),
        arrowprops={"arrowstyle": "->", "color": "tab:red"},
    )
    left.set_xlim(-1.05, 1.05)
    left.set_ylim(-1.05, 1.05)
    left.set_aspect("equal")
    left.set_title(f"classes {i} and {j}, step {chosen}", fontsize=9)
    _legend(left)
    image = right.imshow(_mean_cosines(gram), cmap="bwr", vmin=-1, vmax=1)
    fig.colorbar(image, ax=right, shrink=0.8)
    right.set_title(r"$\cos(\bar m^i, \bar m^j)$", fontsize=9)
    right.set_xlabel("class j")
    right.set_ylabel("class i")
    return _finish(fig, as_runs(runs), out)


def fig11(runs, step: int | None = None, out=None) -> Figure:
    """Figure 11: histograms of ‖Jq⁽ⁱ⁾‖ / (Σⱼ‖Jq⁽ʲ⁾‖ / C) and of cos²(Jq⁽ⁱ⁾, Jq⁽ʲ⁾) (i ≠ j)
    over the tracked examples, at the probe step nearest ``step`` (default: the last)."""
    run = one_run(runs, "fig11")
    chosen, a = _at_step(load_margins(run["run_dir"]), step)
    if "jq_ratios" not in a:
        raise ValueError(
            f"{run['run_dir']}: no per-example Jq statistics (probes.track_examples = 0)"
        )
    ratios = np.asarray(a["jq_ratios"], dtype=float)
    cos_sq = np.asarray(a["jq_cos_sq"], dtype=float)
    off = cos_sq[:, ~np.eye(cos_sq.shape[1], dtype=bool)]
    fig, axes = new_figure(1, 2, panel=(4.0, 3.0))
    axes[0, 0].hist(
        ratios[:, :-1].reshape(-1), bins=30, color="tab:blue"
    )  # the lambda = 0 column apart
    axes[0, 0].set_xlabel(r"$\|Jq^{(i)}\| / (\sum_j \|Jq^{(j)}\| / C)$")
    axes[0, 1].hist(off.reshape(-1), bins=30, color="tab:purple")
    axes[0, 1].set_xlabel(r"$\cos^2(Jq^{(i)}, Jq^{(j)})$")
    for ax in axes[0]:
        ax.set_ylabel("count")
        ax.set_title(f"step {chosen}, {ratios.shape[0]} examples", fontsize=9)
    return _finish(fig, as_runs(runs), out)


def fig33(runs, out=None) -> Figure:
    """Figure 33: the mean resultant length ρ of m / ‖m‖ within each D_i against step (undefined,
    so not drawn, while D_i is empty)."""
    run = one_run(runs, "fig33")
    data = load_margins(run["run_dir"])
    steps = np.array(list(data))
    mrl = np.stack([np.asarray(a["mrl"], dtype=float) for a in data.values()])
    fig, axes = new_figure(1, 1, panel=(5.0, 3.4))
    ax = axes[0, 0]
    for cls in range(mrl.shape[1]):
        ax.plot(steps, mrl[:, cls], marker=".", linewidth=1, label=f"D_{cls}")
    ax.set_xlabel("step")
    ax.set_ylabel(r"MRL $\rho$")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=6, ncol=2, frameon=False)
    return _finish(fig, as_runs(runs), out)
