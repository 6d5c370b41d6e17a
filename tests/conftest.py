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

# Tiny models: one thread is faster than two on a shared 2-core machine and keeps timings stable.
torch.set_num_threads(1)
sys.path.insert(
    0, str(Path(__file__).parent)
)  # test-only helpers (kill_callbacks) for subprocesses too


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


def run_cli(
    *args: str, timeout: float = 240, check: bool = False, **popen
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HYDRA_FULL_ERROR="0",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(Path(__file__).parent),
    )
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


def cli(*args: str) -> int:
    """Run ``ijr-train ARGS`` in this process (Hydra's real command-line path); returns the exit code."""
    from ijr.train import main

    saved = sys.argv
    sys.argv = ["ijr-train", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d
