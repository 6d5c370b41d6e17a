"""Bad input is one line naming the key or file and the remedy, with a non-zero exit (issue 15
case 7), and the consistency items at the end of the issue."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from conftest import cli, compose_cfg, tiny_overrides
from ijr.callbacks import Terminated
from ijr.data import build_datamodule
from ijr.rundir import RunDir
from ijr.train import RunDataError, apply_profile, resolve_data_cap, train


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ijr-train")]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "model=nosuch",
            "unknown model 'nosuch' (model=nosuch); valid model choices: cnn6, coord_mlp, fc2",
        ),
        ("optim.lrr=0.1", "unknown key 'optim.lrr' (optim.lrr=...); keys of optim: lr, momentum"),
        ("+foo=1", "unknown key 'foo' (+foo=...): the config has no such key"),
        ("probes=al", "unknown probes 'al' (probes=al); valid probes choices: all, basic, none"),
    ],
)
def test_unknown_choices_and_keys_are_one_line_with_the_valid_names(
    runs_dir, capsys, override, expected
):
    assert cli(*tiny_overrides(runs_dir, override)) == 2
    assert expected in one_error_line(capsys)
    assert not runs_dir.exists() or not any(runs_dir.rglob("summary.json"))


def test_a_sweep_with_an_unknown_choice_is_refused_before_any_run(runs_dir, capsys):
    assert cli("-m", *tiny_overrides(runs_dir, "model=fcn3,nosuch")) == 2
    assert "unknown model 'nosuch'" in one_error_line(capsys)
    assert not runs_dir.exists() or not any(runs_dir.rglob("summary.json"))


def test_added_keys_into_open_mappings_are_still_accepted(runs_dir, capsys):
    watcher = "+callbacks.watch={_target_: kill_callbacks.SignalAtStep, step: 999}"
    assert cli(*tiny_overrides(runs_dir, "trainer.max_steps=2", watcher)) == 0
    nested = ["+callbacks.w._target_=kill_callbacks.SignalAtStep", "+callbacks.w.step=999"]
    assert cli(*tiny_overrides(runs_dir, "trainer.max_steps=2", *nested)) == 0
    assert cli(*tiny_overrides(runs_dir, "trainer.max_steps=2", "+optim.extra=1")) == 2
    assert "unknown key 'optim.extra'" in one_error_line(capsys)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("seed=-1", "seed must be an integer in [0, 2**32 - 1], got -1"),
        ("trainer.max_steps=abc", "trainer.max_steps must be an integer >= 1 (or null), got 'abc'"),
        ("trainer.eval_every_n_steps=0", "trainer.eval_every_n_steps must be an integer >= 1"),
    ],
)
def test_bad_values_name_their_key(runs_dir, capsys, override, expected):
    assert cli(*tiny_overrides(runs_dir, override)) == 2
    assert expected in one_error_line(capsys)


def test_a_corrupt_checkpoint_names_the_file_and_the_remedy(runs_dir):
    args = tiny_overrides(runs_dir, "trainer.checkpoint_every_n_steps=1000")
    stop = "+callbacks.kill={_target_: kill_callbacks.SignalAtStep, step: 7, signum: 15}"
    with pytest.raises(Terminated):
        train(compose_cfg(*args, stop))
    (ckpt,) = runs_dir.glob("default/*/checkpoints/last.ckpt")
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(RunDataError) as info:
        train(compose_cfg(*args))
    text = str(info.value)
    assert f"checkpoint {ckpt} cannot be read" in text and "delete it" in text
    assert "\n" not in text
    assert json.loads((ckpt.parent.parent / "summary.json").read_text())["status"] == "failed"


def _tree(root, fmt="PNG"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(3):
                arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / cls / f"{i}.{fmt.lower()}", fmt)
    return root


def _images(root, **extra):
    cfg = {"name": "imagefolder", "root": str(root), "batch_size": 2, "standardize": False}
    dm = build_datamodule({**cfg, **extra}, 0)
    dm.setup()
    return dm.train_x.clone()


def test_a_truncated_image_cache_is_rebuilt(tmp_path):
    root = _tree(tmp_path / "tree")
    first = _images(root)
    caches = sorted((root / ".ijr_cache").glob("*.pt"))
    assert caches
    for cache in caches:
        cache.write_bytes(cache.read_bytes()[:50])
    with pytest.warns(UserWarning, match=r"decoded-image cache .*\.pt is unreadable"):
        again = _images(root)
    assert torch.equal(first, again)
    for cache in caches:
        torch.load(cache, weights_only=True)  # rewritten whole


def test_a_truncated_jpeg_names_the_file(tmp_path):
    root = _tree(tmp_path / "tree", "JPEG")
    broken = root / "train" / "b" / "2.jpeg"
    broken.write_bytes(broken.read_bytes()[:200])
    with pytest.raises(ValueError) as info:
        _images(root, cache=False)
    assert f"cannot decode image {broken}" in str(info.value)
    assert "replace or remove the file" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------- consistency
def test_a_failed_run_lists_only_the_files_it_has(runs_dir, capsys):
    sweep = tiny_overrides(runs_dir, "data.batch_size=32,100000", "trainer.max_steps=3")
    assert cli("-m", *sweep) == 1  # the sweep had a failed run
    out = capsys.readouterr().out
    (failed,) = [line for line in out.splitlines() if line.startswith("ijr-train: failed:")]
    assert failed.endswith("(summary.json)")
    (done,) = [line for line in out.splitlines() if line.startswith("ijr-train: completed:")]
    assert done.endswith("(metrics.csv, summary.json)")


def test_steps_is_a_number_for_runs_failing_while_being_built(runs_dir):
    cfg = compose_cfg(*tiny_overrides(runs_dir, "+model.kwargs.no_such_argument=1"))
    with pytest.raises(ValueError, match="no_such_argument"):
        train(cfg)
    (summary,) = runs_dir.glob("default/*/summary.json")
    recorded = json.loads(summary.read_text())
    assert recorded["status"] == "failed" and recorded["steps"] == 0
    assert "no_such_argument" in recorded["error"]


def test_a_skipped_duplicate_says_skipped(runs_dir, capsys):
    args = tiny_overrides(runs_dir, "trainer.max_steps=2")
    effective = apply_profile(compose_cfg(*args))
    resolve_data_cap(effective)
    holder = RunDir.for_config(effective).try_lock()
    try:
        assert cli(*args) == 0
    finally:
        holder.close()
    out = capsys.readouterr().out
    assert "ijr-train: skipped (another process is running it):" in out
    assert "ijr-train: running:" not in out
    assert cli(*args) == 0
    assert "ijr-train: completed:" in capsys.readouterr().out
    assert cli(*args) == 0
    assert "ijr-train: skipped (already completed):" in capsys.readouterr().out


def test_sigint_is_not_a_keyboard_interrupt_traceback(runs_dir):
    stop = "+callbacks.kill={_target_: kill_callbacks.SignalAtStep, step: 4, signum: 2}"
    with pytest.raises(Terminated) as info:
        train(compose_cfg(*tiny_overrides(runs_dir, stop)))
    assert info.value.signum == signal.SIGINT and info.value.checkpointed
