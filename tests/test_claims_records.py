"""Run records (ijr.claims.records): finished runs' measured files copied into a committed folder;
checkpoints, margins and unfinished runs left out; an existing record never overwritten, a
different measurement of the same run key refused in one line; claims judged on the records are
those judged on the runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ijr.claims import records
from ijr.claims.evaluate import evaluate_all
from test_claims import EOS, SHARP_RISE, claim, run_with, write_experiment, write_run


def _runs(tmp_path):
    root = tmp_path / "runs"
    done = write_run(root, "a", "k1", **run_with(s=SHARP_RISE, t=EOS))
    (done / "checkpoints").mkdir()
    (done / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (done / "margins").mkdir()
    (done / "margins" / "step_0.npz").write_bytes(b"labels")
    (done / "probe_examples.csv").write_text(
        "step,example,p_top1,impurity,p_true\n0,0,0.1,0.9,0.1\n"
    )
    write_run(root, "a", "k2", **run_with(s=SHARP_RISE, t=EOS), status="running")
    write_run(root, "a", "k3", **run_with(s=SHARP_RISE, t=EOS), profile="quick")
    return root


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_only_finished_runs_of_the_profile_and_their_measured_files(tmp_path):
    root, out = _runs(tmp_path), tmp_path / "records"
    assert records.record_runs(root, "cpu", out) == (1, 0)
    assert _files(out) == [
        "a/k1/.hydra/config.yaml",
        "a/k1/metrics.csv",
        "a/k1/probe_examples.csv",
        "a/k1/summary.json",
    ]
    assert (out / "a/k1/metrics.csv").read_bytes() == (root / "a/k1/metrics.csv").read_bytes()


def test_recording_again_keeps_the_record(tmp_path):
    root, out = _runs(tmp_path), tmp_path / "records"
    records.record_runs(root, "cpu", out)
    summary = root / "a/k1/summary.json"
    data = json.loads(summary.read_text())
    summary.write_text(json.dumps({**data, "wall_time_s": 1234.5}))  # another machine's timing
    assert records.record_runs(root, "cpu", out) == (0, 1)


def test_other_measurements_of_the_same_run_are_refused(tmp_path, capsys):
    root, out = _runs(tmp_path), tmp_path / "records"
    records.record_runs(root, "cpu", out)
    metrics = root / "a/k1/metrics.csv"
    metrics.write_text(metrics.read_text().replace("19.5", "19.6"))
    with pytest.raises(records.RecordConflict, match="k1 differs .* in metrics.csv"):
        records.record_runs(root, "cpu", out)
    assert records.main(["--runs", str(root), "--profile", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "remove the record" in err[0]


def test_a_missing_runs_root_is_one_line(tmp_path, capsys):
    code = records.main(["--runs", str(tmp_path / "nope"), "--profile", "cpu", "--out", "x"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_claims_on_the_records_equal_claims_on_the_runs(tmp_path):
    conf, root, out = tmp_path / "conf", _runs(tmp_path), tmp_path / "records"
    write_experiment(conf, "a", [claim("reaches", {"metric": "s", "level": "t", "rtol": 0.05})])
    records.record_runs(root, "cpu", out)
    on_runs, on_records = evaluate_all(root, "cpu", conf), evaluate_all(out, "cpu", conf)
    assert on_runs.equals(on_records) and on_runs["status"].tolist() == ["pass"]


def test_make_claims_with_records_judges_the_union_of_sessions(tmp_path):
    """``runner --records``: this session's finished runs join the records of earlier sessions,
    and the claims are judged on all of them."""
    from ijr.claims import runner

    conf_runs, results = tmp_path / "runs", tmp_path / "results"
    write_run(conf_runs, "fig4_arp", "now", **run_with(s=SHARP_RISE, t=EOS))
    write_run(results / "cpu" / "runs", "fig5_lr", "earlier", **run_with(s=SHARP_RISE, t=EOS))
    argv = ["--profile", "cpu", "--runs", str(conf_runs), "--results", str(results)]
    assert runner.main([*argv, "--no-train", "--no-figures", "--records"]) == 0
    judged = (results / "cpu" / "claims" / "runs.csv").read_text()
    assert "fig4_arp,now" in judged and "fig5_lr,earlier" in judged


def test_jobs_share_one_sweep_and_run_single_threaded(tmp_path, monkeypatch):
    """``runner --jobs 2``: two copies of the multirun start (the second after the stagger), each
    with one thread unless OMP_NUM_THREADS is set; the worst exit status is returned."""
    from ijr.claims import runner

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = runner.train_env("cpu", 1)
    assert env["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in runner.train_env("paper", 1)
    assert runner.train_env("paper", 2)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert runner.train_env("cpu", 2)["OMP_NUM_THREADS"] == "4"  # the user's choice is kept
    log = tmp_path / "log"
    script = (
        "import os, sys, time; "
        f"open({str(log)!r}, 'a').write(os.environ['OMP_NUM_THREADS'] + ' %.2f\\n' % time.time()); "
        "sys.exit(int(sys.argv[1]))"
    )
    code = runner.call_jobs([sys.executable, "-c", script, "3"], 2, env, stagger_s=0.5)
    starts = [line.split() for line in log.read_text().splitlines()]
    assert code == 3 and [s[0] for s in starts] == ["1", "1"]
    assert float(starts[1][1]) - float(starts[0][1]) >= 0.3


def test_two_copies_of_a_multirun_train_each_run_once(tmp_path):
    """The copies of ``call_jobs`` share a real sweep: every run completes, none is written twice."""
    import pandas as pd

    from conftest import tiny_overrides
    from ijr.claims import runner
    from ijr.reporting.runs import load_runs

    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "ijr.train", "-m", *tiny_overrides(runs), "optim.lr=0.02,0.05,0.1"]
    assert runner.call_jobs(cmd, 2, runner.train_env("cpu", 2), stagger_s=1.0) == 0
    frame = load_runs(runs)
    assert len(frame) == 3 and set(frame["status"]) == {"completed"}
    for run_dir in frame["run_dir"]:
        steps = pd.read_csv(Path(run_dir) / "metrics.csv")["step"]
        assert steps.is_monotonic_increasing and not steps.duplicated().any(), run_dir


def test_one_config_is_never_recorded_under_two_keys(tmp_path):
    """A run whose config is already recorded under another key (an older code's key) is refused."""
    root, out = _runs(tmp_path), tmp_path / "records"
    records.record_runs(root, "cpu", out)
    (out / "a" / "k1").rename(out / "a" / "old_key")  # the same config, keyed by older code
    with pytest.raises(records.RecordConflict, match="k1 has the config of the record .*old_key"):
        records.record_runs(root, "cpu", out)
    write_run(root, "b", "k9", **run_with(s=SHARP_RISE, t=EOS), seed=1)  # another config: fine
    (out / "a" / "old_key").rename(out / "a" / "k1")
    assert records.record_runs(root, "cpu", out) == (1, 1)


# --------------------------------------------------------------------------- restoring records
def _trained_and_recorded(tmp_path):
    """A real tiny run trained under tmp/runs and recorded into tmp/records: (run dir, records)."""
    from conftest import compose_cfg, tiny_overrides
    from ijr.train import train

    summary = train(compose_cfg(*tiny_overrides(tmp_path / "runs")))
    run_dir = tmp_path / "runs" / "default" / summary["run_key"]
    out = tmp_path / "records"
    assert records.record_runs(tmp_path / "runs", "paper", out) == (1, 0)
    return run_dir, out


def test_a_restored_record_is_not_trained_again(tmp_path, capsys):
    """``--restore`` puts a record back under the key ijr-train computes for its config, so the
    same command in a fresh runs root skips it; recording it again adds nothing."""
    from conftest import compose_cfg, tiny_overrides
    from ijr.train import train

    run_dir, out = _trained_and_recorded(tmp_path)
    fresh = tmp_path / "fresh"
    argv = ["--restore", "--out", str(out), "--runs", str(fresh), "--profile", "paper"]
    assert records.main(argv) == 0
    assert "1 restored" in capsys.readouterr().out
    restored = fresh / "default" / run_dir.name
    assert records.is_restored(restored) and not (restored / "checkpoints").exists()
    again = train(compose_cfg(*tiny_overrides(fresh)))
    assert again["skipped"] == "already completed" and again["run_dir"] == str(restored)
    assert (restored / "metrics.csv").read_bytes() == (run_dir / "metrics.csv").read_bytes()
    assert records.record_runs(fresh, "paper", out) == (0, 1)
    assert records.restore_records(out, fresh, "paper") == (0, 1)  # a run already there: kept


def test_a_record_made_under_an_older_key_is_restored_under_todays_key(tmp_path):
    """A record whose key an older code computed (its folder and summary say ``0ld0ld0ld0ld``)
    is restored under today's key, and recording it back finds the same record (no twin)."""
    run_dir, out = _trained_and_recorded(tmp_path)
    old = out / "default" / "0ld0ld0ld0ld"
    (out / "default" / run_dir.name).rename(old)
    summary = json.loads((old / "summary.json").read_text())
    (old / "summary.json").write_text(json.dumps({**summary, "run_key": old.name}))
    fresh = tmp_path / "fresh"
    assert records.restore_records(out, fresh, "paper") == (1, 0)
    assert (fresh / "default" / run_dir.name / "metrics.csv").is_file()
    assert records.record_runs(fresh, "paper", out) == (0, 1)
    assert records.restore_records(out, fresh, "quick") == (0, 0)  # another profile: none


def test_figures_are_not_redrawn_from_restored_runs(tmp_path, capsys):
    """The runner's figure step skips a folder holding a restored run (no checkpoints, no
    margins/) and says so; the same folder without one is drawn."""
    import argparse

    from ijr.claims import runner

    runs = tmp_path / "runs"
    run = write_run(runs, "fig4_arp", "k", **run_with(s=SHARP_RISE, t=EOS))
    args = argparse.Namespace(profile="cpu", runs=str(runs), results=str(tmp_path / "results"))
    drawn = runner.figure_commands(args)
    assert any(str(runs / "fig4_arp") in cmd for cmd in drawn)
    (run / records.RESTORED_FILE).write_text("results/cpu/runs/fig4_arp/k\n")
    assert not any(str(runs / "fig4_arp") in cmd for cmd in runner.figure_commands(args))
    assert "not redrawn: 1 of its runs" in capsys.readouterr().out


def test_restoring_without_the_data_is_one_line(tmp_path, capsys):
    """A CIFAR record cannot be keyed without its data: one line, exit 2."""
    out = tmp_path / "records"
    cfg = {"data.name": "cifar10", "data.root": str(tmp_path / "nodata"), "data.download": False}
    write_run(out, "a", "k", **run_with(s=SHARP_RISE, t=EOS), config=cfg)
    argv = ["--restore", "--out", str(out), "--runs", str(tmp_path / "r"), "--profile", "cpu"]
    assert records.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("records:")
