"""Figure 2 of paper 000 (§5.1-5.2; also Figs. 15-21, 26, 35 with other metrics): sharpness and
‖J‖² on twin axes per step window, with the 2/η threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    JACOBIAN,
    SHARPNESS,
    as_runs,
    clip,
    finish,
    legend,
    new_figure,
    one_run,
    plot_line,
    run_lr,
    series,
    threshold_line,
)
from ijr.reporting.naming import (
    METRIC_COLORS,
    metric_label,
)
from ijr.reporting.runs import load_metrics


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
        plot_line(
            ax,
            clip(series(metrics, left), window),
            color=METRIC_COLORS.get(left, "tab:purple"),
            label=metric_label(left),
        )
        plot_line(
            twin,
            clip(series(metrics, right), window),
            color=METRIC_COLORS.get(right, "tab:red"),
            label=metric_label(right),
        )
        if threshold:
            threshold_line(ax, run_lr(run))
        ax.set_xlabel("step")
        ax.set_ylabel(metric_label(left), color=METRIC_COLORS.get(left, "tab:purple"))
        twin.set_ylabel(metric_label(right), color=METRIC_COLORS.get(right, "tab:red"))
        if window is not None:
            ax.set_title(f"steps {window[0]:g}–{window[1]:g}", fontsize=9)
        legend(ax)
    return finish(fig, as_runs(runs), out)
