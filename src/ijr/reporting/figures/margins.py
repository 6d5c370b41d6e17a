"""Figures 9, 11 and 31-33 of paper 000 (App. D): the directional data of m = √λ⁽¹⁾Jq⁽¹⁾
(``margins/step_<t>.npz``, :mod:`ijr.run_artifacts`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    as_runs,
    finish,
    legend,
    new_figure,
    one_run,
)
from ijr.run_artifacts import MARGINS_DIR, StepArrays


def load_margins(run_dir: str | os.PathLike) -> dict[int, dict]:
    """``margins/step_<t>.npz`` of a run as {step: arrays}; a clear error when it has none."""
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
    legend(left)
    image = right.imshow(_mean_cosines(gram), cmap="bwr", vmin=-1, vmax=1)
    fig.colorbar(image, ax=right, shrink=0.8)
    right.set_title(r"$\cos(\bar m^i, \bar m^j)$", fontsize=9)
    right.set_xlabel("class j")
    right.set_ylabel("class i")
    return finish(fig, as_runs(runs), out)


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
    return finish(fig, as_runs(runs), out)


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
    return finish(fig, as_runs(runs), out)
