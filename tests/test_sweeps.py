"""Sweeps that survive real clusters: submitit jobs that diverge or raise, re-launching, W&B offline."""

from __future__ import annotations

import json
import time

from conftest import cli, compose_cfg, run_cli, tiny_overrides
from ijr.reporting import load_runs
from ijr.train import train


def test_submitit_sweep_isolates_failures_and_relaunch_skips_finished(runs_dir):
    # lr 0.05 and 0.1 train, 1000 diverges, -1 is rejected before training starts
    args = [
        "-m",
        *tiny_overrides(runs_dir, "trainer.max_steps=8"),
        "hydra/launcher=submitit_local",
        "optim.lr=0.05,0.1,1000,-1",
    ]
    proc = run_cli(*args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = load_runs(runs_dir)
    assert len(runs) == 4
    assert sorted(runs["status"]) == ["completed", "completed", "diverged", "failed"]
    failed = runs[runs["status"] == "failed"].iloc[0]
    assert "optim.lr must be a finite number" in failed["error"]
    # re-launch in this process with the basic launcher: completed runs are skipped
    stamps = {p: p.stat().st_mtime_ns for p in runs_dir.glob("default/*/metrics.csv")}
    assert cli(*[a for a in args if not a.startswith("hydra/launcher")]) == 0
    after = load_runs(runs_dir)
    assert sorted(after["status"]) == ["completed", "completed", "diverged", "failed"]
    completed_dirs = {str(d) for d in runs[runs["status"] == "completed"]["run_dir"]}
    for path, stamp in stamps.items():
        if str(path.parent) in completed_dirs:
            assert path.stat().st_mtime_ns == stamp, "a completed run was trained again"


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
