"""Figures 6, 29 and 36 of paper 000 (§6): test accuracy and loss per epoch (SGD solid, EJR
dashed), and the final test accuracy over η × λ_reg.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    LINESTYLES,
    MetricsCache,
    as_runs,
    draw_panels,
    finish,
    legend,
    new_figure,
    setting_groups,
)
from ijr.reporting.naming import (
    config_label,
    dataset_name,
    metric_label,
)


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
    cache = MetricsCache()
    row_values = (
        sorted(set(frame[row_by].dropna().astype(str))) if row_by in frame.columns else [""]
    )
    fig, axes = new_figure(len(row_values), 2)
    for r, value in enumerate(row_values):
        subset = frame[frame[row_by].astype(str) == value] if value else frame
        groups = sorted(setting_groups(subset, style_by), key=lambda item: not _is_sgd(item[1]))
        draw_panels(
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
        legend(axes[r, 0])
    return finish(fig, frame, out)


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
        legend(ax)
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
    return finish(fig, frame, out)
