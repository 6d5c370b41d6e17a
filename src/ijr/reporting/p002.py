"""Figures and tables of companion paper 002 (MacDonald, Valmadre & Lucey) from run directories.

* :func:`fig1` — Figure 1 / App. B.1 Figs. 6-11: per learning rate (columns), the training loss
  minus the label entropy H(y_alpha) (:func:`ijr.methods.base.smoothed_label_entropy`), the
  sharpness and the softmaxed model's Jacobian norm against the iteration, line style = label
  smoothing, mean +- std over seeds;
* :func:`fig2`, :func:`fig3`, :func:`fig5` — Figures 2, 3-4 and 5 (App. B.2-B.3): end-of-training
  values against the swept key (weight decay; eta and B; each regulariser), line style = the
  other key, mean +- std over seeds;
* :func:`fig28` — Figures 28-29 (App. C.1): sharpness, Jacobian norm and output norm against the
  iteration, line style = label smoothing;
* :func:`tables` / :func:`write_tables` — Tables 1-2 (App. C.3): mean +- std over trials of the
  Jacobian norm max_i |f'(x_i)|, the sharpness and the first-layer weight norm;
* :func:`fig32` — Figure 32: the fits of the 8 points (the last checkpoint of each setting's
  first seed).

``ijr-report p002-fig1 --runs RUNS --out results/cpu/p002/fig1`` (likewise ``p002-fig2``,
``p002-fig3``, ``p002-fig5``, ``p002-fig28``, ``p002-fig32``; ``p002-tables`` writes
``OUT.md`` and ``OUT.csv``). Each report keeps the runs of its own experiments.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from matplotlib.figure import Figure

from ijr.methods.base import smoothed_label_entropy
from ijr.reporting.runs import load_metrics

ALPHA, LR = "loss.label_smoothing", "optim.lr"
SHARP, JAC = "probe/sharpness", "probe/io_jacobian_max"
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
FIG5 = {  # experiment -> its swept key (Figure 5's x axes)
    "p002_fig5_label_smoothing": ALPHA,
    "p002_fig5_mixup": "data.mixup_beta",
    "p002_fig5_augment": "data.augment_p",
    "p002_fig5_sam": "method.rho",
}
END_METRICS = ("final.probe/gen_gap_loss", "final." + SHARP, "final." + JAC)
C3 = {
    "p002_c3_gaussian": "model.kwargs.first_layer_std",
    "p002_c3_relu": "model.kwargs.pretrain_frequency",
}
C3_ROWS = {
    "Jacobian norm": "final.probe/io_jacobian_raw_max",
    "sharpness": "final." + SHARP,
    "First layer weight norm": "final.probe/layer_norm/1.weight",
}


def _of(runs: pd.DataFrame, experiments, what: str) -> pd.DataFrame:
    """The completed runs of ``experiments``; a one-line ValueError when there are none."""
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    done = runs[runs["experiment"].isin(names) & (runs["status"] == "completed")]
    if done.empty:
        raise ValueError(f"{what}: no completed run of {', '.join(names)} under --runs")
    return done


def _figure(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), layout="constrained")
    return fig, np.atleast_2d(fig.subplots(rows, cols, squeeze=False))


def _mean_curve(
    run_dirs, metric: str, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean and std over runs of ``metric`` (minus ``shift``) at the steps all runs logged."""
    series = []
    for run_dir in run_dirs:
        frame = load_metrics(run_dir)
        if metric in frame.columns:
            rows = frame[frame[metric].notna()]
            series.append(pd.Series(rows[metric].to_numpy(float) - shift, index=rows["step"]))
    if not series:
        return np.array([]), np.array([]), np.array([])
    table = pd.concat(series, axis=1, join="inner")
    return (
        table.index.to_numpy(),
        table.mean(axis=1).to_numpy(),
        table.std(axis=1, ddof=0).to_numpy(),
    )


def _band(ax, steps, mean, std, **style) -> None:
    if len(steps):
        ax.plot(steps, mean, lw=1, **style)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2, color=ax.lines[-1].get_color())


def fig1(runs: pd.DataFrame) -> Figure:
    """Figure 1 / Figs. 6-11: columns = learning rates, rows = loss - H(y_alpha), ||H||, ||J||."""
    runs = _of(runs, "p002_fig1_label_smoothing", "p002-fig1")
    lrs = sorted(runs[LR].unique(), reverse=True)
    fig, axes = _figure(3, len(lrs))
    styles = ("-", "--", ":", "-.")
    for col, lr in enumerate(lrs):
        at_lr = runs[runs[LR] == lr]
        for k, alpha in enumerate(sorted(at_lr[ALPHA].unique())):
            group = at_lr[at_lr[ALPHA] == alpha]
            classes = NUM_CLASSES.get(str(group["data.name"].iloc[0]), 10)
            entropy = smoothed_label_entropy(float(alpha), classes)
            label = f"alpha={alpha:g} (n={len(group)})"
            for row, (metric, shift) in enumerate(
                ((("train/loss"), entropy), (SHARP, 0.0), (JAC, 0.0))
            ):
                steps, mean, std = _mean_curve(group["run_dir"], metric, shift)
                _band(axes[row, col], steps, mean, std, ls=styles[k % 4], label=label)
        axes[0, col].set(title=f"eta={lr:g}", ylabel="loss - label entropy", yscale="log")
        axes[1, col].set(ylabel="sharpness")
        axes[2, col].set(ylabel="Jacobian norm (softmax)", yscale="log", xlabel="iteration")
        axes[0, col].legend(fontsize=7)
    return fig


def fig30(runs: pd.DataFrame) -> Figure:
    """Figures 30-31 (App. C.2): rows = activation (ReLU: Fig. 30, tanh: Fig. 31), columns = the
    sharpness and the softmaxed model's Jacobian norm against the iteration; colour = input
    scaling, line style = label smoothing; mean +- std over seeds."""
    runs = _of(runs, "p002_input_scaling", "p002-fig30")
    acts = sorted(runs["model.kwargs.activation"].unique())
    scales = sorted(runs["data.input_scale"].unique())
    fig, axes = _figure(len(acts), 2)
    styles = ("-", "--", ":", "-.")
    for row, act in enumerate(acts):
        for (scale, alpha), group in runs[runs["model.kwargs.activation"] == act].groupby(
            ["data.input_scale", ALPHA]
        ):
            style = {
                "color": f"C{scales.index(scale)}",
                "ls": styles[sorted(runs[ALPHA].unique()).index(alpha) % 4],
                "label": f"scale={scale:g}, alpha={alpha:g} (n={len(group)})",
            }
            for col, metric in enumerate((SHARP, JAC)):
                _band(axes[row, col], *_mean_curve(group["run_dir"], metric), **style)
        axes[row, 0].set(title=f"{act}: sharpness", ylabel="sharpness")
        axes[row, 1].set(title=f"{act}: Jacobian norm (softmax)", yscale="log")
        axes[row, 0].legend(fontsize=6)
    for ax in axes[-1]:
        ax.set(xlabel="iteration")
    return fig


def _sweep_panels(axes_row, runs: pd.DataFrame, x_key: str, style_key: str, metrics) -> None:
    """End-of-training ``metrics`` against ``x_key``, one line per ``style_key`` value."""
    styles = ("-o", "--s", ":^", "-.v", "-D")
    for k, (value, group) in enumerate(runs.groupby(style_key, dropna=False)):
        stats = group.groupby(x_key)[list(metrics)].agg(["mean", "std"])
        for ax, metric in zip(axes_row, metrics, strict=True):
            mean, std = stats[(metric, "mean")], stats[(metric, "std")].fillna(0.0)
            ax.errorbar(
                mean.index.astype(float),
                mean,
                yerr=std,
                fmt=styles[k % 5],
                ms=3,
                lw=1,
                capsize=2,
                label=f"{style_key.split('.')[-1]}={value}",
            )
    for ax, metric in zip(axes_row, metrics, strict=True):
        ax.set(xlabel=x_key, ylabel=metric.removeprefix("final.probe/"))
    axes_row[0].legend(fontsize=7)


def fig2(runs: pd.DataFrame) -> Figure:
    """Figure 2: Jacobian norm, sharpness and gap against the weight decay; style = eta."""
    runs = _of(runs, "p002_fig2_weight_decay", "p002-fig2")
    fig, axes = _figure(1, 3)
    _sweep_panels(axes[0], runs, "optim.weight_decay", LR, END_METRICS)
    return fig


def fig3(runs: pd.DataFrame) -> Figure:
    """Figures 3-4: against eta (style B), then against B (style eta); one block per model."""
    runs = _of(runs, "p002_fig3_lr_batch", "p002-fig3")
    models = sorted(runs["model.name"].unique())
    fig, axes = _figure(2 * len(models), 3)
    for m, model in enumerate(models):
        of_model = runs[runs["model.name"] == model]
        _sweep_panels(axes[2 * m], of_model, LR, "data.batch_size", END_METRICS)
        _sweep_panels(axes[2 * m + 1], of_model, "data.batch_size", LR, END_METRICS)
        axes[2 * m, 0].set_title(model)
        axes[2 * m, 0].set_xscale("log")
    return fig


def fig5(runs: pd.DataFrame) -> Figure:
    """Figure 5 / Figs. 20-27: one row per (regulariser, model); style = initial eta."""
    runs = _of(runs, list(FIG5), "p002-fig5")
    metrics = (*END_METRICS, "final.probe/sharpness_gn", "final.test/acc")
    blocks = [
        (exp, model, group)
        for exp in FIG5
        for model, group in runs[runs["experiment"] == exp].groupby("model.name")
    ]
    fig, axes = _figure(len(blocks), len(metrics))
    for row, (exp, model, group) in enumerate(blocks):
        present = [m for m in metrics if m in group.columns]
        _sweep_panels(axes[row][: len(present)], group, FIG5[exp], LR, present)
        axes[row, 0].set_title(f"{exp.removeprefix('p002_fig5_')}, {model}")
    return fig


def fig28(runs: pd.DataFrame) -> Figure:
    """Figures 28-29: sharpness, Jacobian norm, output norm; one row per experiment."""
    runs = _of(runs, ["p002_fig28_first_epoch", "p002_fig29_long"], "p002-fig28")
    experiments = sorted(runs["experiment"].unique())
    fig, axes = _figure(len(experiments), 3)
    for row, exp in enumerate(experiments):
        of_exp = runs[runs["experiment"] == exp]
        for k, (alpha, group) in enumerate(of_exp.groupby(ALPHA)):
            for ax, metric in zip(axes[row], (SHARP, JAC, "probe/logit_norm"), strict=True):
                _band(
                    ax,
                    *_mean_curve(group["run_dir"], metric),
                    ls=("-", "--", ":")[k % 3],
                    label=f"alpha={alpha:g}",
                )
                ax.set(xlabel="iteration", ylabel=metric.removeprefix("probe/"))
        axes[row, 0].set_title(exp)
        axes[row, 0].legend(fontsize=7)
    return fig


def _frequency(experiment: str, value) -> str:
    """App. C.3's names: Gaussian default init / ReLU pretrained = high frequency."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "High freq." if missing == (experiment == "p002_c3_gaussian") else "Low freq."


def tables(runs: pd.DataFrame) -> pd.DataFrame:
    """Tables 1-2: one row per (network, norm), columns High / Low freq. as 'mean +- std (n)'."""
    runs = _of(runs, list(C3), "p002-tables").copy()
    runs["init"] = [
        _frequency(r["experiment"], r.get(C3[r["experiment"]])) for _, r in runs.iterrows()
    ]
    rows = []
    for exp in C3:
        of_exp = runs[runs["experiment"] == exp]
        for norm, column in C3_ROWS.items():
            row = {"network": exp.removeprefix("p002_c3_"), "norm": norm}
            for init in ("High freq.", "Low freq."):
                values = of_exp.loc[of_exp["init"] == init, column].dropna().astype(float)
                row[init] = (
                    f"{values.mean():.2f} +- {values.std(ddof=1):.2f} (n={len(values)})"
                    if len(values)
                    else "missing"
                )
            rows.append(row)
    return pd.DataFrame(rows)


def write_tables(frame: pd.DataFrame, out: str | Path) -> list[Path]:
    """``OUT.md`` (a Markdown table) and ``OUT.csv``."""
    stem = Path(out).with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, csv = stem.with_suffix(".md"), stem.with_suffix(".csv")
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.to_numpy())
    md.write_text("Paper 002, App. C.3, Tables 1-2 (mean +- std over trials)\n\n" + header + body)
    frame.to_csv(csv, index=False)
    return [md, csv]


def _fitted(run_dir: str) -> torch.nn.Module:
    """The model of a finished App. C.3 run at its last checkpoint (no pretraining rerun)."""
    from ijr.models import build

    config = yaml.safe_load((Path(run_dir) / ".hydra" / "config.yaml").read_text())
    kwargs = dict(config["model"].get("kwargs") or {}, pretrain_frequency=None)
    model = build(config["model"]["name"], 1, (1,), **kwargs)
    state = torch.load(
        Path(run_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    return model.eval()


def fig32(runs: pd.DataFrame) -> Figure:
    """Figure 32: the fits of the 8 points from both initialisations (first seed of each)."""
    from ijr.data.sources import points_xy

    runs = _of(runs, list(C3), "p002-fig32")
    fig, axes = _figure(1, len(runs["experiment"].unique()))
    grid = torch.linspace(0.0, 1.0, 400).unsqueeze(1)
    for ax, (exp, of_exp) in zip(axes[0], runs.groupby("experiment"), strict=True):
        first = of_exp.sort_values("seed").drop_duplicates(C3[exp], keep="first")
        for _, row in first.iterrows():
            with torch.no_grad():
                fit = _fitted(row["run_dir"])(grid).reshape(-1).numpy()
            ax.plot(
                grid.reshape(-1).numpy(),
                fit,
                lw=1,
                label=f"{_frequency(exp, row.get(C3[exp]))} (seed {row['seed']})",
            )
        x, y = points_xy(
            int(of_exp["data.n_points"].iloc[0]), int(of_exp["data.data_seed"].iloc[0])
        )
        ax.scatter(x.reshape(-1), y.reshape(-1), color="k", zorder=3, s=12, label="targets")
        ax.set(title=exp.removeprefix("p002_c3_"), xlabel="x", ylabel="f(x)")
        ax.legend(fontsize=7)
    return fig


REPORTS = {
    "p002-fig1": fig1,
    "p002-fig2": fig2,
    "p002-fig3": fig3,
    "p002-fig5": fig5,
    "p002-fig28": fig28,
    "p002-fig32": fig32,
}
