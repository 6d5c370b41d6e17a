"""Figures 7, 8 and 10 (paper 000, Appendix D) end to end: the fig10_subspace experiment run for
real at a tiny scale (digits, 3FCN), then ijr-report fig8 / fig10 / fig7 on what it wrote."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from matplotlib.image import AxesImage

from conftest import compose_cfg, tiny_overrides
from ijr import report
from ijr.reporting import figures, load_runs


@pytest.fixture(scope="module")
def subspace_run(tmp_path_factory):
    from ijr.train import train

    runs = tmp_path_factory.mktemp("subspace_runs")
    cfg = compose_cfg(
        "experiment=fig10_subspace",
        *tiny_overrides(
            runs,
            "trainer.max_steps=40",
            "probes.size=64",
            "probes.physical_batch_size=32",
            "probes.every_n_steps=10",
            "probes.expensive_every_n_steps=10",
            "probes.track_examples=3",
            "probes.sharpness.max_iter=30",
        ),
    )
    summary = train(cfg)
    assert summary["status"] == "completed"
    return runs / "fig10_subspace" / summary["run_key"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_experiment_logs_the_subspace_metrics(subspace_run):
    rows = [r for r in read_rows(subspace_run / "metrics.csv") if r.get("probe/grad_hessian_cos")]
    assert [int(r["step"]) for r in rows] == [0, 10, 20, 30, 40]
    for r in rows:
        assert 0.0 <= float(r["probe/grad_hessian_cos"]) <= 1.0
        assert -1.0 <= float(r["probe/grad_margin_cos"]) <= 1.0
        present = float(r["probe/margin_classes_present"])
        assert 1 <= present <= 10
        # S is defined (A_S logged) exactly when every class is some example's top class
        assert bool(r["probe/grad_subspace_alignment"]) == (present == 10)
        level = float(r["probe/random_direction_cos"])
        assert 0 < level < 0.01  # about sqrt(2 / (pi m)) for 3FCN's 199k parameters
    # the gradient is far more aligned with r than random directions are (Figure 10, left)
    assert max(float(r["probe/grad_hessian_cos"]) for r in rows) > 10 * level
    eig = read_rows(subspace_run / "logit_eigvecs.csv")
    assert len(eig) == 5 * 100
    last = {
        (int(r["rank"]), int(r["eigenpair"])): float(r["value"]) for r in eig if r["step"] == "40"
    }
    assert all(last[(i, i)] > 0 for i in range(9))  # q^(i)_(i) > 0 (eq. 45)
    assert all(abs(last[(r, 9)]) < 1e-6 for r in range(10))  # the lambda = 0 column


def test_fig8_heatmaps_at_the_nearest_probe_steps(subspace_run):
    fig = figures.fig8(load_runs(subspace_run), steps=[0, 12, 1000])
    images = [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_children())]
    assert [ax.get_title() for ax in images] == ["step 0", "step 10", "step 40"]
    data = images[-1].get_images()[0].get_array()
    assert data.shape == (10, 10) and np.all(np.diag(data)[:9] > 0)
    assert len(images[0].patches) == 9  # the dashed boxes of the salient entries


def test_fig10_panels(subspace_run):
    fig = figures.fig10(load_runs(subspace_run))
    left, middle, right = fig.axes[:3]
    assert left.get_yscale() == "log" and len(left.get_lines()) == 2  # curve + random level
    assert len(middle.get_lines()) == 1 and len(middle.get_lines()[0].get_xdata()) == 5
    assert all(ax.get_xlabel() == "step" for ax in (left, middle, right))


def test_margins_files_and_fig9_fig11_fig33(subspace_run, tmp_path, capsys):
    from ijr.probes.examples import StepArrays

    data = StepArrays(subspace_run / "margins").load()
    assert list(data) == [0, 10, 20, 30, 40]
    last = data[40]
    n = 64
    assert last["cos_to_means"].shape == (n, 10) and last["mean_gram"].shape == (10, 10)
    assert last["jq_ratios"].shape == (3, 10) and last["jq_cos_sq"].shape == (3, 10, 10)
    present = last["counts"] > 0
    assert int(last["counts"].sum()) == n and np.all(
        (last["mrl"][present] >= 0) & (last["mrl"][present] <= 1)
    )
    rows = read_rows(subspace_run / "metrics.csv")
    mrl = [float(r["probe/mrl_mean"]) for r in rows if r.get("probe/mrl_mean")]
    assert len(mrl) == 5 and mrl[-1] == pytest.approx(float(np.nanmean(last["mrl"])))
    runs = load_runs(subspace_run)
    fig = figures.fig9(runs)
    i, j = figures.default_pair(last)
    assert fig.axes[0].get_title() == f"classes {i} and {j}, step 40"
    members = int((last["top1"] == i).sum() + (last["top1"] == j).sum())
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == members
    assert len(figures.fig11(runs, step=12).axes) == 2
    assert len(figures.fig33(runs).axes[0].get_lines()) == 10
    for args in (
        ["fig9", "--pair", "0,1"],
        ["fig11", "--steps", "20"],
        ["fig33"],
    ):
        out = tmp_path / args[0]
        code = report.main([args[0], "--runs", str(subspace_run), "--out", str(out), *args[1:]])
        err = capsys.readouterr().err
        if code != 0:  # class 0 or 1 may be nobody's top class this early: a clear one-line error
            assert args[0] == "fig9" and "most likely class" in err, err
        else:
            assert (tmp_path / f"{args[0]}.png").stat().st_size > 5000
    assert (
        report.main(
            ["fig9", "--runs", str(subspace_run), "--out", str(tmp_path / "x"), "--pair", "1"]
        )
        == 2
    )
    assert "--pair expects" in capsys.readouterr().err


def test_cli_writes_fig7_fig8_fig10(subspace_run, tmp_path, capsys):
    for args in (
        ["fig7", "--out", str(tmp_path / "fig7"), "--p", "0.5,0.3,0.2"],
        ["fig8", "--runs", str(subspace_run), "--out", str(tmp_path / "fig8"), "--steps", "0,40"],
        ["fig10", "--runs", str(subspace_run), "--out", str(tmp_path / "fig10")],
    ):
        assert report.main(args) == 0, capsys.readouterr().err
    for stem in ("fig7", "fig8", "fig10"):
        png = tmp_path / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 1000


def test_fig7_zeros_are_the_eigenvalues():
    p = (0.45, 0.25, 0.15, 0.1, 0.05)
    fig = figures.fig7(p)
    ax = fig.axes[0]
    zeros = ax.collections[0].get_offsets()[:, 0]
    for lam in zeros:
        v = 1.0 - sum(q * q / (q - lam) for q in p) if lam > 1e-12 else 0.0
        assert abs(v) < 1e-9
    assert sorted(
        round(float(x.get_xdata()[0]), 12) for x in ax.lines if x.get_color() == "tab:red"
    ) == sorted(p)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fig7", "--out", "{out}", "--p", "0.5,0.6"], "probability vector"),
        (["fig7", "--out", "{out}", "--p", "a,b"], "--p expects"),
        (["fig8", "--runs", "{run}", "--out", "{out}", "--steps", "x"], "--steps expects"),
        (["fig10", "--out", "{out}"], "fig10 needs --runs"),
    ],
)
def test_cli_bad_input(subspace_run, tmp_path, capsys, args, message):
    filled = [a.format(out=tmp_path / "x", run=subspace_run) for a in args]
    assert report.main(filled) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0], err


def test_fig8_and_fig10_need_the_subspace_group(tmp_path):
    from ijr.train import train

    summary = train(compose_cfg(*tiny_overrides(tmp_path, "probes=basic")))
    run = load_runs(tmp_path / "default" / summary["run_key"])
    with pytest.raises(ValueError, match="subspace"):
        figures.fig8(run)
    with pytest.raises(ValueError, match="subspace"):
        figures.fig10(run)
    assert math.isfinite(float(summary["wall_time_s"]))
