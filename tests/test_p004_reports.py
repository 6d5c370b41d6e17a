"""Paper 004 end to end on a fake CIFAR-10: a short full-batch run with the gram / eos probes
logs eos/phase and the Gram metrics, writes the phase and anomaly markers to summary.json, and
every ijr-report p004-* figure renders from it."""

from __future__ import annotations

import json
import math

import pytest
from hydra import compose, initialize_config_dir

from conftest import CONF_DIR
from ijr import report
from ijr.data.fake import make_fake_cifar
from ijr.reporting.runs import load_metrics

TINY = (
    "profile=quick",
    "data.subset=16",
    "data.test_subset=8",
    "trainer.max_steps=4",
    "trainer.eval_every_n_steps=null",
    "trainer.checkpoint_every_n_steps=null",
    "trainer.progress_bar=false",
    "probes.size=16",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from ijr.train import train

    root = tmp_path_factory.mktemp("fake_p004")
    make_fake_cifar(root, n_train=160, n_test=80, seed=0)
    out = tmp_path_factory.mktemp("runs_p004")
    summaries = {}
    for experiment in ("p004_fig3_gram", "p004_sec4_linear"):
        overrides = [f"experiment={experiment}", f"paths.runs={out}", f"data.root={root}", *TINY]
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        summaries[experiment] = train(cfg)
    return out, summaries


def test_the_run_logs_phases_gram_metrics_and_markers(runs):
    out, summaries = runs
    summary = summaries["p004_fig3_gram"]
    assert summary["status"] == "completed", summary.get("error")
    markers = summary["markers"]
    assert markers["eos_phase_boundaries"][0][0] == 0
    assert markers["anomaly_pairs"] <= 4 and markers["eos_cycles"] >= 0
    written = json.loads((out / "p004_fig3_gram" / summary["run_key"] / "summary.json").read_text())
    assert written["markers"]["anomaly_count"] == markers["anomaly_count"]
    frame = load_metrics(out / "p004_fig3_gram" / summary["run_key"])
    for name in ("probe/gram_max", "probe/gram_second", "probe/gram_output_max", "eos/phase"):
        assert frame[name].notna().sum() == 5, name  # steps 0..4
    assert set(frame["eos/phase"].dropna()) <= {1.0, 2.0, 3.0, 4.0}
    row = frame.dropna(subset=["probe/gram_loss"]).iloc[0]
    assert row["probe/gram_rest_loss"] <= row["probe/gram_loss"] + 1e-12
    assert row["probe/gram_second"] <= row["probe/gram_max"] * (1 + 1e-6)
    theory = load_metrics(out / "p004_sec4_linear" / summaries["p004_sec4_linear"]["run_key"])
    assert math.isfinite(theory["probe/gram_theory_ratio"].dropna().iloc[0])


@pytest.mark.parametrize(
    ("name", "experiment"),
    [
        ("p004-fig1", "p004_fig3_gram"),
        ("p004-fig2", "p004_fig3_gram"),
        ("p004-fig3", "p004_fig3_gram"),
        ("p004-sec4", "p004_sec4_linear"),
    ],
)
def test_every_p004_report_renders(runs, tmp_path, name, experiment):
    out, _ = runs
    target = tmp_path / "p004" / name
    written = report.run([name, "--runs", str(out / experiment), "--out", str(target)])
    assert sorted(p.suffix for p in written) == [".pdf", ".png"]
    assert all(p.stat().st_size > 0 for p in written)


def test_markers_table_reports_the_summary_markers(runs, tmp_path):
    out, summaries = runs
    written = report.run(["p004-markers", "--runs", str(out), "--out", str(tmp_path / "m")])
    assert sorted(p.suffix for p in written) == [".csv", ".md"]
    import pandas as pd

    table = pd.read_csv(tmp_path / "m.csv")
    assert len(table) == 2
    row = table[table["experiment"] == "p004_fig3_gram"].iloc[0]
    assert row["anomaly_pairs"] == summaries["p004_fig3_gram"]["markers"]["anomaly_pairs"]
    assert math.isfinite(row["max Lambda / (2/eta)"])
    gap = table[table["experiment"] == "p004_sec4_linear"].iloc[0]["input Gram gap"]
    assert math.isfinite(gap) and gap >= 1.0


def test_a_report_without_gram_metrics_is_one_clear_error(runs, tmp_path):
    out, _ = runs
    with pytest.raises(ValueError, match="probe/gram_theory_ratio"):
        report.run(
            ["p004-sec4", "--runs", str(out / "p004_fig3_gram"), "--out", str(tmp_path / "x")]
        )


def _train(root, out, *extra):
    from ijr.train import train

    overrides = ["experiment=p004_fig3_gram", f"paths.runs={out}", f"data.root={root}", *TINY]
    overrides += ["trainer.max_steps=6", *extra]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return train(compose("train", overrides=overrides))


def _rows(out, summary):
    return (out / "p004_fig3_gram" / summary["run_key"] / "metrics.csv").read_text().splitlines()


def test_gram_probes_do_not_change_training_and_resume_row_for_row(tmp_path, monkeypatch):
    from ijr.callbacks import CheckpointEvery

    root = tmp_path / "data"
    make_fake_cifar(root, n_train=160, n_test=80, seed=0)
    whole = _train(root, tmp_path / "a", "trainer.checkpoint_every_n_steps=3")
    off = _train(root, tmp_path / "b", "probes=none")
    losses = [r.split(",") for r in _rows(tmp_path / "a", whole)]
    header = losses[0]
    on_loss = [r[header.index("train/loss")] for r in losses[1:] if r[header.index("train/loss")]]
    off_rows = [r.split(",") for r in _rows(tmp_path / "b", off)]
    off_loss = [
        r[off_rows[0].index("train/loss")]
        for r in off_rows[1:]
        if r[off_rows[0].index("train/loss")]
    ]
    assert on_loss == off_loss and len(on_loss) == 6

    original = CheckpointEvery.on_train_batch_end

    def crash_after_step_3(self, trainer, pl_module, outputs, batch, batch_idx):
        original(self, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == 3:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(CheckpointEvery, "on_train_batch_end", crash_after_step_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(root, tmp_path / "c", "trainer.checkpoint_every_n_steps=3")
    monkeypatch.setattr(CheckpointEvery, "on_train_batch_end", original)
    resumed = _train(root, tmp_path / "c", "trainer.checkpoint_every_n_steps=3")
    assert resumed["resumed_from_step"] == 3
    assert resumed["markers"] == whole["markers"]
    assert _rows(tmp_path / "c", resumed) == _rows(tmp_path / "a", whole)
