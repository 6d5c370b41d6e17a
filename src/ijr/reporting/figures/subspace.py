"""Figures 8, 10, 30 and 34 of paper 000 (App. D): the rank-ordered ⟨QΛ^{1/2}⟩ heatmaps
(``logit_eigvecs.csv``) and the alignment of the gradient with the top Hessian subspace (eq. 48).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    as_runs,
    finish,
    legend,
    new_figure,
    one_run,
    plot_line,
    series,
)
from ijr.reporting.runs import load_metrics
from ijr.run_artifacts import EIGVEC_FILE_NAME as EIGVECS_FILE

EIGVECS_COLUMNS = ("step", "rank", "eigenpair", "value")


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
    return finish(fig, as_runs(runs), out)


GRAD_HESSIAN_COS = "probe/grad_hessian_cos"


GRAD_MARGIN_COS = "probe/grad_margin_cos"


GRAD_ALIGNMENT = "probe/grad_subspace_alignment"


HESSIAN_ALIGNMENT = "probe/hessian_subspace_alignment"


RANDOM_COS = "probe/random_direction_cos"


def _fig10_left(left, metrics) -> None:
    """|cos(g^D, r)| (log scale) with E|cos| of two random directions dashed."""
    plot_line(
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


def _fig10_right(right, metrics) -> None:
    """A_S(g^D) and A_S(r) (eq. 48), or a note while S is undefined."""
    plot_line(
        right,
        series(metrics, GRAD_ALIGNMENT),
        color="tab:blue",
        marker=".",
        label=r"$A_{\mathcal{S}}(g^{\mathcal{D}})$",
    )
    plot_line(
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
    _fig10_left(left, metrics)
    plot_line(
        middle,
        series(metrics, GRAD_MARGIN_COS),
        color="tab:red",
        marker=".",
        label=r"$\cos(-g, Jq^{(1)})$",
    )
    middle.set_ylim(-1.05, 1.05)
    _fig10_right(right, metrics)
    for ax in (left, middle, right):
        ax.set_xlabel("step")
        legend(ax)
    return finish(fig, as_runs(runs), out)
