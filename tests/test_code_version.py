"""Each run's summary.json names the code that made it (``code``: the commit of every attempt),
from a git checkout and from a ``git archive`` copy (export-subst), the way the cpu
reproductions run from a frozen copy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, compose_cfg, tiny_overrides
from ijr import code_version as cv
from ijr.train import train

SHA = re.compile(r"^[0-9a-f]{40}(\+dirty)?$")


def _head() -> str | None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip() if out.returncode == 0 else None


def test_a_checkout_reports_its_commit():
    head = _head()
    if head is None:
        pytest.skip("not a git checkout")
    assert SHA.match(cv.code_version()) and cv.code_version().startswith(head)


def test_an_archived_copy_reports_the_archived_commit(tmp_path):
    """``git archive`` substitutes the commit into the copy (.gitattributes export-subst)."""
    head = _head()
    if head is None:
        pytest.skip("not a git checkout")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD", "src/ijr/code_version.py"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('cv', {str(tmp_path / 'src/ijr/code_version.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(m.code_version())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == head


def test_attempts_append_only_a_new_commit(monkeypatch):
    monkeypatch.setattr(cv, "code_version", lambda: "b" * 40)
    assert cv.attempts_code(None) == ["b" * 40]
    assert cv.attempts_code(["a" * 40]) == ["a" * 40, "b" * 40]
    assert cv.attempts_code(["a" * 40, "b" * 40]) == ["a" * 40, "b" * 40]


def test_a_run_records_its_code(runs_dir):
    summary = train(compose_cfg(*tiny_overrides(runs_dir)))
    assert summary["code"] == [cv.code_version()]
    (written,) = runs_dir.glob("default/*/summary.json")
    assert json.loads(written.read_text())["code"] == [cv.code_version()]
