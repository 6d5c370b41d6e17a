"""Table 1 with seeds paired (issue: "mean +- std and the paired difference per seed"): for each
row (learning rate) and each competitor of EJR, the mean +- std over seeds of both methods and of
the per-seed difference EJR - competitor (same seed: same initialisation, data order and
subset), and in how many seeds EJR is ahead. The ``beats`` claims of conf/experiment/
table1_simplecnn.yaml judge the same differences.

Written by ``ijr-report claims`` as ``OUT/table1_paired.{md,csv}`` when the runs of
``table1_simplecnn`` exist in the profile.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ijr.reporting.render import markdown_lines

EXPERIMENT = "table1_simplecnn"
COLUMNS = (
    "optim.lr",
    "competitor",
    "seeds",
    "ejr_mean",
    "ejr_std",
    "competitor_mean",
    "competitor_std",
    "diff_mean",
    "diff_std",
    "ejr_ahead",
    "diff_per_seed",
)


def paired_table(
    runs: pd.DataFrame,
    metric: str = "final.test/acc",
    a: str = "ejr",
    competitors: tuple[str, ...] = ("sgd", "sam", "asam"),
    row_key: str = "optim.lr",
) -> pd.DataFrame:
    """One row per (row_key value, competitor) with both methods on the same seed (in %)."""
    runs = runs[runs["experiment"] == EXPERIMENT]
    values = runs.pivot_table(index=[row_key, "seed"], columns="method.name", values=metric)
    rows = []
    for other in competitors:
        if a not in values.columns or other not in values.columns:
            continue
        both = values[[a, other]].dropna() * 100
        for key, cell in both.groupby(level=0):
            diff = cell[a] - cell[other]
            rows.append(
                {
                    row_key: key,
                    "competitor": other,
                    "seeds": len(cell),
                    "ejr_mean": cell[a].mean(),
                    "ejr_std": cell[a].std(ddof=1),
                    "competitor_mean": cell[other].mean(),
                    "competitor_std": cell[other].std(ddof=1),
                    "diff_mean": diff.mean(),
                    "diff_std": diff.std(ddof=1),
                    "ejr_ahead": int((diff > 0).sum()),
                    "diff_per_seed": " ".join(f"{d:+.2f}" for d in diff),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_paired(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """``OUT/table1_paired.md`` and ``.csv``; the written paths."""
    out = Path(out)
    csv, md = out / "table1_paired.csv", out / "table1_paired.md"
    table.to_csv(csv, index=False, float_format="%.2f")
    header = ["η", "vs", "seeds", "EJR", "competitor", "EJR − competitor (paired)"]
    header += ["EJR ahead", "per seed"]
    rows = [
        [
            f"{r['optim.lr']:g}",
            r["competitor"],
            r["seeds"],
            f"{r['ejr_mean']:.2f} ± {r['ejr_std']:.2f}",
            f"{r['competitor_mean']:.2f} ± {r['competitor_std']:.2f}",
            f"{r['diff_mean']:+.2f} ± {r['diff_std']:.2f}",
            f"{r['ejr_ahead']}/{r['seeds']}",
            r["diff_per_seed"],
        ]
        for _, r in table.iterrows()
    ]
    lines = markdown_lines(header, rows)
    md.write_text(
        "Test accuracy (%), Table 1 SimpleCNN rows, seeds paired.\n\n" + "\n".join(lines) + "\n"
    )
    return [md, csv]
