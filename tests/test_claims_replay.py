"""Replaying run records (ijr.claims.replay): a record of today's code replays identically over
its first steps; a changed value is named by step and metric; the replay never ends as a
completed run; a record whose command line composes to another config is refused."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, tiny_overrides
from ijr.claims import records, replay


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A real digits run (ijr-train, so its command line is saved), recorded."""
    tmp = tmp_path_factory.mktemp("replay")
    proc = run_cli(*tiny_overrides(tmp / "runs", "trainer.log_every_n_steps=1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert records.record_runs(tmp / "runs", "paper", tmp / "records") == (1, 0)
    (metrics,) = (tmp / "records").glob("*/*/metrics.csv")
    return metrics.parent


def test_a_record_of_todays_code_replays_identically(record):
    result = replay.replay_record(record, 12, None, None)
    assert result.same and result.rows == 12, result  # one row per step 0..11
    assert "identical before step 12" in result.detail


def test_a_changed_value_is_named_by_step_and_metric(tmp_path, record):
    import shutil

    copy = tmp_path / record.parent.name / record.name
    shutil.copytree(record, copy)
    lines = (copy / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = next(i for i, ln in enumerate(lines) if ln.startswith("7,"))
    cells = lines[row].split(",")
    col = header.index("train/loss")
    cells[col] = repr(float(cells[col]) * (1 + 1e-7))
    lines[row] = ",".join(cells)
    (copy / "metrics.csv").write_text("\n".join(lines) + "\n")
    result = replay.replay_record(copy, 12, None, None)
    assert not result.same and result.detail.startswith("step 7: train/loss recorded"), result
    out = tmp_path / "replay.csv"
    assert replay.main(["--records", str(tmp_path), "--steps", "12", "--out", str(out)]) == 1
    assert ',12,False,12,"step 7: train/loss recorded' in out.read_text()
    assert replay.main(["--records", str(tmp_path), "--seed", "1"]) == 2  # no record of seed 1


def test_the_replayed_run_ends_failed_with_its_reason(tmp_path, record, monkeypatch):
    """The replay's run directory says it was stopped (never ``completed``)."""
    seen = {}
    real = replay.compare_rows

    def spy(recorded, replayed, steps):
        seen.update(json.loads((replayed.parent / "summary.json").read_text()))
        return real(recorded, replayed, steps)

    monkeypatch.setattr(replay, "compare_rows", spy)
    assert replay.replay_record(record, 5, None, None).same
    assert seen["status"] == "failed" and "stopped after 5 steps" in seen["error"]


def test_a_record_composing_to_another_config_is_refused(tmp_path, record):
    import shutil

    copy = tmp_path / record.parent.name / record.name
    shutil.copytree(record, copy)
    overrides = copy / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text().replace("optim.lr=0.05", "optim.lr=0.06"))
    result = replay.replay_record(copy, 5, None, None)
    assert not result.same and "another config" in result.detail
