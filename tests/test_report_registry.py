"""The report registry (ijr.reporting.registry, entries in ijr.reporting.papers): names by paper
with the old names as aliases, targets that name real experiments and reports, one entry per name,
and the readers of ijr-report, scripts/reproduce.py, make help and the README built from it; the
reporting and claims packages load without Lightning."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import CONF_DIR, REPO
from ijr import report
from ijr.claims import readme
from ijr.reporting import registry
from ijr.reporting.registry import NAME, Output, Report

EXPERIMENTS = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
ENTRIES = registry.entries()


def test_names_are_paper_qualified_and_every_alias_resolves_to_its_entry():
    assert {"000-fig4", "000-table1", "004-fig1", "002-input-scaling", "claims"} <= set(ENTRIES)
    for name, entry in ENTRIES.items():
        assert name in registry.CROSS_PAPER or NAME.match(name), name
        assert registry.get(name) is entry
        for alias in entry.aliases:
            assert registry.get(alias) is entry, alias
    names = registry.names()
    assert len(names) == len(set(names))  # no name or alias twice
    assert registry.get("fig4").name == "000-fig4" and registry.get("p004-fig1").name == "004-fig1"


def test_each_paper_module_declares_only_its_own_paper():
    for entry in ENTRIES.values():
        if entry.draw is not None:
            module = entry.draw.__module__.rsplit(".", 1)[-1]
            assert module == (f"p{entry.paper}" if entry.paper else "claims"), entry.name


def test_targets_name_real_experiments_and_drawable_reports():
    assert registry.targets()
    for entry in registry.targets().values():
        assert set(entry.experiments + entry.paper_experiments) <= EXPERIMENTS, entry.name
        for output in entry.outputs:
            drawn = registry.output_report(entry, output)
            assert drawn.draw is not None, (entry.name, output)
            assert output.folder is None or output.folder in EXPERIMENTS, (entry.name, output)
            assert drawn.command_name in report.REPORTS
    stems = [o.stem for e in registry.targets().values() for o in e.outputs]
    assert len(stems) == len(set(stems)), "two targets write the same output"


def test_make_figures_is_paper_000s_figures_that_fit_the_profile():
    quick = [e.name for e in registry.figure_targets("000", "quick")]
    paper = [e.name for e in registry.figure_targets("000", "paper")]
    assert "000-fig6" not in quick and paper[-1] == "000-fig6"  # GPU scale: paper only, last
    assert "000-fig7" in quick and "000-table1" not in paper and "004-fig1" not in paper
    assert set(quick) < set(paper)


def test_a_taken_name_or_a_bad_name_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(Report("000-fig4", "again", outputs=(Output("x", None),)))
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(Report("009-x", "alias clash", aliases=("fig4",), draw=print))
    with pytest.raises(ValueError, match="must be <paper>-<name>"):
        Report("fig99", "no paper", draw=print)
    with pytest.raises(ValueError, match="neither a report"):
        Report("009-y", "nothing to do")
    assert "009-x" not in registry.entries()


@pytest.mark.parametrize("name", ["fig7", "000-fig7"])
def test_ijr_report_takes_the_namespaced_and_the_old_name(tmp_path, capsys, name):
    out = tmp_path / name
    assert report.main([name, "--out", str(out), "--p", "0.5,0.3,0.2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"ijr-report: wrote {out}.png",
        f"ijr-report: wrote {out}.pdf",
    ]


def test_an_unknown_report_is_one_line_naming_it(capsys):
    assert report.main(["000-fig99", "--out", "x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "invalid choice: '000-fig99'" in err[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_help_lists_every_target_from_the_registry():
    done = subprocess.run(
        ["make", "-s", "help", f"PY={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  0")]
    assert lines == list(registry.targets())


def test_readme_lists_the_targets_in_a_generated_block():
    text = (REPO / "README.md").read_text()
    assert "reports" in readme.blocks_in(text)
    block = registry.markdown_table()
    assert block in text, "README.md is out of date: python -m ijr.claims.readme README.md"
    for name in registry.targets():
        assert f"| `{name}` |" in block


def test_reporting_and_claims_do_not_import_lightning(tmp_path):
    """ijr.reporting / ijr.claims read the per-run artifact files through ijr.run_artifacts, so
    drawing a figure or judging a claim never loads Lightning (or ijr.probes)."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("probes:\n  trajectory_dim: 3\n")
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import ijr.claims, ijr.claims.runner, ijr.report, ijr.reporting
        from ijr.reporting import figures, registry
        from ijr.run_artifacts import TRAJECTORY_FILE, StepArrays, TrajectoryFile, read_trajectory
        run = {str(run)!r}
        TrajectoryFile(f"{{run}}/{{TRAJECTORY_FILE}}", 3).append(5, np.ones(3))
        StepArrays(f"{{run}}/margins").save(5, {{"mean_gram": np.eye(2)}})
        assert read_trajectory(run)[0].tolist() == [5]
        assert list(figures.load_margins(run)) == [5]
        registry.entries()
        loaded = [m for m in ("pytorch_lightning", "lightning", "ijr.probes") if m in sys.modules]
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_options_are_declared_once_and_fig2s_defaults_are_the_figure_constants():
    from ijr.reporting import figures
    from ijr.reporting.papers import p000

    assert (p000.SHARPNESS, p000.JACOBIAN) == (figures.SHARPNESS, figures.JACOBIAN)
    args = report.build_parser().parse_args(["fig2", "--out", "x"])
    assert (args.left, args.right, args.kind, args.x) == (
        figures.SHARPNESS,
        figures.JACOBIAN,
        "lines",
        "step",
    )
    clash = Report("009-clash", "t", draw=print, options=(("--kind", {"help": "other"}),))
    registry._REGISTRY[clash.name] = clash
    try:
        with pytest.raises(ValueError, match="option --kind is declared differently"):
            report.build_parser()
    finally:
        del registry._REGISTRY[clash.name]
