"""Figures of companion paper 004 (Li, Wang & Li) from run directories.

* :func:`fig1` — Figure 1: the sharpness Lambda = lambda_max(M) with 2/eta, and the loss, per run,
  the four EOS phases shaded from ``eos/phase`` (boundaries as in ``summary.json`` markers);
* :func:`fig2` — Figure 2: Lambda against ||A||^2 along the trajectory, the anomaly points
  (``eos/anomaly`` = 1: sign(Delta Lambda) != sign(Delta ||A||)) in orange, the anomaly fraction
  in the title;
* :func:`fig3` — Figure 3: (a) lambda_max(M), lambda_2(M), lambda_max(M_A) with 1/eta and 2/eta;
  (b) ||D||^2/n, ||R||^2/n and |D^T v_1|;
* :func:`sec4` — Section 4: lambda_max(M) over its Theorem-1 approximation, the alignment of
  v_1(M) with the data's top direction, and the sharpness with 2/eta.

``ijr-report p004-fig1 --runs RUNS/p004_fig1_phases --out results/cpu/p004/fig1`` (likewise
``p004-fig2``, ``p004-fig3``, ``p004-sec4``) writes ``OUT.png`` and ``OUT.pdf``; one row of panels
per run (at most :data:`MAX_RUNS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ijr.reporting.render import markdown_lines, write_texts
from ijr.reporting.runs import load_metrics

MAX_RUNS = 4
PHASE_COLOURS = {1: "#e8f1fa", 2: "#fde2c8", 3: "#f8c8c8", 4: "#e0f0d8"}
LAMBDA, THRESHOLD = "probe/gram_max", "probe/stability_threshold"


def _runs_with(runs: pd.DataFrame, metric: str, what: str) -> list[tuple[str, pd.DataFrame]]:
    """(label, metrics) of the first :data:`MAX_RUNS` runs that logged ``metric``."""
    out = []
    for _, row in runs.sort_values("run_dir").iterrows():
        frame = load_metrics(row["run_dir"])
        if metric in frame.columns and frame[metric].notna().any():
            out.append((_label(row), frame))
        if len(out) == MAX_RUNS:
            break
    if not out:
        raise ValueError(f"{what}: no run logged {metric} (probes.expensive needs gram)")
    return out


def _label(row: pd.Series) -> str:
    parts = [f"{row.get('model.name')}"]
    act = row.get("model.kwargs.activation")
    if isinstance(act, str):
        parts.append(act)
    parts.append(f"eta={row.get('optim.lr')}")
    parts.append(f"seed={row.get('seed')}")
    return ", ".join(parts)


def _series(frame: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = frame[frame[metric].notna()] if metric in frame.columns else frame.iloc[:0]
    return rows["step"].to_numpy(), rows[metric].to_numpy(dtype=float)


def _shade_phases(ax, frame: pd.DataFrame) -> None:
    steps, phases = _series(frame, "eos/phase")
    if not len(steps):
        return
    start = 0
    for i in range(1, len(steps) + 1):
        if i == len(steps) or phases[i] != phases[start]:
            end = steps[i] if i < len(steps) else steps[-1]
            ax.axvspan(steps[start], end, color=PHASE_COLOURS[int(phases[start])], lw=0)
            start = i


def _figure(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(4.6 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def fig1(runs: pd.DataFrame) -> Figure:
    """Figure 1: sharpness and loss with the four phases shaded."""
    items = _runs_with(runs, LAMBDA, "p004-fig1")
    fig, axes = _figure(len(items), 2)
    for (label, frame), (ax_s, ax_l) in zip(items, axes, strict=True):
        for ax in (ax_s, ax_l):
            _shade_phases(ax, frame)
        ax_s.plot(
            *_series(frame, LAMBDA), color="tab:blue", lw=1, label=r"$\Lambda=\lambda_{max}(M)$"
        )
        ax_s.plot(*_series(frame, THRESHOLD), color="k", ls="--", lw=1, label=r"$2/\eta$")
        ax_s.set(xlabel="iteration", ylabel="sharpness", title=label)
        ax_s.legend(fontsize=7)
        ax_l.plot(*_series(frame, "probe/gram_loss"), color="tab:red", lw=1)
        ax_l.set(
            xlabel="iteration", ylabel="training loss", yscale="log", title="phases I-IV shaded"
        )
    fig.text(0.005, 0.002, "blue I, orange II, red III, green IV", fontsize=7, color="0.4")
    return fig


def fig2(runs: pd.DataFrame) -> Figure:
    """Figure 2: Lambda against ||A||^2 with the anomaly points."""
    items = _runs_with(runs, LAMBDA, "p004-fig2")
    fig, axes = _figure(1, len(items))
    for (label, frame), ax in zip(items, axes[0], strict=True):
        both = frame[frame[LAMBDA].notna() & frame["probe/output_layer_norm"].notna()]
        a_sq = both["probe/output_layer_norm"].to_numpy() ** 2
        lam = both[LAMBDA].to_numpy()
        ax.plot(a_sq, lam, color="tab:blue", lw=0.8, marker=".", ms=2)
        flags = (
            both["eos/anomaly"].to_numpy() if "eos/anomaly" in both.columns else np.zeros(len(both))
        )
        hit = flags == 1
        ax.scatter(a_sq[hit], lam[hit], color="tab:orange", s=12, zorder=3, label="anomaly")
        pairs = int(np.isfinite(flags).sum())
        frac = float(hit.sum()) / pairs if pairs else float("nan")
        ax.set(
            xlabel=r"$\|A\|^2$",
            ylabel=r"$\Lambda$",
            title=f"{label}\nanomalies {int(hit.sum())}/{pairs} = {frac:.3f}",
        )
        ax.legend(fontsize=7)
    return fig


def fig3(runs: pd.DataFrame) -> Figure:
    """Figure 3: (a) the spectrum of M; (b) ||D||^2/n, ||R||^2/n and |D^T v_1|."""
    items = _runs_with(runs, LAMBDA, "p004-fig3")
    fig, axes = _figure(len(items), 2)
    for (label, frame), (ax_a, ax_b) in zip(items, axes, strict=True):
        ax_a.plot(*_series(frame, LAMBDA), lw=1, color="steelblue", label=r"$\lambda_{max}(M)$")
        ax_a.plot(
            *_series(frame, "probe/gram_second"), lw=1, color="tab:orange", label=r"$\lambda_2(M)$"
        )
        ax_a.plot(
            *_series(frame, "probe/gram_output_max"),
            lw=1,
            color="tab:blue",
            label=r"$\lambda_{max}(M_A)$",
        )
        steps, two_over_eta = _series(frame, THRESHOLD)
        ax_a.plot(steps, two_over_eta, "k--", lw=1, label=r"$2/\eta$")
        ax_a.plot(steps, two_over_eta / 2, "k:", lw=1, label=r"$1/\eta$")
        ax_a.set(xlabel="iteration", ylabel="eigenvalue", title=label)
        ax_a.legend(fontsize=7)
        ax_b.plot(*_series(frame, "probe/gram_loss"), lw=1, color="tab:red", label=r"$\|D\|^2/n$")
        ax_b.plot(
            *_series(frame, "probe/gram_rest_loss"), lw=1, color="tab:green", label=r"$\|R\|^2/n$"
        )
        ax_b.set(xlabel="iteration", yscale="log")
        twin = ax_b.twinx()
        twin.plot(*_series(frame, "probe/gram_d_v1"), lw=0.8, color="0.4", label=r"$|D^\top v_1|$")
        twin.set(ylabel=r"$|D^\top v_1|$", yscale="log")
        ax_b.legend(fontsize=7, loc="upper right")
    return fig


def sec4(runs: pd.DataFrame) -> Figure:
    """Section 4: Theorem 1's approximation of M, the alignment of v_1, and the sharpness."""
    items = _runs_with(runs, "probe/gram_theory_ratio", "p004-sec4")
    fig, axes = _figure(len(items), 3)
    for (label, frame), (ax_r, ax_v, ax_s) in zip(items, axes, strict=True):
        for ax in (ax_r, ax_v, ax_s):
            _shade_phases(ax, frame)
        ax_r.plot(*_series(frame, "probe/gram_theory_ratio"), lw=1)
        ax_r.axhline(1.0, color="k", ls="--", lw=0.8)
        ax_r.set(
            xlabel="iteration", ylabel="ratio", title=r"$\lambda_{max}(M)$ / Theorem 1 approx."
        )
        ax_v.plot(*_series(frame, "probe/gram_v1_input_alignment"), lw=1)
        ax_v.set(
            xlabel="iteration",
            ylabel=r"$|\langle v_1(M), u_1(XX^\top)\rangle|$",
            ylim=(0, 1.05),
            title=label,
        )
        ax_s.plot(*_series(frame, LAMBDA), lw=1, label=r"$\Lambda$")
        ax_s.plot(*_series(frame, THRESHOLD), "k--", lw=1, label=r"$2/\eta$")
        ax_s.set(xlabel="iteration", ylabel="sharpness")
        ax_s.legend(fontsize=7)
    return fig


MARKERS = (
    "eos_first_phase2_step",
    "eos_first_phase4_step",
    "eos_cycles",
    "anomaly_count",
    "anomaly_pairs",
    "anomaly_fraction",
    "dv1_growth_fraction",
    "rest_decrease_fraction",
    "loss_decrease_fraction",
)
EXTREMES = (  # (column, metric, statistic) measured over the logged probes
    ("max Lambda / (2/eta)", "probe/gram_max/threshold", "max"),
    ("max lambda_2 / (1/eta)", "probe/gram_second/half_threshold", "max"),
    ("max lambda_max(M_A) / max Lambda", "probe/gram_output_max/gram_max", "max"),
    ("min theory ratio before phase II", "probe/gram_theory_ratio", "min_before"),
    ("max theory ratio before phase II", "probe/gram_theory_ratio", "max_before"),
    ("min v1 alignment before phase II", "probe/gram_v1_input_alignment", "min_before"),
    ("input Gram gap", "probe/input_gram_gap", "first"),
)


def _extreme(frame: pd.DataFrame, spec: str, stat: str, phase2: float | None) -> float:
    if spec.endswith("/threshold") or spec.endswith("/half_threshold"):
        metric = spec.rsplit("/", 1)[0]
        if metric not in frame.columns:
            return float("nan")
        level = frame[THRESHOLD] / (2.0 if spec.endswith("half_threshold") else 1.0)
        return float((frame[metric] / level).max())
    if spec == "probe/gram_output_max/gram_max":
        if "probe/gram_output_max" not in frame.columns:
            return float("nan")
        return float(frame["probe/gram_output_max"].max() / frame[LAMBDA].max())
    if spec not in frame.columns:
        return float("nan")
    values = frame[spec]
    if stat.endswith("_before"):
        values = values[frame["step"] < phase2] if phase2 is not None else values
        return float(values.min() if stat.startswith("min") else values.max())
    return float(values.dropna().iloc[0]) if values.notna().any() else float("nan")


def markers_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its EOS-phase / anomaly markers (summary.json) and the extremes of the
    Gram quantities the paper's statements are about, measured from metrics.csv."""
    rows = []
    for _, run in runs.sort_values("run_dir").iterrows():
        frame = load_metrics(run["run_dir"])
        if LAMBDA not in frame.columns:
            continue
        record = {
            "experiment": run.get("experiment"),
            "run": _label(run),
            "steps": run.get("steps"),
        }
        for name in MARKERS:
            record[name] = run.get(f"marker.{name}")
        phase2 = record["eos_first_phase2_step"]
        phase2 = None if phase2 is None or pd.isna(phase2) else float(phase2)
        for column, spec, stat in EXTREMES:
            record[column] = _extreme(frame, spec, stat, phase2)
        rows.append(record)
    if not rows:
        raise ValueError(f"p004-markers: no run logged {LAMBDA} (probes.expensive needs gram)")
    return pd.DataFrame(rows)


def write_markers(frame: pd.DataFrame, out) -> list:
    """``OUT.md`` and ``OUT.csv`` of :func:`markers_table` (transposed: one column per run)."""
    table = frame.set_index("run").T
    rows = [
        [name, *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)]
        for name, values in table.iterrows()
    ]
    md = "\n".join(markdown_lines(["quantity", *map(str, table.columns)], rows)) + "\n"
    csv_path, md_path = write_texts(out, {"csv": frame.to_csv(index=False), "md": md})
    return [md_path, csv_path]


__all__ = ["MARKERS", "fig1", "fig2", "fig3", "markers_table", "sec4", "write_markers"]
