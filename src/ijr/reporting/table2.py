"""Table 2 of paper 000 (and its parameter sweep, Table 7): adversarial training with efficient
EJR -- standard and PGD-20 robust test accuracy of AT, AT-EJR, TRADES and TRADES-EJR per model,
from the run directories, next to the paper's numbers (``results/paper/table2.csv``).

One row per (model, adversary, method, rho_reg, beta) setting: mean ± std over seeds (ddof 1) of
the final ``test/acc`` (Std) and ``test/robust_acc`` (PGD-20) of the completed runs, in %, the
finished / diverged / failed run counts, and the paper's Std / PGD-20 / AA of the same setting.
AutoAttack (the paper's AA column) is not computed by this suite; the column shows the paper's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ijr.reporting.naming import MODELS
from ijr.reporting.paper import paper_dir
from ijr.reporting.render import latex_lines, markdown_lines, write_texts
from ijr.reporting.runs import check_profiles, select_runs

LABELS = {("at", "sgd"): "AT", ("at", "ejr_efficient"): "AT-EJR"}
LABELS.update({("trades", "sgd"): "TRADES", ("trades", "ejr_efficient"): "TRADES-EJR"})
COLUMNS = (
    "profile",
    "model",
    "method",
    "rho_reg",
    "beta",
    "std_mean",
    "std_std",
    "pgd20_mean",
    "pgd20_std",
    "n_completed",
    "n_diverged",
    "n_failed",
    "paper_std",
    "paper_pgd20",
    "paper_aa",
)


def load_paper_table2() -> pd.DataFrame:
    return pd.read_csv(paper_dir() / "table2.csv")


def _value(run: pd.Series, key: str):
    value = run.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _setting(run: pd.Series) -> tuple:
    adversary, method = _value(run, "adversary.name"), _value(run, "method.name")
    rho = float(_value(run, "method.rho")) if method == "ejr_efficient" else None
    beta = float(_value(run, "adversary.beta")) if adversary == "trades" else None
    return str(_value(run, "model.name")), str(adversary), str(method), rho, beta


def _paper_row(paper: pd.DataFrame, model, adversary, method, rho, beta) -> dict:
    rows = paper[
        (paper["model"] == model)
        & (paper["adversary"] == adversary)
        & (paper["method_key"] == method)
    ]
    if rho is not None:
        rows = rows[np.isclose(rows["rho_reg"].astype(float), rho)]
    if beta is not None:
        rows = rows[np.isclose(rows["beta"].astype(float), beta)]
    if len(rows) != 1:
        return {"paper_std": None, "paper_pgd20": None, "paper_aa": None}
    row = rows.iloc[0]
    return {
        "paper_std": float(row["std_acc"]),
        "paper_pgd20": float(row["pgd20_acc"]),
        "paper_aa": float(row["aa_acc"]),
    }


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = 100.0 * np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def table2(
    runs: pd.DataFrame,
    profile: str | None = None,
    allow_mixed_profiles: bool = False,
    experiment: str | None = "table2*",
    paper: bool = True,
) -> pd.DataFrame:
    """The Table 2 frame (columns :data:`COLUMNS`); ``frame.attrs`` holds profiles and counts."""
    if experiment:
        runs = select_runs(runs, experiment=experiment)
    if "adversary.name" in runs.columns:
        runs = runs[runs["adversary.name"].isin(["at", "trades"])]
    else:
        runs = runs.iloc[0:0]
    if runs.empty:
        raise ValueError(
            f"no adversarially trained runs (adversary=at|trades) of experiment '{experiment}'"
        )
    runs, profiles = check_profiles(runs, profile, allow_mixed_profiles, what="table2")
    reference = load_paper_table2() if paper else None
    groups: dict[tuple, list[pd.Series]] = {}
    for _, run in runs.iterrows():
        groups.setdefault(_setting(run), []).append(run)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] or 0, k[4] or 0)):
        model, adversary, method, rho, beta = key
        cell = groups[key]
        done = [r for r in cell if r["status"] == "completed"]
        std_mean, std_std = _mean_std(
            [float(r["final.test/acc"]) for r in done if _value(r, "final.test/acc") is not None]
        )
        pgd_mean, pgd_std = _mean_std(
            [
                float(r["final.test/robust_acc"])
                for r in done
                if _value(r, "final.test/robust_acc") is not None
            ]
        )
        row = {
            "profile": ", ".join(profiles),
            "model": model,
            "method": LABELS.get((adversary, method), f"{adversary}+{method}"),
            "rho_reg": rho,
            "beta": beta,
            "std_mean": std_mean,
            "std_std": std_std,
            "pgd20_mean": pgd_mean,
            "pgd20_std": pgd_std,
            "n_completed": len(done),
            "n_diverged": sum(r["status"] == "diverged" for r in cell),
            "n_failed": sum(r["status"] not in ("completed", "diverged") for r in cell),
        }
        row.update(
            _paper_row(reference, model, adversary, method, rho, beta)
            if reference is not None
            else {"paper_std": None, "paper_pgd20": None, "paper_aa": None}
        )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs.update(profiles=list(profiles), n_runs=len(runs))
    return frame


def _fmt(mean, std) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.2f}" + ("" if std is None or math.isnan(std) else f" ± {std:.2f}")


def _num(value) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"
    )


def _display(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["model", "method", "ρ_reg", "β", "Std", "PGD-20", "runs [c/d/f]"]
    header += ["Std (paper)", "PGD-20 (paper)", "AA (paper)"]
    body = []
    for _, r in frame.iterrows():
        body.append(
            [
                MODELS.get(r["model"], r["model"]),
                r["method"],
                _num(r["rho_reg"]),
                _num(r["beta"]),
                _fmt(r["std_mean"], r["std_std"]),
                _fmt(r["pgd20_mean"], r["pgd20_std"]),
                f"{r['n_completed']}/{r['n_diverged']}/{r['n_failed']}",
                _num(r["paper_std"]),
                _num(r["paper_pgd20"]),
                _num(r["paper_aa"]),
            ]
        )
    return header, body


def _preamble(frame: pd.DataFrame) -> list[str]:
    profiles = ", ".join(frame.attrs.get("profiles", [])) or "unknown"
    return [
        f"Profile: {profiles}.",
        f"Runs: {frame.attrs.get('n_runs', '?')}. Cells: mean ± std over seeds of the final test/acc "
        "(Std) and test/robust_acc (PGD-20, eps = 8/255, step 2/255) of completed runs, in %; "
        "runs completed/diverged/failed.",
        "(paper): Lee, Park & Lee (ICML 2023), Tables 2 and 7 (results/paper/table2.csv). "
        "AA (AutoAttack) is the paper's only: this suite does not run AutoAttack.",
    ]


def to_markdown(frame: pd.DataFrame) -> str:
    header, body = _display(frame)
    lines = ["# Table 2: adversarial training with efficient EJR (CIFAR-10)", ""]
    lines += [line + "  " for line in _preamble(frame)]
    lines += ["", *markdown_lines(header, body)]
    return "\n".join(lines) + "\n"


def to_latex(frame: pd.DataFrame) -> str:
    header, body = _display(frame)
    esc = {"±": r"$\pm$", "ρ_reg": r"$\rho_{reg}$", "β": r"$\beta$", "–": "--", "%": r"\%"}

    def tex(text: str) -> str:
        for raw, escaped in esc.items():
            text = text.replace(raw, escaped)
        return text.replace("_", r"\_") if "$" not in text else text

    caption = tex(" ".join(_preamble(frame)))
    comment = f"table2 generated by ijr-report -- {_preamble(frame)[0]}"
    return "\n".join(latex_lines(header, body, comment, caption, escape=tex)) + "\n"


def write_table2(frame: pd.DataFrame, out: str | os.PathLike) -> list[Path]:
    """``out.md``, ``out.csv``, ``out.tex``; returns the paths."""
    texts = {
        "md": to_markdown(frame),
        "csv": frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"),
        "tex": to_latex(frame),
    }
    return write_texts(out, texts)


__all__ = ["COLUMNS", "load_paper_table2", "table2", "write_table2"]
