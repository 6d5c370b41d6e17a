"""Shared plotting helpers of the paper's figures: the runs frame, metric series, line styles per
setting, footers and saving (PNG + PDF). Figures are built without pyplot (no global state, no
display needed).
"""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.naming import (
    METRIC_COLORS,
    PERCENT_METRICS,
    config_label,
    metric_label,
)
from ijr.reporting.runs import load_metrics, load_runs, varying_keys

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


class MetricsCache:
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


def clip(values: pd.Series, steps: tuple[float, float] | None) -> pd.Series:
    if steps is None:
        return values
    lo, hi = steps
    return values[(values.index >= lo) & (values.index <= hi)]


def run_lr(run: pd.Series) -> float | None:
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
            config_label(k, v) for k, v in zip(keys, values, strict=True) if not is_missing(v)
        )
        groups.append((tuple(order_key(v) for v in values), label, group))
    groups.sort(key=lambda item: item[0])
    return [(label, group) for _, label, group in groups]


def order_key(value) -> tuple:
    """Sort key for mixed config values: numbers by value, then strings (``full`` after 50000)."""
    if is_missing(value):
        return (2, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value))
    return (1, str(value))


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mean_curve(group: pd.DataFrame, metric: str, x: str, metrics: MetricsCache) -> pd.Series:
    """``metric`` averaged over the runs (seeds) of one setting, at the x values they share."""
    curves = [series(metrics(run), metric, x) for _, run in group.iterrows()]
    curves = [c for c in curves if not c.empty]
    if not curves:
        return pd.Series(dtype=float)
    if len(curves) == 1:
        return curves[0]
    return pd.concat(curves, axis=1, join="inner").mean(axis=1)


def linestyle(label_index: int, group: pd.DataFrame, by_method: bool) -> object:
    if by_method:
        methods = set(group["method.name"].dropna()) if "method.name" in group.columns else set()
        if len(methods) == 1:
            return METHOD_STYLES.get(methods.pop(), LINESTYLES[label_index % len(LINESTYLES)])
    return LINESTYLES[label_index % len(LINESTYLES)]


def expand_metrics(runs: pd.DataFrame, patterns: Sequence[str], metrics: MetricsCache) -> list[str]:
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
    lo, hi = clip(series(metrics, low, x), steps), clip(series(metrics, high, x), steps)
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


def plot_line(ax, values: pd.Series, **kwargs):
    if values.empty:
        return None
    return ax.plot(values.index, values.to_numpy(), **kwargs)[0]


def footer(fig: Figure, runs: pd.DataFrame) -> None:
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


def legend(ax) -> None:
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


def finish(fig: Figure, runs: pd.DataFrame, out) -> Figure:
    footer(fig, runs)
    if out is not None:
        save_figure(fig, out)
    return fig


def draw_arp_end(ax, run: pd.Series, curve: pd.Series, end, color: str) -> None:
    """'x' at the end of the ARP on the ‖⟨J⟩‖² curve (value from the summary marker if present)."""
    if end is None or curve.empty:
        return
    value = run.get("marker.arp_end_jacobian_norm_sq")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = float(np.interp(end, curve.index.to_numpy(dtype=float), curve.to_numpy()))
    ax.plot(
        [end], [value], marker="x", markersize=8, markeredgewidth=2, color=color, linestyle="none"
    )


def draw_panels(
    axes_row, metrics_names, groups, cache, x, smoothing, steps, mark_arp_end, by_method, logy
):
    for ax, metric in zip(axes_row, metrics_names, strict=True):
        for i, (label, group) in enumerate(groups):
            curve = smooth(clip(mean_curve(group, metric, x, cache), steps), smoothing)
            color = METRIC_COLORS.get(metric, f"C{i % 10}") if not by_method else f"C{i % 10}"
            plot_line(
                ax,
                curve,
                color=color,
                linestyle=linestyle(i, group, by_method),
                label=label or None,
            )
            if mark_arp_end and metric in (JACOBIAN, IMPURITY) and x == "step":
                for _, run in group.iterrows():
                    _, end = arp_steps(run, cache(run))
                    raw = series(cache(run), metric, x)
                    if metric == JACOBIAN:
                        draw_arp_end(ax, run, raw, end, color)
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
