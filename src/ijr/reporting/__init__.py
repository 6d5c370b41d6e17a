"""Run directories -> tables (Markdown / CSV / LaTeX) and figures (PNG / PDF), next to the
paper's own numbers (``results/paper/*.csv``).

>>> from ijr.reporting import load_runs, table1, write_table, fig4
>>> runs = load_runs("runs/")                       # one row per run: config + summary
>>> write_table(table1(runs, profile="quick"), "results/quick/table1")
>>> fig4(runs[runs["experiment"] == "fig4_arp"].head(1), out="results/quick/fig4")

The command line is ``ijr-report`` (:mod:`ijr.report`).
"""

from ijr.reporting.figures import (
    arp_steps,
    curves,
    fig1,
    fig2,
    fig4,
    fig5,
    fig6,
    fig36,
    fig36_grid,
    impurity_bounds,
    save_figure,
    setting_groups,
)
from ijr.reporting.paper import load_paper_table
from ijr.reporting.runs import check_profiles, find_run_dirs, load_metrics, load_runs, select_runs
from ijr.reporting.tables import (
    build_table,
    delta_acc,
    error_reduction_rate,
    table1,
    table5,
    table6,
    to_csv,
    to_latex,
    to_markdown,
    write_table,
)

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
