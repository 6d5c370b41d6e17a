"""Shared fixtures: composing the real Hydra configs, running ijr-train in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def compose_cfg(*overrides: str):
    """The config ``ijr-train`` would run with these overrides."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def tiny_overrides(runs: Path, *extra: str) -> list[str]:
    """A quick digits run: 3FCN, 30 steps, batch 64."""
    return [
        f"paths.runs={runs}",
        "data=digits",
        "model=fcn3",
        "data.batch_size=64",
        "optim.lr=0.05",
        "trainer.max_steps=30",
        "trainer.eval_every_n_steps=10",
        "trainer.log_every_n_steps=5",
        "trainer.checkpoint_every_n_steps=10",
        "trainer.progress_bar=false",
        *extra,
    ]


def run_cli(*args: str, timeout: float = 240, check: bool = False, **popen) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
    env.update(popen.pop("env", {}))
    proc = subprocess.run(
        [sys.executable, "-m", "ijr.train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=popen.pop("cwd", REPO),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ijr-train failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d
