"""Resume edge cases of issue 15: nothing lost, duplicated or mixed (cases 1, 2, 3, 5, 6), and
the signals of issue 16 item 1 (each one a real signal to a real process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, compose_cfg, run_cli
from ijr.callbacks import Terminated
from ijr.code_version import code_version
from ijr.metrics_log import MetricsFileError
from ijr.train import RunDataError, train

FAST = [
    "data=synthetic",
    "data.subset=256",
    "model=fcn3",
    "data.batch_size=64",
    "optim.lr=0.02",
    "trainer.max_steps=30",
    "trainer.eval_every_n_steps=10",
    "trainer.log_every_n_steps=1",
    "trainer.checkpoint_every_n_steps=10",
    "trainer.progress_bar=false",
]


def at_step(step: int, signum: int) -> str:
    return (
        f"+callbacks.kill={{_target_: kill_callbacks.SignalAtStep, step: {step}, signum: {signum}}}"
    )


def ijr_lines(text: str) -> list[str]:
    """ijr's own lines (this machine's Lightning may warn about an srun on PATH)."""
    return [line for line in text.splitlines() if line.startswith("ijr-train")]


def run_dir_of(runs):
    (summary,) = list(runs.glob("default/*/summary.json"))
    return summary.parent


def files_of(run) -> dict[str, bytes]:
    """Every file a run measured (metrics and probe artefacts), by relative path."""
    skip = {"summary.json", ".lock", "error.log"}
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file()
        and p.name not in skip
        and ".hydra" not in p.parts
        and "checkpoints" not in p.parts
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ref")
    summary = train(compose_cfg(f"paths.runs={runs}", *FAST))
    assert summary["status"] == "completed"
    return files_of(run_dir_of(runs))


# ------------------------------------------------------------------ case 1: restart from step 0
def test_a_restart_from_step_0_starts_the_files_over(tmp_path, reference):
    """kill -9 before the first checkpoint, then the same command: no row twice."""
    args = [f"paths.runs={tmp_path}", *FAST, "trainer.checkpoint_every_n_steps=1000"]
    proc = run_cli(*args, at_step(17, int(signal.SIGKILL)))
    assert proc.returncode == -signal.SIGKILL
    run = run_dir_of(tmp_path)
    assert not (run / "checkpoints" / "last.ckpt").exists()
    assert train(compose_cfg(*args))["resumed_from_step"] is None
    assert files_of(run) == reference


def test_rerunning_a_diverged_run_does_not_append(tmp_path):
    args = [f"paths.runs={tmp_path}", *FAST, "optim.lr=1000"]
    assert train(compose_cfg(*args))["status"] == "diverged"
    first = (run_dir_of(tmp_path) / "metrics.csv").read_bytes()
    assert train(compose_cfg(*args))["status"] == "diverged"
    assert (run_dir_of(tmp_path) / "metrics.csv").read_bytes() == first


# ------------------------------------------------ case 2: a completed run without its summary
@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_a_completed_run_without_a_summary_is_left_alone(tmp_path, damage):
    args = [f"paths.runs={tmp_path}", *FAST]
    train(compose_cfg(*args))
    run = run_dir_of(tmp_path)
    before = files_of(run), (run / "checkpoints" / "last.ckpt").read_bytes()
    if damage == "delete":
        (run / "summary.json").unlink()
    else:
        (run / "summary.json").write_text('{"status": "compl')
    with pytest.raises(RunDataError, match="summary.json is missing or unreadable") as info:
        train(compose_cfg(*args))
    assert "resume=false" in str(info.value) and "\n" not in str(info.value)
    assert (files_of(run), (run / "checkpoints" / "last.ckpt").read_bytes()) == before
    proc = run_cli(*args)
    assert proc.returncode == 2 and "summary.json is missing" in proc.stderr
    assert len(ijr_lines(proc.stderr)) == 1


# ----------------------------------------------------------- case 3: metrics.csv is validated
def _terminated_at(tmp_path, step: int):
    args = [f"paths.runs={tmp_path}", *FAST]
    with pytest.raises(Terminated):
        train(compose_cfg(*args, at_step(step, int(signal.SIGTERM))))
    return args, run_dir_of(tmp_path)


def test_a_row_cut_after_the_checkpoint_is_dropped_and_measured_again(tmp_path, reference):
    args, run = _terminated_at(tmp_path, 23)
    with (run / "metrics.csv").open("a") as f:
        f.write("2")  # a write cut inside the next row's step field
    assert train(compose_cfg(*args))["status"] == "completed"
    assert files_of(run) == reference


def test_rows_lost_before_the_checkpoint_stop_the_resume(tmp_path):
    args, run = _terminated_at(tmp_path, 23)
    lines = (run / "metrics.csv").read_bytes().splitlines(keepends=True)
    (run / "metrics.csv").write_bytes(b"".join(lines[:8]))  # rows 0-6 of 0-22
    with pytest.raises(MetricsFileError, match="metrics.csv holds 7 rows before step 23") as info:
        train(compose_cfg(*args))
    assert "resume=false" in str(info.value)


def test_an_incomplete_row_before_the_checkpoint_stops_the_resume(tmp_path):
    args, run = _terminated_at(tmp_path, 23)
    lines = (run / "metrics.csv").read_text().splitlines(keepends=True)
    lines[5] = lines[5].split(",")[0] + ",,\r\n"
    (run / "metrics.csv").write_text("".join(lines))
    with pytest.raises(MetricsFileError, match="line 6 is not a complete row"):
        train(compose_cfg(*args))


def test_a_changed_value_before_the_checkpoint_stops_the_resume(tmp_path):
    args, run = _terminated_at(tmp_path, 23)
    text = (run / "metrics.csv").read_text()
    lines = text.splitlines(keepends=True)
    cells = lines[4].split(",")
    cells[2] = "0.5"
    lines[4] = ",".join(cells)
    (run / "metrics.csv").write_text("".join(lines))
    with pytest.raises(MetricsFileError, match="not their values"):
        train(compose_cfg(*args))


# ------------------------------------------------------ case 5: summary.json final on every exit
def test_a_full_disk_records_failed_and_leaves_no_temporary_files(tmp_path):
    args = [f"paths.runs={tmp_path}", *FAST]
    disk_full = "+callbacks.full={_target_: kill_callbacks.DiskFullAtStep, step: 12}"
    with pytest.raises(OSError):
        train(compose_cfg(*args, disk_full))
    run = run_dir_of(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert summary["steps"] == 12
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]


def test_sigterm_at_start_up_records_the_reason(tmp_path):
    setup = "+callbacks.stop={_target_: kill_callbacks.SignalAtSetup, signum: 15}"
    proc = run_cli(f"paths.runs={tmp_path}", *FAST, setup)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    summary = json.loads((run_dir_of(tmp_path) / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["stop_reason"] == "signal SIGTERM"
    assert "while the run was being set up" in summary["error"]
    assert summary["steps"] == 0
    assert not [p for p in run_dir_of(tmp_path).rglob("*") if ".tmp" in p.name]


# ------------------------------------------- signals (issue 16 item 1): checkpoint at the signal
@pytest.mark.parametrize(
    "signame, env",
    [
        ("SIGUSR1", {}),
        ("SIGUSR2", {}),
        ("SIGTERM", {}),
        ("SIGINT", {}),
        ("SIGHUP", {"SUBMITIT_PREEMPT_SIGNAL": "HUP"}),
    ],
)
def test_each_signal_checkpoints_records_and_resumes(tmp_path, reference, signame, env):
    signum = int(getattr(signal, signame))
    args = [f"paths.runs={tmp_path}", *FAST, "trainer.checkpoint_every_n_steps=1000"]
    proc = run_cli(*args, at_step(13, signum), env=env)
    assert proc.returncode == 128 + signum, proc.stderr
    (line,) = ijr_lines(proc.stderr)
    assert "at step 13" in line
    run = run_dir_of(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["stop_reason"] == f"signal {signame}"
    assert f"({signame}) at step 13; checkpoint written" in summary["error"]
    assert summary["steps"] == 13 and (run / "checkpoints" / "last.ckpt").exists()
    resumed = train(compose_cfg(*args))
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 13
    assert resumed["code"] == [code_version()]  # both attempts ran this code: named once
    assert files_of(run) == reference


def test_a_previous_handler_is_called_after_the_checkpoint(tmp_path):
    """As under submitit: its SIGUSR2 handler (requeue, then exit) runs after ijr recorded the
    run, so the job is requeued and resumes from the signal's checkpoint."""
    marker = tmp_path / "requeued"
    script = textwrap.dedent(
        f"""
        import json, signal, sys
        from pathlib import Path
        def requeue(signum, frame):
            summary = next(Path({str(tmp_path)!r}).glob("default/*/summary.json"))
            Path({str(marker)!r}).write_text(json.loads(summary.read_text())["stop_reason"])
            sys.exit(-1)
        signal.signal(signal.SIGUSR2, requeue)
        from ijr.train import main
        sys.argv = ["ijr-train", *{[f"paths.runs={tmp_path}", *FAST, at_step(13, 12)]!r}]
        main()
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240
    )
    assert proc.returncode == 255, proc.stderr
    assert marker.read_text() == "signal SIGUSR2"  # recorded before the handler ran
    assert (run_dir_of(tmp_path) / "checkpoints" / "last.ckpt").exists()


# --------------------------------------------------------------- case 6: run_key is a plain name
@pytest.mark.parametrize("override", ["run_key=../../x", "run_key=a/b", "experiment_name=../up"])
def test_a_run_key_that_is_not_a_plain_name_is_rejected(tmp_path, override):
    with pytest.raises(ValueError, match="is not a plain name") as info:
        train(compose_cfg(f"paths.runs={tmp_path / 'runs'}", *FAST, override))
    assert "\n" not in str(info.value)
    assert not any(tmp_path.rglob("summary.json"))
