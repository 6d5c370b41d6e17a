"""Paper 002 end to end at a tiny size: short runs of the Figure 1, Figure 5 (mixup) and App. C.3
experiments log what their reports read, and every ijr-report p002-* report renders from them
with the numbers of the runs."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF_DIR
from ijr import report
from ijr.data.fake import make_fake_cifar
from ijr.methods.base import smoothed_label_entropy
from ijr.reporting import p002
from ijr.reporting.runs import load_metrics, load_runs

CIFAR_TINY = (
    "data.subset=16",
    "data.test_subset=8",
    "data.physical_batch_size=8",
    "probes.size=8",
    "probes.physical_batch_size=8",
    "probes.sharpness.max_iter=3",
)
COMMON = (
    "profile=quick",
    "trainer.eval_every_n_steps=null",
    "trainer.progress_bar=false",
)


def _train(overrides):
    from ijr.train import train

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        summary = train(compose("train", overrides=list(overrides)))
    assert summary["status"] == "completed", summary.get("error")
    return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_p002")
    make_fake_cifar(root, n_train=160, n_test=80, seed=0)
    out = tmp_path_factory.mktemp("runs_p002")
    base = (f"paths.runs={out}", *COMMON)
    cifar = (*base, f"data.root={root}", *CIFAR_TINY, "trainer.checkpoint_every_n_steps=null")
    for alpha in ("0.0", "0.5"):
        _train(
            (
                "experiment=p002_fig1_label_smoothing",
                *cifar,
                f"loss.label_smoothing={alpha}",
                "model=fcn3",
                "trainer.max_steps=3",
                "probes.every_n_steps=1",
                "probes.expensive_every_n_steps=1",
                "probes.size=null",  # the whole training set: the probe loss is the GD loss
            )
        )
    for scale, act in (("0.5", "relu"), ("1.5", "tanh")):  # App. C.2 (Figs. 30-31)
        _train(
            (
                "experiment=p002_input_scaling",
                *cifar,
                f"data.input_scale={scale}",
                f"model.kwargs.activation={act}",
                "trainer.max_steps=2",
                "probes.every_n_steps=1",
                "probes.expensive_every_n_steps=1",
            )
        )
    mixup = ("data.mixup_beta=0.4", "data.batch_size=8", "model=fcn3", "trainer.max_steps=2")
    _train(("experiment=p002_fig5_mixup", *cifar, *mixup))
    for seed in (0, 1):
        for std in ("null", "0.035"):
            _train(
                (
                    "experiment=p002_c3_gaussian",
                    *base,
                    f"seed={seed}",
                    f"model.kwargs.first_layer_std={std}",
                    "model.kwargs.width=16",
                    "trainer.max_steps=20",
                    "trainer.checkpoint_every_n_steps=20",
                )
            )
    return out


def test_fig1_logs_the_loss_minus_the_label_entropy(runs):
    frame = load_runs(runs)
    smoothed = frame[(frame["experiment"] == "p002_fig1_label_smoothing")]
    smoothed = smoothed[smoothed["loss.label_smoothing"] == 0.5].iloc[0]
    metrics = load_metrics(smoothed["run_dir"])
    h = smoothed_label_entropy(0.5, 10)
    assert h > 1.0
    # 3FCN (no BN, no dropout) under full-batch GD with the whole training set as probe set:
    # the eval-mode probe loss is the logged GD loss, so probe - (train/loss - H) = 0
    both = metrics.dropna(subset=["probe/train_loss_minus_entropy", "train/loss"])
    assert len(both) == 3  # steps 0, 1, 2 (train/loss is logged before each update)
    expected = both["train/loss"] - h
    assert list(both["probe/train_loss_minus_entropy"]) == pytest.approx(list(expected), rel=1e-5)
    assert (both["probe/train_loss_minus_entropy"] > 0).all()  # KL to the smoothed label
    steps, mean, _ = p002._mean_curve([smoothed["run_dir"]], "train/loss", h)
    raw = metrics.dropna(subset=["train/loss"]).set_index("step")["train/loss"]
    assert list(mean) == pytest.approx(list(raw.loc[steps] - h))


def test_every_p002_report_renders(runs, tmp_path):
    for name in ("p002-fig1", "p002-fig5", "p002-fig32", "002-fig30"):
        written = report.run([name, "--runs", str(runs), "--out", str(tmp_path / name)])
        assert all(p.stat().st_size > 0 for p in written) and len(written) == 2
    with pytest.raises(ValueError, match="p002-fig2: no completed run of p002_fig2_weight_decay"):
        report.run(["p002-fig2", "--runs", str(runs), "--out", str(tmp_path / "f2")])


def test_tables_are_the_runs_mean_and_std(runs, tmp_path):
    written = report.run(["p002-tables", "--runs", str(runs), "--out", str(tmp_path / "t")])
    assert [p.suffix for p in written] == [".md", ".csv"]
    frame = load_runs(runs)
    gauss = frame[frame["experiment"] == "p002_c3_gaussian"]
    high = gauss[gauss["model.kwargs.first_layer_std"].isna()]["final.probe/sharpness"]
    table = p002.tables(frame)
    cell = table[(table["network"] == "gaussian") & (table["norm"] == "sharpness")]
    assert cell["High freq."].iloc[0] == f"{high.mean():.2f} +- {high.std(ddof=1):.2f} (n=2)"
    relu = table[table["network"] == "relu"]
    assert set(relu["High freq."]) == {"missing"}
