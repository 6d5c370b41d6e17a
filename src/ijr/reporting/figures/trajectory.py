"""Figures 3 and 27 of paper 000 (§5.3): UMAP of the parameter trajectory from its count sketches
(``trajectory.bin``, :mod:`ijr.run_artifacts`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    as_runs,
    finish,
    new_figure,
    one_run,
)
from ijr.run_artifacts import read_trajectory


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
    ``trajectory`` probe group; :mod:`ijr.run_artifacts`); UMAP runs with a fixed
    ``random_state`` so the figure is reproducible."""
    import umap

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
    return finish(fig, as_runs(runs), out)
