"""ijr.reporting and ijr-report on a fixed set of hand-written run directories.

The fixture writes `.hydra/config.yaml`, `summary.json` and `metrics.csv` by hand with
deterministic numbers: completed, diverged, failed, running and summary-less runs, two seeds in
some cells and a missing seed in others, two profiles, and probe curves for the figures.
Table 1 of the quick runs is compared with tests/golden/table1_quick.{md,csv}; regenerate those
deliberately with `IJR_UPDATE_GOLDEN=1 pytest tests/test_reporting.py`.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.image import AxesImage

from ijr import report
from ijr.reporting import (
    curves,
    delta_acc,
    error_reduction_rate,
    fig1,
    fig2,
    fig4,
    fig5,
    fig6,
    fig36,
    impurity_bounds,
    load_metrics,
    load_paper_table,
    load_runs,
    save_figure,
    select_runs,
    table1,
    table5,
    table6,
    to_csv,
    to_latex,
    to_markdown,
    write_table,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("IJR_UPDATE_GOLDEN") == "1"


# ----------------------------------------------------------------------------- fixture
def _config(
    experiment,
    method,
    lr,
    batch_size,
    seed,
    *,
    model="simplecnn",
    dataset="cifar10",
    profile="quick",
    subset=5000,
    max_epochs=None,
    sched=None,
    **method_kwargs,
):
    return {
        "experiment_name": experiment,
        "seed": seed,
        "resume": True,
        "run_key": None,
        "tags": [],
        "data": {"name": dataset, "batch_size": batch_size, "subset": subset, "root": "/data"},
        "model": {"name": model, "kwargs": {}},
        "loss": {"name": "cross_entropy", "label_smoothing": 0.0},
        "method": {"name": method, **method_kwargs},
        "optim": {"lr": lr, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False},
        "sched": sched or {"name": "constant"},
        "probes": {"name": "none"},
        "trainer": {
            "max_steps": 1000 if max_epochs is None else None,
            "max_epochs": max_epochs,
            "until_loss": None,
        },
        "profile": {"name": profile, "data_subset": 5000 if profile == "quick" else None},
        "paths": {"runs": "/runs"},
        "logger": {"name": "csv"},
    }


def _write_run(
    root: Path,
    key: str,
    config: dict,
    status: str | None,
    final: dict | None = None,
    markers: dict | None = None,
    metrics: pd.DataFrame | None = None,
    error: str | None = None,
) -> Path:
    run = root / config["experiment_name"] / key
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if status is not None:
        summary = {
            "status": status,
            "final": final or {},
            "markers": markers or {},
            "steps": 1000,
            "wall_time_s": 12.5,
            "run_key": key,
            "experiment": config["experiment_name"],
            "profile": config["profile"]["name"],
            "seed": config["seed"],
            "error": error,
        }
        (run / "summary.json").write_text(json.dumps(summary))
    if metrics is not None:
        metrics.to_csv(run / "metrics.csv", index=False, na_rep="")
    return run


def _probe_metrics(lr: float, scale: float = 1.0, steps: int = 300) -> pd.DataFrame:
    """Deterministic curves shaped like the paper's: sharpness rises to 2/η, ‖<J>‖² grows fast,
    slowly (ARP), then fast again; <λ⁽¹⁾> rises then falls through 0.25."""
    step = np.arange(0, steps + 1, 10)
    jac = scale * np.where(
        step < 60, 1 + step / 10, np.where(step < 200, 7 + (step - 60) / 70, 9 + (step - 200) / 10)
    )
    impurity = 0.1 + 0.3 * np.sin(np.pi * step / (steps * 1.2))
    impurity = np.where(step > 150, impurity - (step - 150) / 400, impurity)
    test_every = step % 50 == 0
    frame = pd.DataFrame(
        {
            "step": step,
            "epoch": step / 40.0,
            "train/loss": 2.3 * np.exp(-step / 150),
            "test/loss": np.where(test_every, 2.3 * np.exp(-step / 200), np.nan),
            "test/acc": np.where(test_every, 0.1 + 0.6 * (1 - np.exp(-step / 100)), np.nan),
            "probe/sharpness": (2 / lr) * np.minimum(1.0, step / 80) + 0.5 * np.sin(step),
            "probe/sgd_threshold": np.where(step % 20 == 0, 1.6 / lr, np.nan),  # 2 rho_B / eta
            "probe/jacobian_norm_sq": jac,
            "probe/jacobian_ones_sq": jac / 3,
            "probe/impurity_mean": impurity,
            "probe/impurity_q25": impurity - 0.05,
            "probe/impurity_q75": impurity + 0.05,
            "probe/logit_norm": 1 + step / 100,
            "probe/weight_norm": 10 + step / 50,
            "probe/layer_norm/conv1": 1 + step / 300,
            "probe/layer_norm/fc": 2 + step / 300,
            "arp/phase": np.where(step < 60, 1, np.where(step < 200, 2, 3)),
        }
    )
    return frame


def _examples() -> pd.DataFrame:
    rows = []
    for example in (7, 11):
        for i, step in enumerate(range(0, 301, 10)):
            p1 = 0.1 + 0.89 * i / 30
            lower, upper = impurity_bounds(np.array([p1]))
            rows.append(
                {
                    "step": step,
                    "example": example,
                    "p_top1": p1,
                    "impurity": float(0.7 * upper[0] + 0.3 * lower[0]),
                    "p_true": p1 / 2,
                }
            )
    return pd.DataFrame(rows)


def _epoch_metrics(final_acc: float, overfit: float) -> pd.DataFrame:
    epoch = np.arange(0, 11, dtype=float)
    return pd.DataFrame(
        {
            "step": (epoch * 40).astype(int),
            "epoch": epoch,
            "test/acc": final_acc * (1 - np.exp(-epoch / 2)) - overfit * epoch / 100,
            "test/loss": 2.3 * np.exp(-epoch / 3) + overfit * epoch / 10,
        }
    )


def build_runs(root: Path) -> Path:
    t1 = "table1_simplecnn"
    acc = lambda a: {"test/acc": a, "test/loss": 1.0 - a, "train/loss": 0.01}  # noqa: E731
    # B=128, lr=0.01: SGD two seeds; SAM one completed, one failed; EJR one completed, one diverged
    _write_run(root, "sgd-01-s0", _config(t1, "sgd", 0.01, 128, 0), "completed", acc(0.7100))
    _write_run(root, "sgd-01-s1", _config(t1, "sgd", 0.01, 128, 1), "completed", acc(0.7150))
    _write_run(
        root, "sam-01-s0", _config(t1, "sam", 0.01, 128, 0, rho=0.05), "completed", acc(0.7400)
    )
    _write_run(
        root,
        "sam-01-s1",
        _config(t1, "sam", 0.01, 128, 1, rho=0.05),
        "failed",
        {"train/loss": 2.0},
        error="RuntimeError: CUDA out of memory",
    )
    _write_run(
        root,
        "ejr-01-s0",
        _config(t1, "ejr", 0.01, 128, 0, lambda_reg=0.01),
        "completed",
        acc(0.7560),
    )
    _write_run(
        root,
        "ejr-01-s1",
        _config(t1, "ejr", 0.01, 128, 1, lambda_reg=0.01),
        "diverged",
        acc(0.1000),
        error="non-finite loss at step 17",
    )
    # B=128, lr=0.1: SGD seed 1 has no summary yet; EJR lambda 0.01 misses seed 1; EJR lambda 0.03 has both
    _write_run(root, "sgd-1-s0", _config(t1, "sgd", 0.1, 128, 0), "completed", acc(0.7259))
    _write_run(root, "sgd-1-s1", _config(t1, "sgd", 0.1, 128, 1), None)
    _write_run(
        root, "ejr-1-s0", _config(t1, "ejr", 0.1, 128, 0, lambda_reg=0.01), "completed", acc(0.7549)
    )
    _write_run(
        root,
        "ejr3-1-s0",
        _config(t1, "ejr", 0.1, 128, 0, lambda_reg=0.03),
        "completed",
        acc(0.7459),
    )
    _write_run(
        root,
        "ejr3-1-s1",
        _config(t1, "ejr", 0.1, 128, 1, lambda_reg=0.03),
        "completed",
        acc(0.7479),
    )
    # full batch, lr=0.01: EJR seed 1 still running
    _write_run(root, "sgd-full-s0", _config(t1, "sgd", 0.01, "full", 0), "completed", acc(0.6910))
    _write_run(root, "sgd-full-s1", _config(t1, "sgd", 0.01, "full", 1), "completed", acc(0.6930))
    _write_run(
        root,
        "ejr-full-s0",
        _config(t1, "ejr", 0.01, "full", 0, lambda_reg=0.001),
        "completed",
        acc(0.7399),
    )
    _write_run(
        root, "ejr-full-s1", _config(t1, "ejr", 0.01, "full", 1, lambda_reg=0.001), "running"
    )

    # profile=paper WRN runs of Table 1, Table 5 and Table 6
    wrn = dict(model="wrn28_2", profile="paper", subset=None)
    _write_run(
        root, "wrn-sgd", _config("table1_wrn", "sgd", 0.1, 256, 0, **wrn), "completed", acc(0.9546)
    )
    _write_run(
        root,
        "wrn-ejr",
        _config("table1_wrn", "ejr_efficient", 0.1, 256, 0, rho=2.0, **wrn),
        "completed",
        acc(0.9625),
    )
    wrn10 = dict(model="wrn28_10", profile="paper", subset=None)
    _write_run(
        root,
        "t5-sgd",
        _config("table5_wrn", "sgd", 0.1, 128, 0, max_epochs=200, **wrn10),
        "completed",
        acc(0.9590),
    )
    _write_run(
        root,
        "t5-ejr",
        _config("table5_wrn", "ejr_efficient", 0.1, 128, 0, rho=1.0, max_epochs=200, **wrn10),
        "completed",
        acc(0.9660),
    )
    _write_run(
        root,
        "t6-sgd",
        _config("table6_wrn", "sgd", 0.1, 128, 0, max_epochs=400, **wrn10),
        "completed",
        acc(0.9610),
    )
    _write_run(
        root,
        "t6-v2",
        _config("table6_wrn", "ejr_v2", 0.1, 128, 0, rho=2.0, mu=0.01, max_epochs=400, **wrn10),
        "completed",
        acc(0.9730),
    )

    # probe curves (quick): Figure 1/2/4 run, Figure 5 sweep, Figure 6 curves
    cnn = dict(model="cnn6")
    fig_run = _write_run(
        root,
        "arp",
        _config("fig4_arp", "sgd", 0.01, 128, 0, **cnn),
        "completed",
        acc(0.70),
        markers={"arp_start_step": 60, "arp_end_step": 200, "arp_end_jacobian_norm_sq": 9.0},
        metrics=_probe_metrics(0.01),
    )
    _examples().to_csv(fig_run / "probe_examples.csv", index=False)
    for key, lr, batch, scale, end in (
        ("lr01", 0.01, 128, 1.0, 200),
        ("lr02", 0.02, 128, 0.8, 180),
        ("lr03", 0.03, 128, 0.6, 160),
        ("b64", 0.01, 64, 0.7, 190),
    ):
        _write_run(
            root,
            key,
            _config("fig5_ijr", "sgd", lr, batch, 0, **cnn),
            "completed",
            acc(0.70),
            markers={"arp_end_step": end},
            metrics=_probe_metrics(lr, scale),
        )
    multistep = {"name": "multistep", "gamma": 0.2, "milestones": [0.3, 0.6, 0.8]}
    for dataset, base in (("cifar10", 0.96), ("cifar100", 0.80)):
        for method, overfit, extra in (("sgd", 1.0, {}), ("ejr_efficient", 0.2, {"rho": 2.0})):
            _write_run(
                root,
                f"{dataset}-{method}",
                _config(
                    "fig6_wrn",
                    method,
                    0.1,
                    128,
                    0,
                    model="wrn28_10",
                    dataset=dataset,
                    max_epochs=10,
                    sched=multistep,
                    **extra,
                ),
                "completed",
                acc(base),
                metrics=_epoch_metrics(base, overfit),
            )
    return root


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return build_runs(tmp_path_factory.mktemp("reporting") / "runs")


@pytest.fixture(scope="module")
def runs(runs_root) -> pd.DataFrame:
    return load_runs(runs_root)


def _run(runs: pd.DataFrame, key: str) -> pd.Series:
    return runs[runs["run_key"] == key].iloc[0]


# ----------------------------------------------------------------------------- load_runs / load_metrics
def test_load_runs_columns_and_statuses(runs):
    assert len(runs) == 30
    assert list(runs.columns[:10]) == [
        "run_dir",
        "experiment",
        "run_key",
        "status",
        "steps",
        "wall_time_s",
        "profile",
        "seed",
        "error",
        "stop_reason",
    ]
    for col in (
        "model.name",
        "optim.lr",
        "data.batch_size",
        "method.name",
        "method.lambda_reg",
        "method.rho",
        "method.mu",
        "trainer.max_epochs",
        "final.test/acc",
        "marker.arp_end_step",
        "sched.milestones",
    ):
        assert col in runs.columns, col
    statuses = dict(zip(runs["run_key"], runs["status"], strict=True))
    assert statuses["sgd-1-s1"] == "missing-summary"
    assert statuses["ejr-01-s1"] == "diverged"
    assert statuses["sam-01-s1"] == "failed"
    assert statuses["ejr-full-s1"] == "running"
    assert statuses["sgd-01-s0"] == "completed"
    missing = _run(
        runs, "sgd-1-s1"
    )  # no summary: experiment, seed and profile come from the config
    assert (missing["experiment"], missing["seed"], missing["profile"]) == (
        "table1_simplecnn",
        1,
        "quick",
    )
    assert math.isnan(missing["final.test/acc"])
    assert _run(runs, "sam-01-s1")["error"] == "RuntimeError: CUDA out of memory"
    assert _run(runs, "sgd-full-s0")["data.batch_size"] == "full"
    assert _run(runs, "ejr-01-s0")["method.lambda_reg"] == 0.01
    assert _run(runs, "arp")["marker.arp_end_step"] == 200
    assert _run(runs, "cifar10-sgd")["sched.milestones"] == (0.3, 0.6, 0.8)
    assert runs["final.test/acc"].dtype == float


def test_load_runs_accepts_experiment_folder_single_run_and_empty(runs_root, tmp_path):
    assert len(load_runs(runs_root / "table1_simplecnn")) == 15
    single = load_runs(runs_root / "fig4_arp" / "arp")
    assert list(single["run_key"]) == ["arp"]
    empty = load_runs(tmp_path)
    assert empty.empty and "status" in empty.columns
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_runs(tmp_path / "nowhere")


def test_load_runs_unreadable_summary(tmp_path):
    run = _write_run(tmp_path, "k", _config("e", "sgd", 0.1, 128, 3), None)
    (run / "summary.json").write_text('{"status": "compl')  # killed while writing
    row = load_runs(tmp_path).iloc[0]
    assert row["status"] == "unreadable-summary" and row["seed"] == 3


def test_load_metrics_numeric_with_gaps_and_a_torn_last_line(runs_root, tmp_path):
    metrics = load_metrics(runs_root / "fig4_arp" / "arp")
    assert metrics["step"].dtype == "int64"
    assert metrics["test/acc"].dtype == float
    assert metrics["test/acc"].isna().sum() == 24 and metrics["test/acc"].notna().sum() == 7
    (tmp_path / "metrics.csv").write_text(
        "step,epoch,train/loss\n0,0.0,2.3\n10,0.1,nan\n20,0.2,1.9,7,8\n"
    )
    torn = load_metrics(tmp_path)
    assert list(torn["step"]) == [0, 10] and math.isnan(torn["train/loss"].iloc[1])
    assert list(load_metrics(tmp_path / "none").columns) == ["step", "epoch"]


def test_load_runs_reads_what_the_training_writers_write(tmp_path):
    """The run directory as ijr.train writes it (RunDir, MetricsCSV), not as this file does."""
    from omegaconf import OmegaConf

    from ijr.metrics_log import MetricsCSV
    from ijr.rundir import RunDir

    cfg = OmegaConf.create(_config("writers", "ejr", 0.02, "full", 4, lambda_reg=0.001))
    run = RunDir(tmp_path / "writers" / "abc123")
    run.write_config(cfg, overrides=["optim.lr=0.02"])
    run.write_summary(
        status="running", run_key=run.key, experiment="writers", profile="quick", seed=4
    )
    log = MetricsCSV(run.metrics_csv, steps_per_epoch=4)
    log.add({"train/loss": 2.3}, step=0)
    log.add({"train/loss": float("nan"), "test/acc": 0.25}, step=2)
    log.add({"train/loss": 1.5, "probe/sharpness": 12.5}, step=4)  # a new column: header rewritten
    log.flush()
    row = load_runs(tmp_path).iloc[0]
    assert (row["status"], row["seed"], row["data.batch_size"], row["method.lambda_reg"]) == (
        "running",
        4,
        "full",
        0.001,
    )
    metrics = load_metrics(run.path)
    assert list(metrics.columns) == ["step", "epoch", "train/loss", "test/acc", "probe/sharpness"]
    assert list(metrics["epoch"]) == [0.0, 0.5, 1.0] and math.isnan(metrics["train/loss"][1])
    assert metrics["probe/sharpness"].tolist()[2] == 12.5 and math.isnan(
        metrics["probe/sharpness"][0]
    )
    run.write_summary(
        status="completed",
        final=dict(log.last),
        markers={"arp_end_step": 4},
        steps=4,
        wall_time_s=1.0,
    )
    row = load_runs(tmp_path).iloc[0]
    assert (row["status"], row["final.test/acc"], row["marker.arp_end_step"], row["steps"]) == (
        "completed",
        0.25,
        4,
        4,
    )


def test_select_runs(runs):
    chosen = select_runs(
        runs, {"optim.lr": 0.01, "data.batch_size": 128, "method.name": "sgd"}, experiment="table1*"
    )
    assert sorted(chosen["run_key"]) == ["sgd-01-s0", "sgd-01-s1"]
    with pytest.raises(KeyError, match="no column"):
        select_runs(runs, {"optim.nope": 1})


# ----------------------------------------------------------------------------- formulas and paper values
def test_delta_acc_and_err_reproduce_the_papers_example():
    # Table 1, SimpleCNN, B=128, eta=0.003: SGD 68.92 -> EJR 75.61 printed as +6.69 %p and 21.53 %
    assert round(float(delta_acc(68.92, 75.61)), 2) == 6.69
    assert round(float(error_reduction_rate(68.92, 75.61)), 2) == 21.53
    assert math.isnan(error_reduction_rate(100.0, 100.0))
    np.testing.assert_allclose(
        error_reduction_rate(np.array([90.0, 80.0]), np.array([95.0, 90.0])), [50.0, 50.0]
    )


@pytest.mark.parametrize("name", ["table1", "table5", "table6"])
def test_paper_delta_acc_and_err_follow_from_the_printed_accuracies(name):
    paper = load_paper_table(name)
    keys = ["dataset", "model", "epochs", "batch_size", "lr", "reg_param"]
    baseline = paper[paper["method_key"] == "sgd"].set_index(keys)["mean"]
    targets = paper[paper["err"].notna()]
    assert len(targets) == {"table1": 13, "table5": 32, "table6": 9}[name]
    for _, row in targets.iterrows():
        base = baseline.loc[tuple(row[k] for k in keys)]
        ours_delta = round(float(delta_acc(base, row["mean"])), 2)
        ours_err = float(error_reduction_rate(base, row["mean"]))
        if row["provenance"] == "printed-inconsistent":
            assert "inconsistent" in row["note"] or "but" in row["note"]
            continue
        if not math.isnan(row["delta_acc"]):
            assert ours_delta == row["delta_acc"], (name, dict(row))
        if row["provenance"] == "missing":  # a row the paper gets wrong: its ERR must not follow
            assert abs(ours_err - row["err"]) > 0.05
            continue
        assert abs(ours_err - row["err"]) <= 0.0100001, (name, dict(row), ours_err)


def test_paper_csvs_are_tidy_and_explain_every_repair():
    t1 = load_paper_table("table1")
    assert len(t1) == 52 and set(t1["method_key"]) == {"sgd", "sam", "asam", "ejr", "ejr_efficient"}
    simple = t1[(t1["model"] == "simplecnn") & (t1["method_key"] == "sgd")]
    assert sorted(zip(simple["batch_size"].astype(int), simple["lr"], strict=True))[:5] == [
        (128, 0.003),
        (128, 0.01),
        (128, 0.03),
        (128, 0.1),
        (128, 0.3),
    ]
    assert len(load_paper_table("table5")) == 64 and len(load_paper_table("table6")) == 18
    for name in ("table1", "table5", "table6"):
        paper = load_paper_table(name)
        repaired = paper[paper["provenance"] != "printed"]
        assert (repaired["note"].str.len() > 0).all(), name
        assert (
            paper.loc[paper["provenance"] == "missing", ["mean", "delta_acc"]]
            .isna()
            .any(axis=1)
            .all()
        )
    row = t1[
        (t1["model"] == "wrn28_10")
        & (t1["dataset"] == "cifar100")
        & (t1["method_key"] == "ejr_efficient")
    ].iloc[0]
    assert (row["mean"], row["std"], row["delta_acc"], row["err"]) == (83.94, 0.10, 3.22, 16.70)


# ----------------------------------------------------------------------------- tables
def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; create it with IJR_UPDATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"{name} differs from the golden file (IJR_UPDATE_GOLDEN=1 to accept)"
    )


def test_table1_matches_golden_files(runs):
    table = table1(runs, profile="quick")
    _check_golden("table1_quick.md", to_markdown(table))
    _check_golden("table1_quick.csv", to_csv(table))


def test_table1_cells_counts_and_deltas(runs):
    table = table1(runs, profile="quick")
    assert len(table) == 4
    assert table.attrs["expected_seeds"] == 2 and table.attrs["profiles"] == ["quick"]
    row = table[(table["lr"] == 0.01) & (table["batch_size"] == "128")].iloc[0]
    assert row["reg_param"] == "lambda_reg=0.01" and row["target_method"] == "ejr"
    assert row["sgd_mean"] == pytest.approx(71.25) and row["sgd_std"] == pytest.approx(
        0.3535534, rel=1e-6
    )
    assert (row["ejr_n_completed"], row["ejr_n_diverged"], row["ejr_n_missing"]) == (1, 1, 0)
    assert row["ejr_mean"] == pytest.approx(75.60) and math.isnan(row["ejr_std"])
    assert (row["sam_n_completed"], row["sam_n_failed"], row["sam_param"]) == (1, 1, "rho=0.05")
    assert (row["asam_n_completed"], row["asam_n_missing"]) == (0, 2) and math.isnan(
        row["asam_mean"]
    )
    assert row["delta_acc"] == pytest.approx(4.35)
    assert row["err"] == pytest.approx(100 * 4.35 / 28.75)
    assert (
        row["sgd_paper_mean"],
        row["ejr_paper_mean"],
        row["paper_delta_acc"],
        row["paper_err"],
    ) == (71.08, 75.64, 4.56, 15.77)
    lr1 = table[table["lr"] == 0.1].set_index("reg_param")
    assert list(lr1.index) == ["lambda_reg=0.01", "lambda_reg=0.03"]
    assert (
        lr1.loc["lambda_reg=0.01", "sgd_n_incomplete"],
        lr1.loc["lambda_reg=0.01", "ejr_n_missing"],
    ) == (1, 1)
    assert math.isnan(lr1.loc["lambda_reg=0.03", "ejr_paper_mean"])  # the paper has no such cell
    assert (
        lr1.loc["lambda_reg=0.03", "sgd_paper_mean"] == 72.59
    )  # the baseline is shared by the row
    full = table[table["batch_size"] == "full"].iloc[0]
    assert full["train_size"] == 5000 and full["ejr_n_incomplete"] == 1
    assert (full["sgd_paper_mean"], full["ejr_paper_mean"]) == (69.10, 73.99)
    assert math.isnan(full["asam_paper_mean"])  # printed '-'


def test_expected_seeds_and_profiles(runs):
    assert table1(runs, profile="quick", expected_seeds=3)["sgd_n_missing"].tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="several profiles"):
        table1(runs, experiment="table1*")
    paper = table1(runs, profile="paper")
    assert len(paper) == 1 and paper.iloc[0]["model"] == "wrn28_2"
    assert (
        paper.iloc[0]["sgd_paper_mean"],
        paper.iloc[0]["ejr_paper_mean"],
        paper.iloc[0]["asam_paper_mean"],
    ) == (95.46, 96.25, 96.16)
    mixed = table1(runs, allow_mixed_profiles=True)
    assert sorted(set(mixed["profile"])) == ["paper", "quick"] and len(mixed) == 5
    assert "| Profile |" in to_markdown(mixed) and "Profile: paper, quick." in to_markdown(mixed)
    with pytest.raises(ValueError, match="no table1 runs of experiment 'nothing\\*'"):
        table1(runs, experiment="nothing*")
    with pytest.raises(ValueError, match="expected_seeds"):
        table1(runs, profile="quick", expected_seeds=0)


def test_duplicate_seeds_in_a_cell_name_the_differing_key(runs_root, tmp_path):
    config = _config("table1_simplecnn", "sgd", 0.01, 128, 0)
    config["trainer"]["max_steps"] = 2000
    _write_run(tmp_path, "dup", config, "completed", {"test/acc": 0.7})
    both = pd.concat(
        [load_runs(runs_root / "table1_simplecnn"), load_runs(tmp_path)], ignore_index=True
    )
    with pytest.raises(ValueError, match="seed 0 .* differ in trainer.max_steps"):
        table1(both)


def test_a_cell_with_two_method_settings_is_an_error(runs_root, tmp_path):
    _write_run(
        tmp_path,
        "sam-other-rho",
        _config("table1_simplecnn", "sam", 0.01, 128, 2, rho=0.1),
        "completed",
        {"test/acc": 0.74},
    )
    both = pd.concat(
        [load_runs(runs_root / "table1_simplecnn"), load_runs(tmp_path)], ignore_index=True
    )
    with pytest.raises(ValueError, match="several method settings \\(sam rho=0.05; sam rho=0.1\\)"):
        table1(both)


def test_accuracy_must_be_a_fraction(tmp_path):
    _write_run(
        tmp_path, "pct", _config("table1_x", "sgd", 0.01, 128, 0), "completed", {"test/acc": 71.0}
    )
    with pytest.raises(ValueError, match="expected a fraction"):
        table1(load_runs(tmp_path))


def test_table5_and_table6_join_the_paper_on_epochs_and_reg(runs):
    t5 = table5(runs)
    assert list(t5["epochs"]) == ["200"] and t5.iloc[0]["reg_param"] == "rho_reg=1"
    assert (
        t5.iloc[0]["baseline_paper_mean"],
        t5.iloc[0]["baseline_paper_std"],
        t5.iloc[0]["ejr_paper_mean"],
    ) == (95.93, 0.15, 96.57)
    assert t5.iloc[0]["delta_acc"] == pytest.approx(0.70)
    t6 = table6(runs)
    assert t6.iloc[0]["reg_param"] == "mu_reg=0.01;rho_reg=2"
    assert (
        t6.iloc[0]["ejr_v2_paper_mean"],
        t6.iloc[0]["paper_delta_acc"],
        t6.iloc[0]["paper_err"],
    ) == (97.33, 1.23, 31.54)
    assert "Epochs" in to_markdown(t6) and "$\\mu_{reg}=0.01$, $\\rho_{reg}=2$" in to_latex(t6)


def test_write_table_states_the_profile_in_every_format(runs, tmp_path):
    paths = write_table(table1(runs, profile="quick"), tmp_path / "out" / "table1.md")
    assert [p.name for p in paths] == ["table1.md", "table1.csv", "table1.tex"]
    md, csv, tex = (p.read_text() for p in paths)
    assert "Profile: quick." in md.splitlines()[2]
    assert tex.startswith("% table1 generated by ijr-report -- Profile: quick.")
    assert "\\begin{tabular}" in tex and "75.60 {\\scriptsize [1/1/0/0]}" in tex
    assert pd.read_csv(tmp_path / "out" / "table1.csv")["profile"].tolist() == ["quick"] * 4
    assert csv.splitlines()[0].startswith("profile,dataset,model,batch_size")


# ----------------------------------------------------------------------------- figures
def _line_styles(ax):
    return [line.get_linestyle() for line in ax.get_lines()]


def _assert_renders_png(fig) -> None:
    """The figure draws into a non-empty PNG (low resolution, in memory, to stay fast)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_fig1_bounds_trajectory_and_quantile_band(runs, tmp_path):
    fig = fig1(select_runs(runs, {"run_key": "arp"}))
    top, bottom = fig.axes[0], fig.axes[1]
    assert (top.get_xlabel(), top.get_ylabel()) == ("$p_{(1)}$", "$\\lambda^{(1)}$")
    upper, lower = top.get_lines()
    assert (upper.get_linestyle(), lower.get_linestyle(), upper.get_color(), lower.get_color()) == (
        "-",
        "--",
        "black",
        "black",
    )
    grid = upper.get_xdata()
    np.testing.assert_allclose(upper.get_ydata(), np.minimum(grid, 2 * grid * (1 - grid)))
    np.testing.assert_allclose(lower.get_ydata(), grid * (1 - grid))
    points = [c for c in top.collections if isinstance(c, PathCollection)]
    assert len(points) == 1 and len(points[0].get_offsets()) == 31  # example 7's 31 steps
    assert bottom.get_xlabel() == "step" and len(bottom.get_lines()) == 1
    assert bottom.get_lines()[0].get_color() == "tab:blue"
    assert (
        len([c for c in bottom.collections if isinstance(c, PolyCollection)]) == 1
    )  # 25-75 % band
    png, pdf = save_figure(fig, tmp_path / "fig1")
    assert (
        png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        and png.stat().st_size > 5000
        and pdf.stat().st_size > 1000
    )


def test_fig1_without_per_example_file_warns(runs):
    with pytest.warns(UserWarning, match="probe_examples.csv"):
        fig = fig1(select_runs(runs, {"run_key": "lr02"}))
    assert len(fig.axes[0].get_lines()) == 2
    _assert_renders_png(fig)


def test_fig2_twin_axes_windows_and_threshold(runs):
    fig = fig2(select_runs(runs, {"run_key": "arp"}), windows=[(0, 100), (200, 300)])
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "step"]
    assert len(panels) == 2 and len(fig.axes) == 4  # two panels with a twin each
    _assert_renders_png(fig)
    left = panels[0]
    sharp, threshold = left.get_lines()
    assert sharp.get_color() == "tab:purple" and threshold.get_linestyle() == "--"
    np.testing.assert_allclose(threshold.get_ydata(), [200.0, 200.0])  # 2/eta with eta = 0.01
    assert list(sharp.get_xdata()) == list(range(0, 101, 10))
    twin = next(ax for ax in fig.axes if ax not in panels)
    assert (
        twin.get_ylabel() == "$\\|\\langle J\\rangle\\|^2$"
        and twin.get_lines()[0].get_color() == "tab:red"
    )
    with pytest.raises(ValueError, match="plots one run"):
        fig2(select_runs(runs, {"experiment": "fig5_ijr"}))


def test_fig4_three_phases(runs):
    fig = fig4(select_runs(runs, {"run_key": "arp"}))
    top, bottom, twin = fig.axes[0], fig.axes[1], fig.axes[2]
    colors = [line.get_color() for line in top.get_lines()]
    assert colors[0] == "tab:red" and twin.get_lines()[0].get_color() == "tab:purple"
    sharp, sgd_threshold, stability = twin.get_lines()
    assert sgd_threshold.get_linestyle() == "--" and sgd_threshold.get_label() == r"$2\rho_B/\eta$"
    assert list(sgd_threshold.get_xdata()) == list(range(0, 301, 20))
    assert set(sgd_threshold.get_ydata()) == {1.6 / 0.01}
    assert list(stability.get_ydata()) == [2 / 0.01, 2 / 0.01]
    assert bottom.get_lines()[0].get_color() == "darkorange" and bottom.get_xlabel() == "step"
    vertical = [
        line
        for line in top.get_lines()
        if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2
    ]
    assert sorted(line.get_xdata()[0] for line in vertical) == [60, 200]  # ARP start and end
    marks = [line for line in top.get_lines() if line.get_marker() == "x"]
    assert len(marks) == 1 and (marks[0].get_xdata()[0], marks[0].get_ydata()[0]) == (200, 9.0)
    assert [t.get_text() for t in top.texts] == ["I", "II", "III"]
    assert "profile: quick" in [t.get_text() for t in fig.texts]
    _assert_renders_png(fig)


def test_fig5_rows_linestyles_and_arp_marks(runs):
    sweep = select_runs(runs, experiment="fig5_ijr")
    fig = fig5(sweep, rows=[{"data.batch_size": 128}, {"optim.lr": 0.01}], smoothing=3)
    assert len(fig.axes) == 6
    _assert_renders_png(fig)
    top_jac, bottom_jac = fig.axes[0], fig.axes[3]
    curves_top = [line for line in top_jac.get_lines() if line.get_marker() != "x"]
    assert [line.get_linestyle() for line in curves_top] == ["-", "--", ":"]
    assert {line.get_color() for line in curves_top} == {"tab:red"}
    assert [line.get_label() for line in curves_top] == ["η=0.01", "η=0.02", "η=0.03"]
    assert len([line for line in top_jac.get_lines() if line.get_marker() == "x"]) == 3
    bottom = [line for line in bottom_jac.get_lines() if line.get_marker() != "x"]
    assert [(line.get_label(), line.get_linestyle()) for line in bottom] == [
        ("B=128", "-"),
        ("B=64", "--"),
    ]
    assert (
        fig.axes[1].get_lines()[0].get_color() == "tab:purple"
        and fig.axes[2].get_lines()[0].get_color() == "darkorange"
    )
    with pytest.raises(ValueError, match="no run matches"):
        fig5(sweep, rows=[{"optim.lr": 0.5}])


def test_curves_globs_products_and_errors(runs):
    run = select_runs(runs, {"run_key": "arp"})
    fig = curves(
        run,
        [
            "probe/logit_norm",
            "probe/weight_norm",
            "probe/layer_norm/*",
            "probe/impurity_mean*probe/jacobian_ones_sq",
        ],
    )
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in visible] == [
        "$\\langle\\|z\\|\\rangle$",
        "$\\|\\theta\\|$",
        "probe/layer_norm/conv1",
        "probe/layer_norm/fc",
        "$\\langle\\lambda^{(1)}\\rangle$ $\\|\\langle J\\rangle\\hat{1}\\|^2$",
    ]
    assert all(len(ax.get_lines()) == 1 for ax in visible)
    _assert_renders_png(fig)
    with pytest.raises(ValueError, match="not in the runs' metrics.csv"):
        curves(run, ["probe/nope"])
    sweep = curves(
        select_runs(runs, experiment="fig5_ijr"), ["probe/sharpness"], style_by="optim.lr"
    )
    assert _line_styles(sweep.axes[0]) == [
        "-",
        "--",
        ":",
    ]  # the two lr=0.01 runs (B=64, 128) averaged


def test_fig6_sgd_solid_ejr_dashed_per_dataset(runs):
    fig = fig6(select_runs(runs, experiment="fig6_wrn"))
    assert (
        len(fig.axes) == 4
        and fig.axes[0].get_title() == "CIFAR-10"
        and fig.axes[2].get_title() == "CIFAR-100"
    )
    _assert_renders_png(fig)
    acc = fig.axes[0]
    data_lines = [
        line for line in acc.get_lines() if line.get_label() in ("SGD", "EJR (efficient)")
    ]
    assert [(line.get_label(), line.get_linestyle()) for line in data_lines] == [
        ("SGD", "-"),
        ("EJR (efficient)", "--"),
    ]
    assert acc.get_xlabel() == "epoch" and acc.get_ylabel() == "test accuracy (%)"
    assert max(data_lines[0].get_ydata()) > 1  # accuracy shown in %
    decays = [line for line in acc.get_lines() if line.get_linestyle() == ":"]
    assert sorted(line.get_xdata()[0] for line in decays) == pytest.approx(
        [3.0, 6.0, 8.0]
    )  # 10 epochs x [0.3, 0.6, 0.8]


def test_fig36_lines_and_heatmap(runs):
    sweep = select_runs(runs, {"data.batch_size": 128}, experiment="table1_simplecnn")
    fig = fig36(sweep)
    ax = fig.axes[0]
    labels = [c.get_label() for c in ax.containers]
    assert labels == ["SGD", "EJR $\\lambda_{reg}$=0.01", "EJR $\\lambda_{reg}$=0.03"]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "test accuracy (%)"
    sgd_line = ax.containers[0].lines[0]
    np.testing.assert_allclose(sgd_line.get_ydata(), [71.25, 72.59])
    heat = fig36(sweep, kind="heatmap")
    assert len([im for im in heat.axes[0].get_images() if isinstance(im, AxesImage)]) == 1
    assert "71.25" in [t.get_text() for t in heat.axes[0].texts]
    _assert_renders_png(fig)
    _assert_renders_png(heat)
    with pytest.raises(ValueError, match="one dataset/model/batch size"):
        fig36(select_runs(runs, experiment="table1_simplecnn"))


# ----------------------------------------------------------------------------- ijr-report
def test_cli_writes_table_files(runs_root, tmp_path, capsys):
    out = tmp_path / "results" / "table1"
    assert (
        report.main(
            [
                "table1",
                "--runs",
                str(runs_root),
                "--out",
                str(out),
                "--profile",
                "quick",
                "--expected-seeds",
                "2",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"ijr-report: wrote {out}.{suffix}" for suffix in ("md", "csv", "tex")]
    assert (tmp_path / "results" / "table1.md").read_text() == to_markdown(
        table1(load_runs(runs_root), profile="quick")
    )


def test_cli_writes_figure_files(runs_root, tmp_path, capsys):
    out = tmp_path / "figs" / "fig4"
    assert (
        report.main(
            ["fig4", "--runs", str(runs_root), "--out", f"{out}.png", "--experiment", "fig4_arp"]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        f"ijr-report: wrote {out}.png",
        f"ijr-report: wrote {out}.pdf",
    ]
    assert (
        Path(f"{out}.png").read_bytes()[:4] == b"\x89PNG"
        and Path(f"{out}.pdf").read_bytes()[:4] == b"%PDF"
    )


@pytest.mark.parametrize(
    ("args", "n_axes"),
    [
        (["fig1", "--select", "run_key=arp", "--example", "11"], 3),  # two panels + colour bar
        (["fig2", "--select", "run_key=arp", "--windows", "0:100,200:300"], 4),
        (
            [
                "fig5",
                "--experiment",
                "fig5_ijr",
                "--row",
                "data.batch_size=128",
                "--row",
                "optim.lr=0.01",
                "--smooth",
                "3",
            ],
            6,
        ),
        (["fig6", "--experiment", "fig6_wrn"], 4),
        (
            [
                "fig36",
                "--experiment",
                "table1_simplecnn",
                "--select",
                "data.batch_size=128",
                "--kind",
                "heatmap",
            ],
            2,
        ),
        (
            [
                "curves",
                "--experiment",
                "fig5_ijr",
                "--metrics",
                "probe/sharpness,probe/impurity_mean",
                "--style-by",
                "optim.lr",
            ],
            2,
        ),
    ],
)
def test_cli_dispatches_every_figure(runs_root, tmp_path, capsys, monkeypatch, args, n_axes):
    """Each figure command builds its figure from the options (files are written for real in
    test_cli_writes_figure_files; here saving is replaced to keep the suite fast)."""
    made = []

    def fake_save(fig, out):
        made.append(fig)
        return [Path(f"{out}.png"), Path(f"{out}.pdf")]

    monkeypatch.setattr(report.figures, "save_figure", fake_save)
    out = tmp_path / args[0]
    assert report.main([args[0], "--runs", str(runs_root), "--out", str(out), *args[1:]]) == 0, (
        capsys.readouterr().err
    )
    assert capsys.readouterr().out.splitlines() == [
        f"ijr-report: wrote {out}.png",
        f"ijr-report: wrote {out}.pdf",
    ]
    assert len(made) == 1 and len(made[0].axes) == n_axes
    if args[0] == "fig1":
        assert made[0].axes[0].get_title() == "example 11"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["table9", "--runs", "{root}", "--out", "{out}"], "invalid choice: 'table9'"),
        (["table1", "--runs", "{empty}", "--out", "{out}"], "no run directories found"),
        (["table1", "--runs", "{root}/missing", "--out", "{out}"], "does not exist"),
        (["table1", "--runs", "{root}", "--out", "{out}"], "several profiles"),
        (
            ["table1", "--runs", "{root}", "--out", "{out}", "--select", "optim.lr=7"],
            "no run under",
        ),
        (
            ["fig4", "--runs", "{root}", "--out", "{out}", "--experiment", "fig5_ijr"],
            "plots one run",
        ),
        (
            ["curves", "--runs", "{root}", "--out", "{out}", "--experiment", "fig4_arp"],
            "needs --metrics",
        ),
        (
            [
                "fig2",
                "--runs",
                "{root}",
                "--out",
                "{out}",
                "--experiment",
                "fig4_arp",
                "--windows",
                "5",
            ],
            "--windows expects",
        ),
        (["table1", "--runs", "{root}", "--out", "{out}", "--expected-seeds", "0"], "must be >= 1"),
        (["table1", "--out", "{out}"], "table1 needs --runs"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(runs_root, tmp_path, capsys, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    filled = [a.format(root=runs_root, out=tmp_path / "x", empty=empty) for a in args]
    assert report.main(filled) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ijr-report: error: ") and message in lines[0], (
        captured.err
    )
    assert not list(tmp_path.glob("x.*"))
