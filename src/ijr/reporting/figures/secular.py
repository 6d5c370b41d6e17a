"""Figure 7 of paper 000 (App. B, eq. (10)): the secular function of the logit Hessian for one
probability vector (no runs needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    legend,
    new_figure,
    save_figure,
)

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
    legend(ax)
    if out is not None:
        save_figure(fig, out)
    return fig
