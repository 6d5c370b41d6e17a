"""Run directories -> tables (Markdown / CSV / LaTeX) and figures (PNG / PDF), next to the
paper's own numbers (``results/paper/*.csv``).

>>> from ijr.reporting import load_runs, table1, write_table, fig4
>>> runs = load_runs("runs/")                       # one row per run: config + summary
>>> write_table(table1(runs, profile="quick"), "results/quick/table1")
>>> fig4(runs[runs["experiment"] == "fig4_arp"].head(1), out="results/quick/fig4")

The command line is ``ijr-report`` (:mod:`ijr.report`).

The package imports its parts on first use (PEP 562), so that ``ijr.reporting.registry`` and
``ijr.reporting.run_artifacts`` readers load without pandas or matplotlib.
"""

from __future__ import annotations

import importlib

_EXPORTS = {  # public name -> the module that defines it
    "arp_steps": "ijr.reporting.figures",
    "build_table": "ijr.reporting.tables",
    "check_profiles": "ijr.reporting.runs",
    "curves": "ijr.reporting.figures",
    "delta_acc": "ijr.reporting.tables",
    "error_reduction_rate": "ijr.reporting.tables",
    "fig1": "ijr.reporting.figures",
    "fig2": "ijr.reporting.figures",
    "fig36": "ijr.reporting.figures",
    "fig36_grid": "ijr.reporting.figures",
    "fig4": "ijr.reporting.figures",
    "fig5": "ijr.reporting.figures",
    "fig6": "ijr.reporting.figures",
    "find_run_dirs": "ijr.reporting.runs",
    "impurity_bounds": "ijr.reporting.figures",
    "load_metrics": "ijr.reporting.runs",
    "load_paper_table": "ijr.reporting.paper",
    "load_runs": "ijr.reporting.runs",
    "save_figure": "ijr.reporting.figures",
    "select_runs": "ijr.reporting.runs",
    "setting_groups": "ijr.reporting.figures",
    "table1": "ijr.reporting.tables",
    "table5": "ijr.reporting.tables",
    "table6": "ijr.reporting.tables",
    "to_csv": "ijr.reporting.tables",
    "to_latex": "ijr.reporting.tables",
    "to_markdown": "ijr.reporting.tables",
    "write_table": "ijr.reporting.tables",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ijr.reporting' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "arp_steps",
    "build_table",
    "check_profiles",
    "curves",
    "delta_acc",
    "error_reduction_rate",
    "fig1",
    "fig2",
    "fig4",
    "fig5",
    "fig6",
    "fig36",
    "fig36_grid",
    "find_run_dirs",
    "impurity_bounds",
    "load_metrics",
    "load_paper_table",
    "load_runs",
    "save_figure",
    "select_runs",
    "setting_groups",
    "table1",
    "table5",
    "table6",
    "to_csv",
    "to_latex",
    "to_markdown",
    "write_table",
]
