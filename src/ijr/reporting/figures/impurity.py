"""Figure 1 of paper 000 (§4.2, Theorem 4.1 (c)-(d)): the impurity λ⁽¹⁾ of tracked examples
against p₍₁₎ with its Gini bounds, and the mean impurity ⟨λ⁽¹⁾⟩ over training.

Input of Fig. 1 (top): ``<run_dir>/probe_examples.csv`` (:mod:`ijr.run_artifacts`), long format,
one row per (probe step, tracked example): ``step``, ``example`` (position in the probe set),
``p_top1`` (p₍₁₎), ``impurity`` (λ⁽¹⁾ of M = diag(p) − ppᵀ) and ``p_true`` (not plotted).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    IMPURITY,
    as_runs,
    finish,
    legend,
    new_figure,
    one_run,
    plot_line,
    quantile_band,
    series,
)
from ijr.reporting.naming import (
    metric_label,
)
from ijr.reporting.runs import load_metrics
from ijr.run_artifacts import FILE_NAME as EXAMPLES_FILE

EXAMPLES_COLUMNS = ("step", "example", "p_top1", "impurity")  # required; p_true is not plotted


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


def _fig1_top(fig, top, run: pd.Series, examples: pd.DataFrame | None, example) -> None:
    """Theorem 4.1's bounds and, when the run tracked examples, one example's (p₍₁₎, λ⁽¹⁾)."""
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
            stacklevel=3,
        )
        top.text(
            0.5,
            0.9,
            f"no per-example data ({EXAMPLES_FILE})",
            transform=top.transAxes,
            ha="center",
            fontsize=8,
        )


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
    _fig1_top(fig, top, run, examples, example)
    top.set_xlabel(r"$p_{(1)}$")
    top.set_ylabel(r"$\lambda^{(1)}$")
    legend(top)
    quantile_band(bottom, metrics, "probe/impurity_q25", "probe/impurity_q75", "step", "skyblue")
    plot_line(bottom, series(metrics, IMPURITY), color="tab:blue", label=metric_label(IMPURITY))
    bottom.set_xlabel("step")
    bottom.set_ylabel(r"$\lambda^{(1)}$")
    legend(bottom)
    return finish(fig, as_runs(runs), out)
