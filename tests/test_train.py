"""The runnable suite end to end: run directories, determinism, resume, divergence, bad input."""

from __future__ import annotations

import csv
import json
import signal

import pytest
import torch

from conftest import cli, compose_cfg, run_cli, tiny_overrides
from ijr.callbacks import Terminated
from ijr.data import build_datamodule
from ijr.methods.base import TrainingModule
from ijr.models import build as build_model
from ijr.rundir import RunDir, compute_run_key
from ijr.train import ConfigError, train


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def only_run_dir(runs, experiment="default"):
    dirs = [p for p in (runs / experiment).iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_digits_run_writes_the_run_directory(runs_dir):
    summary = train(compose_cfg(*tiny_overrides(runs_dir)))
    run = only_run_dir(runs_dir)
    assert summary["status"] == "completed"
    assert summary["steps"] == 30 and summary["run_key"] == run.name
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["profile"] == "paper"
    assert (run / ".hydra" / "config.yaml").exists()
    assert (run / "checkpoints" / "last.ckpt").exists()
    rows = read_csv(run / "metrics.csv")
    header = list(rows[0].keys())
    assert header[:2] == ["step", "epoch"]
    for name in ("train/loss", "train/acc", "test/loss", "test/acc"):
        assert name in header
    test_steps = [int(r["step"]) for r in rows if r["test/acc"]]
    assert test_steps == [0, 10, 20, 30]
    train_steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert train_steps == [0, 5, 10, 15, 20, 25]
    # it learns: digits with a 3FCN goes well above chance in 30 steps
    assert float(on_disk["final"]["test/acc"]) > 0.5
    # the run key is the config hash (same config -> same key)
    assert run.name == compute_run_key(
        __import__("ijr.train", fromlist=["apply_profile"]).apply_profile(
            compose_cfg(*tiny_overrides(runs_dir))
        )
    )


def test_same_command_twice_is_bit_identical(tmp_path):
    a = train(compose_cfg(*tiny_overrides(tmp_path / "a")))
    b = train(compose_cfg(*tiny_overrides(tmp_path / "b")))
    assert a["run_key"] == b["run_key"]
    ra = (only_run_dir(tmp_path / "a") / "metrics.csv").read_text()
    rb = (only_run_dir(tmp_path / "b") / "metrics.csv").read_text()
    assert ra == rb


def test_completed_run_is_skipped_and_resume_false_restarts(runs_dir, capsys):
    cfg = compose_cfg(*tiny_overrides(runs_dir))
    first = train(cfg)
    second = train(cfg)
    assert "already completed" in capsys.readouterr().out
    assert second["updated_at"] == first["updated_at"]
    third = train(compose_cfg(*tiny_overrides(runs_dir, "resume=false")))
    assert third["status"] == "completed" and third["resumed_from_step"] is None


def test_seed_changes_the_run(tmp_path):
    a = train(compose_cfg(*tiny_overrides(tmp_path, "seed=1")))
    b = train(compose_cfg(*tiny_overrides(tmp_path, "seed=2")))
    assert a["run_key"] != b["run_key"]
    assert a["final"]["train/loss"] != b["final"]["train/loss"]


def test_divergence_is_a_status_not_a_crash(runs_dir):
    summary = train(
        compose_cfg(*tiny_overrides(runs_dir, "optim.lr=1000", "trainer.max_steps=200"))
    )
    assert summary["status"] == "diverged"
    assert "training loss" in summary["error"]
    assert summary["steps"] < 200


def test_divergence_exit_code_is_zero(runs_dir, capsys):
    assert cli(*tiny_overrides(runs_dir, "optim.lr=1000", "trainer.max_steps=200")) == 0
    assert "diverged" in capsys.readouterr().out


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.name=resnet99"], "unknown model 'resnet99'; valid models:"),
        (["method.name=adamw"], "unknown method 'adamw'; valid methods:"),
        (["optim.lr=-0.1"], "optim.lr must be a finite number >= 0"),
        (["data.batch_size=100000"], "batch_size"),
        (["data.batch_size=0"], "batch_size"),
        (["data.subset=100000"], "subset"),
        (["trainer.max_steps=null"], "no stopping criterion"),
    ],
)
def test_bad_input_is_one_clear_line(runs_dir, overrides, message):
    cfg = compose_cfg(*tiny_overrides(runs_dir, *overrides))
    with pytest.raises(ValueError) as info:
        train(cfg)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_bad_input_on_the_command_line(runs_dir, capsys):
    assert cli(*tiny_overrides(runs_dir, "model.name=resnet99")) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ijr-train: error: unknown model"), err
    assert not any(runs_dir.rglob("summary.json"))  # nothing was started
    assert cli(*tiny_overrides(runs_dir, "profile=enormous")) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "profile" in err


def test_missing_dataset_offline_fails_at_once(runs_dir, tmp_path, capsys):
    code = cli(
        *tiny_overrides(runs_dir, "data=cifar10", f"data.root={tmp_path / 'nowhere'}", "model=cnn6")
    )
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2
    assert len(lines) == 1 and str(tmp_path / "nowhere") in lines[0], err


def test_full_batch_gradient_equals_mean_loss_gradient_for_any_chunking():
    torch.manual_seed(0)
    dm = build_datamodule({"name": "digits", "batch_size": "full", "subset": 300}, seed=0)
    dm.setup()
    x, y = dm.train_batch(0)
    assert x.shape[0] == 300
    model = build_model("fcn3", dm.num_classes, tuple(dm.in_shape))
    params = dict(model.named_parameters())
    loss = torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)
    reference = torch.autograd.grad(loss, list(params.values()))
    for chunk in (300, 64, 7):
        module = TrainingModule(model, physical_batch_size=chunk)
        model.zero_grad(set_to_none=True)
        module.accumulate_loss_gradient(x, y)
        for g_ref, p in zip(reference, model.parameters(), strict=True):
            torch.testing.assert_close(p.grad, g_ref, rtol=1e-5, atol=1e-7)


def test_full_batch_training_does_not_depend_on_chunk_size(tmp_path):
    finals = []
    for chunk in (300, 64):
        cfg = compose_cfg(
            *tiny_overrides(
                tmp_path,
                "data.batch_size=full",
                "data.subset=300",
                f"data.physical_batch_size={chunk}",
                "trainer.max_steps=10",
            )
        )
        summary = train(cfg)
        run = RunDir(tmp_path / "default" / summary["run_key"])
        state = torch.load(run.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        finals.append(state)
        assert summary["status"] == "completed"
    for k in finals[0]:
        torch.testing.assert_close(finals[0][k], finals[1][k], rtol=1e-4, atol=1e-6)


KILL_OVERRIDES = [
    "data=synthetic",
    "data.subset=512",
    "model=fcn3",
    "data.batch_size=64",
    "optim.lr=0.02",
    "trainer.max_steps=40",
    "trainer.eval_every_n_steps=10",
    "trainer.log_every_n_steps=1",
    "trainer.checkpoint_every_n_steps=10",
    "trainer.progress_bar=false",
]


def kill_at(step: int, signum: int) -> str:
    return (
        f"+callbacks.kill={{_target_: kill_callbacks.SignalAtStep, step: {step}, signum: {signum}}}"
    )


def test_killed_run_resumes_row_for_row(tmp_path):
    """SIGKILL at step 27 (a real kill of the process: summary stays 'running', the last
    checkpoint is from step 20), then the same command again: metrics.csv equals an
    uninterrupted run's row for row."""
    ref = train(compose_cfg(f"paths.runs={tmp_path / 'ref'}", *KILL_OVERRIDES))
    ref_rows = read_csv(tmp_path / "ref" / "default" / ref["run_key"] / "metrics.csv")

    runs = tmp_path / "killed"
    args = [f"paths.runs={runs}", *KILL_OVERRIDES]
    proc = run_cli(*args, kill_at(27, int(signal.SIGKILL)))
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr)
    run = runs / "default" / ref["run_key"]  # extra callbacks are not part of the run key
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    assert 20 < len(read_csv(run / "metrics.csv")) < len(ref_rows)
    resumed = train(compose_cfg(*args))
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 20
    assert read_csv(run / "metrics.csv") == ref_rows


def test_sigterm_checkpoints_records_and_resumes(tmp_path):
    runs = tmp_path / "runs"
    args = [f"paths.runs={runs}", *KILL_OVERRIDES, "trainer.checkpoint_every_n_steps=1000"]
    with pytest.raises(Terminated):
        train(compose_cfg(*args, kill_at(13, int(signal.SIGTERM))))
    run = next(runs.glob("default/*/summary.json")).parent
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert "terminated by signal 15 (SIGTERM) at step 13" in summary["error"]
    assert summary["stop_reason"] == "signal SIGTERM"
    assert (run / "checkpoints" / "last.ckpt").exists()
    resumed = train(compose_cfg(*args))
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 13
    ref = train(compose_cfg(f"paths.runs={tmp_path / 'ref'}", *KILL_OVERRIDES))
    ref_rows = read_csv(tmp_path / "ref" / "default" / ref["run_key"] / "metrics.csv")
    assert read_csv(run / "metrics.csv") == ref_rows


def test_multirun_sweeps_learning_rates(runs_dir):
    assert cli("-m", *tiny_overrides(runs_dir, "optim.lr=0.01,0.02", "trainer.max_steps=5")) == 0
    summaries = [json.loads(p.read_text()) for p in runs_dir.glob("default/*/summary.json")]
    assert len(summaries) == 2 and all(s["status"] == "completed" for s in summaries)
    lrs = sorted(
        __import__("yaml").safe_load((p.parent / ".hydra" / "config.yaml").read_text())["optim"][
            "lr"
        ]
        for p in runs_dir.glob("default/*/summary.json")
    )
    assert lrs == [0.01, 0.02]


def test_quick_profile_is_the_same_code_smaller(runs_dir):
    summary = train(
        compose_cfg(
            *tiny_overrides(
                runs_dir,
                "profile=quick",
                "trainer.max_steps=5000",
                "profile.max_steps=12",
                "profile.data_subset=500",
            )
        )
    )
    run = RunDir(runs_dir / "default" / summary["run_key"])
    saved = __import__("yaml").safe_load((run.path / ".hydra" / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 12 and saved["data"]["subset"] == 500
    assert summary["steps"] == 12 and summary["profile"] == "quick"


def test_config_error_type():
    assert issubclass(ConfigError, ValueError)


def test_quick_profile_keeps_a_dataset_smaller_than_the_cap(runs_dir):
    summary = train(
        compose_cfg(*tiny_overrides(runs_dir, "profile=quick"))
    )  # digits: 1,438 < 5,000
    assert summary["status"] == "completed"
    saved = __import__("yaml").safe_load(
        (runs_dir / "default" / summary["run_key"] / ".hydra" / "config.yaml").read_text()
    )
    assert saved["data"]["subset"] is None


def test_multirun_records_a_run_that_cannot_start(runs_dir):
    # the sweep goes on past the failed run; the launcher exits 1 at the end (ijr.multirun)
    assert (
        cli("-m", *tiny_overrides(runs_dir, "data.batch_size=32,100000", "trainer.max_steps=3"))
        == 1
    )
    statuses = sorted(
        json.loads(p.read_text())["status"] for p in runs_dir.glob("default/*/summary.json")
    )
    assert statuses == ["completed", "failed"]


def test_a_locked_run_directory_is_skipped(runs_dir, capsys):
    cfg = compose_cfg(*tiny_overrides(runs_dir))
    from ijr.train import apply_profile, resolve_data_cap

    effective = apply_profile(cfg)
    resolve_data_cap(effective)
    holder = RunDir.for_config(effective).try_lock()
    try:
        summary = train(cfg)
        assert "another process is running" in capsys.readouterr().out
        assert (
            summary["status"] == "running"
            and not (RunDir.for_config(effective).metrics_csv).exists()
        )
    finally:
        holder.close()
    assert train(cfg)["status"] == "completed"


def test_settings_of_probes_that_do_not_run_leave_the_run_key_alone(runs_dir):
    base = compose_cfg(*tiny_overrides(runs_dir))
    other = compose_cfg(*tiny_overrides(runs_dir, "probes.every_n_steps=7"))
    assert compute_run_key(base) == compute_run_key(other)
    on = compose_cfg(*tiny_overrides(runs_dir, "probes=basic"))
    assert compute_run_key(on) != compute_run_key(base)


@pytest.mark.parametrize(
    "size, cap, train_size, expected",
    [
        (0.05, 256, 2000, 256),  # the paper's fraction -> the quick profile's count
        (None, 256, 2000, 256),  # the whole set -> the count
        (1000, 256, 2000, 256),  # a count is capped
        (64, 256, 2000, 64),  # a smaller count is kept
        (0.05, 256, 150, 150),  # never more than the training set
        (0.05, None, 2000, 0.05),  # profile=paper: as configured
    ],
)
def test_profile_probe_size_replaces_fractions_and_caps_counts(size, cap, train_size, expected):
    from omegaconf import OmegaConf

    from ijr.train import apply_probe_size

    cfg = OmegaConf.create({"profile": {"probe_size": cap}, "probes": {"size": size}})
    apply_probe_size(cfg, train_size)
    assert cfg.probes.size == expected and type(cfg.probes.size) is type(expected)


def test_quick_figure5_probe_set_is_the_experiments_count(runs_dir):
    from ijr.train import apply_profile, resolve_data_cap

    cfg = apply_profile(
        compose_cfg(f"paths.runs={runs_dir}", "experiment=fig5_lr", "profile=quick", "data=digits")
    )
    resolve_data_cap(cfg)
    assert cfg.probes.size == 256  # quick_scale.probe_size, not 5 % of the subset
