"""scripts/gpu_check.sh without a GPU (it must say so and exit 0 at once, writing nothing) and
its time budget (a step that overruns is cut and recorded, the rest are skipped), with a fake
device and a fake interpreter so that no GPU is needed."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run(env_overrides: dict, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **env_overrides}
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout
    )
    return out, time.perf_counter() - start


def test_without_cuda_it_says_so_and_exits_zero_at_once(tmp_path):
    target = tmp_path / "gpu.txt"
    for hide in ({"CUDA_VISIBLE_DEVICES": ""}, {"PATH": "/usr/bin:/bin"}):
        out, seconds = run({"GPU_CHECK_OUT": str(target), **hide})
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "no CUDA device"
        assert seconds < 10
        assert not target.exists() and not Path(f"{target}.partial").exists()


def test_a_step_past_the_budget_is_cut_recorded_and_the_rest_skipped(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Fake H200'\n")
    fake_python = bin_dir / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        'case "$2" in *cuda.is_available*) exit 0;; *torch.__version__*) echo torch fake; exit 0;; esac\n'
        "exec sleep 60\n"
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    target = tmp_path / "gpu.txt"
    out, seconds = run(
        {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PY": str(fake_python),
            "GPU_CHECK_OUT": str(target),
            "GPU_CHECK_BUDGET": "8",
        }
    )
    assert out.returncode == 0, out.stderr
    assert seconds < 30
    report = target.read_text()
    assert "== pytest -m gpu: TIMED OUT" in report
    assert report.count("SKIPPED (budget of 8s spent)") == 4
    assert "# total" in report
