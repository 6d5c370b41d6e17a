"""Sweeps that survive real clusters: submitit jobs that diverge or raise, re-launching, W&B offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from conftest import CONF_DIR, cli, compose_cfg, run_cli, tiny_overrides
from ijr import multirun
from ijr.data.fake import make_fake_cifar
from ijr.reporting import load_runs
from ijr.rundir import RunDir
from ijr.train import train

KILL_AT_LR_01 = [
    "+callbacks.kill._target_=sweep_callbacks.KillIfLr",
    "+callbacks.kill.lr=0.1",
    "+callbacks.kill.step=3",
]


def test_submitit_sweep_isolates_failures_and_relaunch_skips_finished(runs_dir):
    # lr 0.05 trains, 0.1 is SIGKILLed at step 3 (a job without a result), 1000 diverges,
    # -1 is rejected before training starts
    args = [
        "-m",
        *tiny_overrides(runs_dir, "trainer.max_steps=8"),
        "hydra/launcher=submitit_local",
        "optim.lr=0.05,0.1,1000,-1",
    ]
    proc = run_cli(*args, *KILL_AT_LR_01, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "UncompletedJobError:" not in out.split("ijr multirun: 4")[0]
    table = out[out.index("ijr multirun: 4 runs") :]
    for column, count in (("completed", 1), ("diverged", 1), ("failed", 2), ("skipped", 0)):
        assert f"  {column:<10}{count:>5}" in table, table
    assert "ended without a result" in table and "optim.lr must be a finite number" in table
    runs = load_runs(runs_dir)
    assert len(runs) == 4
    assert sorted(runs["status"]) == ["completed", "diverged", "failed", "running"]
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert "optim.lr must be a finite number" in failed["error"]
    for run_dir in runs[runs["status"] != "completed"]["run_dir"]:
        assert str(run_dir) in table
    # re-launch in this process with the basic launcher (no kill): the completed run is skipped,
    # the killed one now completes, the rejected one fails again
    stamps = {p: p.stat().st_mtime_ns for p in runs_dir.glob("default/*/metrics.csv")}
    assert cli(*[a for a in args if not a.startswith("hydra/launcher")]) == 1
    after = load_runs(runs_dir)
    assert sorted(after["status"]) == ["completed", "completed", "diverged", "failed"]
    completed_dirs = {str(d) for d in runs[runs["status"] == "completed"]["run_dir"]}
    for path, stamp in stamps.items():
        if str(path.parent) in completed_dirs:
            assert path.stat().st_mtime_ns == stamp, "a completed run was trained again"


def test_local_relaunch_of_a_finished_sweep_launches_nothing(runs_dir, capsys):
    args = ["-m", *tiny_overrides(runs_dir, "trainer.max_steps=4"), "optim.lr=0.05,0.1"]
    assert cli(*args) == 0
    first = capsys.readouterr().out
    assert "  completed     2" in first and "  failed        0" in first
    assert cli(*args) == 0
    again = capsys.readouterr().out
    assert "2 of 2 runs already completed, not launched; 0 to launch" in again
    assert "  skipped       2" in again and "ijr-train:" not in again


def test_wandb_offline_run_contains_the_logged_metrics(runs_dir, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    summary = train(compose_cfg(*tiny_overrides(runs_dir, "logger=wandb")))
    assert summary["status"] == "completed"
    run_dir = runs_dir / "default" / summary["run_key"]
    run_id = (run_dir / "wandb_id").read_text().strip()
    files = list(runs_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 1
    # the W&B writer is a separate service process: give it time to flush under load
    deadline = time.time() + 60
    blob = files[0].read_bytes()
    while b"test/acc" not in blob and time.time() < deadline:
        time.sleep(0.5)
        blob = files[0].read_bytes()
    for name in (b"train/loss", b"test/acc", b"optim.lr", b"model.name"):
        assert name in blob
    assert json.dumps(summary["final"]["test/acc"]).encode() in blob
    # a resumed run continues the same W&B run id
    assert (
        train(compose_cfg(*tiny_overrides(runs_dir, "logger=wandb", "resume=true")))["status"]
        == "completed"
    )
    assert (run_dir / "wandb_id").read_text().strip() == run_id


def _sweep_config(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_launchers_predict_the_run_directories_train_writes(runs_dir, tmp_path):
    """The skip-before-launch filter and the end table read the directory ijr.multirun computes;
    it must be the one ijr-train writes (completed runs, a run rejected at setup, a CIFAR-format
    dataset whose files may enter the run key)."""
    root = tmp_path / "data"
    make_fake_cifar(root, n_train=32, n_test=16, seed=0)
    cifar = ["data=cifar10", f"data.root={root}", "data.test_subset=16", "data.batch_size=16"]
    points = [["optim.lr=0.05"], ["optim.lr=-1"], [*cifar, "optim.lr=0.05"]]
    assert cli("-m", *tiny_overrides(runs_dir, "trainer.max_steps=2"), "optim.lr=0.05,-1") == 1
    assert cli("-m", *tiny_overrides(runs_dir, "trainer.max_steps=2", *cifar)) == 0
    written = {p.parent for p in runs_dir.glob("default/*/summary.json")}
    predicted = {}
    for point in points:
        cfg = _sweep_config(*tiny_overrides(runs_dir, "trainer.max_steps=2", *point))
        predicted[tuple(point)] = multirun.run_dir_for(cfg)
    assert {path for path, _ in predicted.values()} == written
    assert [done for _, done in predicted.values()] == [True, False, True]


def test_table_counts_and_reasons():
    jobs = [
        multirun.Job(["optim.lr=0.1"], 0, Path("/r/a"), "completed"),
        multirun.Job(["optim.lr=9"], 1, Path("/r/b"), "diverged", "training loss 1e9 at step 2"),
        multirun.Job(["optim.lr=-1"], 2, Path("/r/c"), "failed", "ConfigError: optim.lr", "x.err"),
        multirun.Job(["optim.lr=0.2"], 3, Path("/r/d"), "skipped", "completed before"),
    ]
    table = multirun.format_table(jobs)
    for column in multirun.COLUMNS:
        assert f"  {column:<10}{1:>5}  {multirun.NOTES[column]}".rstrip() in table
    assert "diverged  /r/b  training loss 1e9 at step 2" in table
    assert "failed    /r/c  ConfigError: optim.lr" in table and "log: x.err" in table
    assert "/r/a" not in table and "/r/d" not in table
    trace = "Job (task=0) failed during processing with trace:\n----\nTraceback...\nValueError: bad"
    assert multirun._first_line(trace) == "Job (task=0) failed: ValueError: bad"


def test_a_run_left_running_is_failed_unless_another_process_holds_its_lock(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_summary(status="running")
    job = multirun.settle(multirun.Job([], 0, run.path))
    assert (job.status, job.reason) == (
        "failed",
        "summary.json still says running: the job was killed",
    )
    holder = run.try_lock()
    try:
        job = multirun.settle(multirun.Job([], 0, run.path))
        assert job.status == "skipped" and "running elsewhere" in job.reason
        assert str(run.path) in multirun.format_table([job])
    finally:
        holder.close()
    assert multirun.settle(
        multirun.Job([], 0, run.path), "job 7 ended without a result"
    ).status == ("failed")
