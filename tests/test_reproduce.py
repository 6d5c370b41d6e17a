"""scripts/reproduce.py (make table1 / fig<N> / figures): overrides reach every run, and a target
whose launch exits non-zero writes no report."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO


@pytest.fixture
def reproduce(monkeypatch):
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "scripts" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands = []

    def fake_run(cmd):
        commands.append(cmd)
        return module.exit_codes.get(cmd[0].rsplit("/", 1)[-1], 0)

    module.exit_codes = {}
    module.commands = commands
    monkeypatch.setattr(module, "run", fake_run)
    return module


def test_overrides_reach_every_launch_and_reports_follow_a_clean_launch(reproduce, tmp_path):
    args = ["fig5", "--launcher", "slurm_cpu", "--results", str(tmp_path)]
    args += ["--overrides", "hydra.launcher.partition=cpu seed=1", "--", "trainer.max_steps=9"]
    assert reproduce.main(args) == 0
    launches = [c for c in reproduce.commands if c[0].endswith("ijr-train")]
    reports = [c for c in reproduce.commands if c[0].endswith("ijr-report")]
    assert [c[2] for c in launches] == ["experiment=fig5_lr", "experiment=fig5_batch"]
    for cmd in launches:
        assert "hydra/launcher=slurm_cpu" in cmd
        assert cmd[-3:] == ["hydra.launcher.partition=cpu", "seed=1", "trainer.max_steps=9"]
    assert len(reports) == 2


def test_a_failed_launch_writes_no_report(reproduce, tmp_path, capsys):
    reproduce.exit_codes["ijr-train"] = 1
    assert reproduce.main(["fig5", "--results", str(tmp_path)]) == 1
    assert not [c for c in reproduce.commands if c[0].endswith("ijr-report")]
    assert "its reports are not written" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["004-fig1", "p004-fig1"])
def test_a_target_by_its_paper_qualified_or_earlier_name(reproduce, tmp_path, name):
    assert reproduce.main([name, "--profile", "cpu", "--results", str(tmp_path)]) == 0
    launches = [c for c in reproduce.commands if c[0].endswith("ijr-train")]
    reports = [c[1:] for c in reproduce.commands if c[0].endswith("ijr-report")]
    assert [c[2] for c in launches] == ["experiment=p004_fig1_phases"]
    assert [(r[0], r[4]) for r in reports] == [
        ("p004-fig1", str(tmp_path / "cpu" / "p004" / "fig1")),
        ("p004-markers", str(tmp_path / "cpu" / "p004" / "fig1_markers")),
    ]


def test_list_prints_every_target(reproduce, capsys):
    assert reproduce.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in reproduce.TARGETS)


def test_report_takes_an_earlier_name_too(reproduce, tmp_path):
    """scripts/demo.py calls report("table1", ...): the earlier names reach the registry's."""
    args = reproduce.argparse.Namespace(results=str(tmp_path), profile="quick", runs="runs")
    assert reproduce.report("table1", args) == reproduce.report("000-table1", args) == 0
    first, second = (c for c in reproduce.commands if c[0].endswith("ijr-report"))
    assert first == second and first[1] == "table1"
