"""Fault injection (issue 15): kill -9 a run with every probe at seeded random steps and points
of a step, with and without checkpoints, again and again, then let it finish; every time its
files must equal an uninterrupted run's (metrics.csv, probe artefacts, summary.json without its
wall-clock fields).

Each attempt is a forked copy of this process (no interpreter start-up per kill), killed either
by a callback at a chosen step and point (before the update, after the step's measurements and
checkpoint, while a checkpoint is assembled) or by the parent after a seeded random delay (any
point: inside a metrics write, a checkpoint write, the summary). ``FAULTS_SURVIVED`` counts the
kills of the last session, printed at the end of the module (``-s``) for README.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import numpy as np
import pytest

from conftest import compose_cfg
from ijr.train import train

PROBED = [
    "data=synthetic",
    "data.shape=[1,8,8]",
    "data.n_train=256",
    "data.n_test=128",
    "model=fcn3",
    "data.batch_size=32",
    "optim.lr=0.05",
    "trainer.max_steps=24",
    "trainer.eval_every_n_steps=6",
    "trainer.log_every_n_steps=1",
    "trainer.progress_bar=false",
    "probes=all",
    "probes.size=64",
    "probes.every_n_steps=4",
    "probes.expensive_every_n_steps=8",
    "probes.rho_b_batches=4",
    "probes.track_examples=4",
    "probes.cheap=[weights,logits,impurity,jacobian,trajectory]",
    "probes.expensive=[sharpness,gauss_newton,rho_b,io_jacobian,gen_gap,subspace,margins]",
]
CHECKPOINTING = (
    ["trainer.checkpoint_every_n_steps=5"],
    ["trainer.checkpoint_every_n_steps=3"],
    ["trainer.checkpoint=false"],
)
HOOKS = ("batch_start", "batch_end", "save_checkpoint", "timer")
WALL_CLOCK = ("updated_at", "wall_time_s", "resumed_from_step")
FAULTS_SURVIVED = {"kills": 0, "runs": 0}


def _files(run) -> dict[str, object]:
    """What a run measured, by relative path: bytes, or arrays for .npz (zip headers carry the
    time of writing); summary.json without its wall-clock fields."""
    out: dict[str, object] = {}
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run).as_posix()
        if not path.is_file() or rel.startswith((".hydra", "checkpoints")) or rel == ".lock":
            continue
        if path.suffix == ".npz":
            with np.load(path) as data:
                out[rel] = {k: data[k].tobytes() for k in data.files}
        elif path.name == "summary.json":
            summary = json.loads(path.read_text())
            out[rel] = {k: v for k, v in summary.items() if k not in WALL_CLOCK}
        else:
            out[rel] = path.read_bytes()
    return out


def _attempt(overrides: list[str], kill: tuple[int, str] | None, delay: float) -> int:
    """Train in a forked child; returns its wait status (killed or exited)."""
    extra = []
    if kill is not None and kill[1] != "timer":
        step, hook = kill
        extra = [f"+callbacks.kill={{_target_: kill_callbacks.KillAt, step: {step}, hook: {hook}}}"]
    cfg = compose_cfg(*overrides, *extra)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            code = 0 if train(cfg)["status"] == "completed" else 4
        finally:
            os._exit(code)
    if kill is not None and kill[1] == "timer":
        time.sleep(delay)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return os.waitpid(pid, 0)[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ref")
    started = time.time()
    assert _attempt([f"paths.runs={runs}", *PROBED], None, 0.0) == 0  # as the attempts run
    seconds = time.time() - started
    summary = train(compose_cfg(f"paths.runs={runs}", *PROBED))  # skipped: reads the summary
    assert summary["status"] == "completed"
    files = _files(runs / "default" / summary["run_key"])
    assert {"metrics.csv", "probe_examples.csv", "logit_eigvecs.csv", "trajectory.bin"} <= set(
        files
    )
    assert any(name.startswith("margins/") for name in files)
    return summary["run_key"], files, seconds


def _kill_point(rng: random.Random, checkpointing: str) -> tuple[int, str]:
    """A (step, point) the run reaches: updates start at 0..23 and end at 1..24; checkpoints
    are assembled at multiples of the cadence and at the end."""
    hook = rng.choice(HOOKS if "every" in checkpointing else ("batch_start", "batch_end", "timer"))
    if hook == "save_checkpoint":
        every = int(checkpointing.rsplit("=", 1)[1])
        return rng.choice([*range(every, 24, every), 24]), hook
    return rng.randint(0, 23) + (hook == "batch_end"), hook


def _trial(tmp_path, reference, rng: random.Random) -> int:
    key, ref_files, ref_seconds = reference
    runs = tmp_path / f"trial-{rng.random():.6f}"
    overrides = [f"paths.runs={runs}", *PROBED, *rng.choice(CHECKPOINTING)]
    kills, wanted = 0, rng.randint(1, 3)
    for _ in range(2 * wanted):  # a kill point the run does not reach lets it finish
        kill = _kill_point(rng, overrides[-1])
        status = _attempt(overrides, kill, delay=rng.uniform(0.05, 0.95) * ref_seconds)
        if os.WIFEXITED(status):
            assert os.WEXITSTATUS(status) == 0, (kill, status)
            break
        assert os.WTERMSIG(status) == signal.SIGKILL, (kill, status)
        kills += 1
        if kills == wanted:
            break
    status = _attempt(overrides, None, 0.0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    got = _files(runs / "default" / key)
    assert got.keys() == ref_files.keys()
    for name in ref_files:
        assert got[name] == ref_files[name], (name, overrides[-1])
    FAULTS_SURVIVED["kills"] += kills
    FAULTS_SURVIVED["runs"] += 1
    print(
        f"\nfault injection: run {FAULTS_SURVIVED['runs']} ({overrides[-1]}) survived {kills} "
        f"kill -9; {FAULTS_SURVIVED['kills']} so far",
        flush=True,
    )
    return kills


def test_killed_runs_finish_with_the_files_of_an_uninterrupted_one(tmp_path, reference):
    rng = random.Random(15)
    kills = sum(_trial(tmp_path, reference, rng) for _ in range(3))
    assert kills >= 3


@pytest.mark.slow
def test_many_killed_runs_finish_with_the_files_of_an_uninterrupted_one(tmp_path, reference):
    rng = random.Random(1515)
    kills = sum(_trial(tmp_path, reference, rng) for _ in range(30))
    print(f"\nfault injection: {kills} kill -9 survived over 30 runs")
    assert kills >= 30


def teardown_module(module):
    print(
        f"\nfault injection: {FAULTS_SURVIVED['kills']} kills survived in {FAULTS_SURVIVED['runs']} runs"
    )
