"""The curvature benchmark's shard merge (``bench_curvature.py --merge-cnn6``): the report built
from several shards' records is the one a single process would print, and inconsistent shards
are refused in one line. Records are synthetic, so nothing here needs CIFAR-10."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "bench" / "bench_curvature.py"
TOLS = [1e-4, 1e-5]


def meta(run_ijr: bool, select: list, **overrides) -> dict:
    entry = {
        "kind": "meta",
        "name": "cnn6",
        "steps": 20,
        "n_probe": 1000,
        "pretrain": 200,
        "tols": TOLS,
        "py_max_iter": 100,
        "threads": 1,
        "run_ijr": run_ijr,
        "select": select,
    }
    entry.update(overrides)
    return entry


def probe_records(step: int, sharpness: float) -> list[dict]:
    """A reference, and PyHessian at both tolerances: 1e-4 inaccurate at step 10 only."""
    loose = sharpness * (0.99 if step == 10 else 0.9999)
    return [
        {"step": step, "kind": "ref", "value": sharpness},
        {
            "step": step,
            "kind": "pyhessian",
            "tol": 1e-4,
            "value": loose,
            "products": 10,
            "time": 10.0,
        },
        {
            "step": step,
            "kind": "pyhessian",
            "tol": 1e-5,
            "value": sharpness,
            "products": 20,
            "time": 20.0,
        },
    ]


def ijr_record(step: int, sharpness: float) -> dict:
    # the third of four products is the first within 1e-3: the ideal stop needs 3
    history = [sharpness * 0.9, sharpness * 0.99, sharpness * 0.9999, sharpness]
    return {
        "step": step,
        "kind": "ijr",
        "value": sharpness,
        "products": 4,
        "time": 4.0,
        "history": history,
    }


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def merge(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--merge-cnn6", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_merged_shards_give_the_single_process_report(tmp_path):
    sharp = {0: 50.0, 10: 40.0, 20: 60.0}
    a = [meta(True, [2, [0]])] + [ijr_record(s, v) for s, v in sharp.items()]
    a += probe_records(0, 50.0) + probe_records(20, 60.0)
    b = [meta(False, [2, [1]])] + probe_records(10, 40.0)
    out = merge(write(tmp_path / "a.jsonl", a), write(tmp_path / "b.jsonl", b))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # tol 1e-4 misses step 10, so the fixed tolerance is 1e-5: 60 s of PyHessian against 12 s of ijr
    fixed = next(line for line in lines if "fixed tol (20 steps)" in line and "ratio" in line)
    assert (
        "ratio     5.00" in fixed
        and "PASS" in fixed
        and "PyHessian tol 1e-05: 60.0s/60 HVPs" in fixed
    )
    # the hindsight oracle takes 1e-4 at steps 0 and 20 and 1e-5 at step 10: 40 s
    oracle = next(line for line in lines if "per-probe oracle" in line and "ratio" in line)
    assert "ratio     3.33" in oracle
    # the ideal stop: 9 of 12 products, so 9 s against 60 s
    ideal = next(line for line in lines if "ideal-stop bound" in line and "ratio" in line)
    assert "ratio     6.67" in ideal and "9 of ijr's 12 HVPs" in ideal
    assert sum("step   10: sharpness   40.0000" in line for line in lines) == 1


@pytest.mark.parametrize(
    "problem, message",
    [
        ("overlap", "measured twice"),
        ("gap", "records incomplete"),
        ("two_chains", "exactly one shard"),
        ("setting", "one common setting"),
    ],
)
def test_inconsistent_shards_are_refused_in_one_line(tmp_path, problem, message):
    sharp = {0: 50.0, 10: 40.0, 20: 60.0}
    a = [meta(True, [2, [0]])] + [ijr_record(s, v) for s, v in sharp.items()]
    a += probe_records(0, 50.0) + probe_records(20, 60.0)
    b = [meta(False, [2, [1]])] + probe_records(10, 40.0)
    if problem == "overlap":
        b += probe_records(20, 60.0)
    elif problem == "gap":
        b = [meta(False, [2, [1]])]
    elif problem == "two_chains":
        b = [meta(True, [2, [1]])] + probe_records(10, 40.0)
    elif problem == "setting":
        b = [meta(False, [2, [1]], n_probe=250)] + probe_records(10, 40.0)
    out = merge(write(tmp_path / "a.jsonl", a), write(tmp_path / "b.jsonl", b))
    assert out.returncode != 0
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
