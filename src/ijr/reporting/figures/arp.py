"""Figures 4 and 5 of paper 000 (§5, the active regularization period): the three IJR phases of
one run (Fig. 4) and settings compared with the ARP end marked (Fig. 5, 22-25).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    ARP_END_IMPURITY,
    IMPURITY,
    JACOBIAN,
    SGD_THRESHOLD,
    SHARPNESS,
    MetricsCache,
    arp_steps,
    as_runs,
    draw_arp_end,
    draw_panels,
    finish,
    is_missing,
    legend,
    new_figure,
    one_run,
    plot_line,
    quantile_band,
    run_lr,
    series,
    setting_groups,
    threshold_line,
)
from ijr.reporting.naming import (
    METRIC_COLORS,
    TRAIN_SIZES,
    metric_label,
)
from ijr.reporting.runs import load_metrics, select_runs


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
    plot_line(top, jac, color=METRIC_COLORS[JACOBIAN], label=metric_label(JACOBIAN))
    plot_line(
        twin,
        series(metrics, SHARPNESS),
        color=METRIC_COLORS[SHARPNESS],
        label=metric_label(SHARPNESS),
    )
    plot_line(
        twin,
        series(metrics, SGD_THRESHOLD),
        color=METRIC_COLORS[SHARPNESS],
        linestyle="--",
        linewidth=1.0,
        label=metric_label(SGD_THRESHOLD),
    )
    threshold_line(twin, run_lr(run))
    twin.legend(fontsize=7, frameon=False, loc="center right")
    top.set_ylabel(metric_label(JACOBIAN), color=METRIC_COLORS[JACOBIAN])
    twin.set_ylabel(metric_label(SHARPNESS), color=METRIC_COLORS[SHARPNESS])
    quantile_band(bottom, metrics, "probe/impurity_q25", "probe/impurity_q75", "step", "moccasin")
    plot_line(
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
    draw_arp_end(top, run, jac, end, color=METRIC_COLORS[JACOBIAN])
    legend(bottom)
    return finish(fig, as_runs(runs), out)


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


def _noise_scale(group: pd.DataFrame) -> float:
    """Mean η/B of a setting's runs (full batch: B = the training-set size); inf without one."""
    ratios = []
    for _, run in group.iterrows():
        lr, batch = run_lr(run), run.get("data.batch_size")
        if isinstance(batch, str) and batch.strip().lower() == "full":
            subset = run.get("data.subset")
            batch = subset if not is_missing(subset) else TRAIN_SIZES.get(str(run.get("data.name")))
        try:
            ratios.append(lr / float(batch))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return float(np.mean(ratios)) if ratios else math.inf


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
    cache = MetricsCache()
    for r, where in enumerate(rows):
        subset = select_runs(frame, where)
        if subset.empty:
            raise ValueError(f"fig5 row {r + 1}: no run matches {dict(where)}")
        draw_panels(
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
        legend(axes[r, 0])
    return finish(fig, frame, out)
