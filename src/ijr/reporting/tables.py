"""Tables 1, 5 and 6 of the paper from run directories, next to the paper's own numbers.

``table1(runs_df)`` (and ``table5``, ``table6``) returns one row per table row — dataset, model,
batch size, learning rate (Tables 5/6: and epochs), the regulariser parameter of the EJR method —
with, for every method column, the mean and std over seeds of the final ``test/acc`` (in %, of
completed runs), the numbers of completed / diverged / failed / incomplete / missing runs, and
the paper's value; then ΔAcc and ERR, ours and the paper's. :func:`write_table` writes it as
Markdown, CSV and LaTeX; each states the profile(s) the runs come from.

Definitions (Table 1 of the paper; e.g. SGD 68.92 -> EJR 75.61 gives +6.69 %p and 21.53 %):

* ΔAcc = acc_EJR − acc_SGD (%p)
* ERR  = (err_SGD − err_EJR) / err_SGD · 100 = ΔAcc / (100 − acc_SGD) · 100 (%)

computed from the unrounded means over seeds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ijr.reporting.naming import (
    MODEL_ORDER,
    REG_KEYS,
    TRAIN_SIZES,
    dataset_name,
    format_number,
    model_name,
    reg_label,
)
from ijr.reporting.paper import (
    batch_key,
    epochs_key,
    format_reg_param,
    load_paper_table,
)
from ijr.reporting.render import latex_lines, markdown_lines, write_texts
from ijr.reporting.runs import check_profiles, select_runs, varying_keys

ACC_METRIC = "final.test/acc"
COUNTS = ("n_completed", "n_diverged", "n_failed", "n_incomplete", "n_missing")


# ----------------------------------------------------------------------------- formulas
def delta_acc(acc_baseline, acc_method):
    """ΔAcc (%p) = acc_method − acc_baseline, accuracies in %."""
    return np.subtract(acc_method, acc_baseline)


def error_reduction_rate(acc_baseline, acc_method):
    """ERR (%) = (err_baseline − err_method) / err_baseline · 100 with err = 100 − acc (%);
    NaN where the baseline has no error."""
    err_base = np.subtract(100.0, acc_baseline)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(
            err_base > 0, 100.0 * np.subtract(acc_method, acc_baseline) / err_base, np.nan
        )
    return out.item() if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class MethodColumn:
    slug: str  # prefix of this column's fields in the frame and CSV
    label: str  # header in Markdown / LaTeX
    methods: tuple[str, ...]  # method.name values shown in this column
    target: bool = False  # the regularised method: its parameter is part of the row


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    experiment: str  # default experiment glob
    columns: tuple[MethodColumn, ...]
    axes: tuple[str, ...]  # row axes besides the target's regulariser

    @property
    def target(self) -> MethodColumn:
        return next(c for c in self.columns if c.target)

    @property
    def baseline(self) -> MethodColumn:
        return self.columns[0]


SPECS = {
    "table1": TableSpec(
        "table1",
        "Table 1: test accuracy (%) of SGD, SAM, ASAM and EJR",
        "table1*",
        (
            MethodColumn("sgd", "SGD", ("sgd",)),
            MethodColumn("sam", "SAM", ("sam",)),
            MethodColumn("asam", "ASAM", ("asam",)),
            MethodColumn("ejr", "EJR", ("ejr", "ejr_efficient"), target=True),
        ),
        ("dataset", "model", "batch_size", "lr"),
    ),
    "table5": TableSpec(
        "table5",
        "Table 5: test accuracy (%) of EJR (+EJR) against the baseline",
        "table5*",
        (
            MethodColumn("baseline", "Baseline", ("sgd",)),
            MethodColumn("ejr", "+EJR", ("ejr", "ejr_efficient"), target=True),
        ),
        ("dataset", "model", "epochs", "batch_size", "lr"),
    ),
    "table6": TableSpec(
        "table6",
        "Table 6: test accuracy (%) of efficient EJR.v2 (+EJR.v2) against the baseline",
        "table6*",
        (
            MethodColumn("baseline", "Baseline", ("sgd",)),
            MethodColumn("ejr_v2", "+EJR.v2", ("ejr_v2",), target=True),
        ),
        ("dataset", "model", "epochs", "batch_size", "lr"),
    ),
}


# ----------------------------------------------------------------------------- run keys
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _get(row: pd.Series, key: str):
    value = row.get(key)
    return None if _missing(value) else value


def _reg_items(row: pd.Series) -> tuple[tuple[str, float], ...]:
    items = []
    for key, canonical in REG_KEYS.items():
        value = _get(row, f"method.{key}")
        if value is not None:
            items.append((canonical, float(value)))
    return tuple(sorted(items))


def _method_param(row: pd.Series) -> str:
    parts = []
    for col in sorted(c for c in row.index if c.startswith("method.") and c != "method.name"):
        value = _get(row, col)
        if value is not None:
            parts.append(f"{col[len('method.') :]}={format_number(value)}")
    return ";".join(parts)


def _key_frame(runs: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Per run: its table keys (dataset, model, batch_size, lr, epochs, method, reg, ...)."""
    records = []
    slug_of = {m: c.slug for c in spec.columns for m in c.methods}
    target_methods = set(spec.target.methods)
    for idx, row in runs.iterrows():
        dataset = str(_get(row, "data.name") or "?")
        subset = _get(row, "data.subset")
        train_size = int(subset) if subset is not None else TRAIN_SIZES.get(dataset)
        lr = _get(row, "optim.lr")
        if lr is None:
            raise ValueError(f"run {row['run_dir']} has no optim.lr in its config")
        method = str(_get(row, "method.name"))
        acc = _get(row, ACC_METRIC)
        if acc is not None and float(acc) > 1.0 + 1e-9:
            raise ValueError(
                f"run {row['run_dir']}: {ACC_METRIC} = {acc} > 1; expected a fraction in [0, 1]"
            )
        records.append(
            {
                "_index": idx,
                "profile": str(row["profile"]) if not _missing(row["profile"]) else "unknown",
                "dataset": dataset,
                "model": str(_get(row, "model.name") or "?"),
                "batch_size": batch_key(_get(row, "data.batch_size"), dataset, train_size),
                "train_size": train_size,
                "lr": float(lr),
                "epochs": epochs_key(_get(row, "trainer.max_epochs")),
                "method": method,
                "slug": slug_of[method],
                "reg": _reg_items(row) if method in target_methods else (),
                "method_param": _method_param(row),
                "seed": _get(row, "seed"),
                "status": str(row["status"]),
                "acc": 100.0 * float(acc)
                if acc is not None and row["status"] == "completed"
                else np.nan,
            }
        )
    return pd.DataFrame.from_records(records)


# ----------------------------------------------------------------------------- cells
def _seed_duplicates(cell: pd.DataFrame, runs: pd.DataFrame, where: str) -> None:
    seeds = cell["seed"].map(lambda s: "none" if _missing(s) else s)
    dup = seeds[seeds.duplicated(keep=False)]
    if dup.empty:
        return
    seed = dup.iloc[0]
    same = runs.loc[cell.loc[seeds == seed, "_index"]]
    differ = varying_keys(same) or ["(nothing in the config: the same run twice)"]
    raise ValueError(
        f"{len(same)} runs with seed {seed} in cell {where} differ in {', '.join(differ)}; "
        "filter the runs (or pass axes) so that each cell holds one run per seed"
    )


def _cell_stats(cell: pd.DataFrame, expected: int, ddof: int) -> dict:
    statuses = cell["status"]
    values = cell["acc"].dropna().to_numpy(dtype=float)
    present = cell["seed"].map(lambda s: "none" if _missing(s) else s).nunique()
    return {
        "mean": float(values.mean()) if values.size else np.nan,
        "std": float(values.std(ddof=ddof)) if values.size > ddof else np.nan,
        "n_values": int(values.size),
        "n_completed": int((statuses == "completed").sum()),
        "n_diverged": int((statuses == "diverged").sum()),
        "n_failed": int((statuses == "failed").sum()),
        "n_incomplete": int((~statuses.isin(["completed", "diverged", "failed"])).sum()),
        "n_missing": max(expected - present, 0),
    }


def _empty_stats(expected: int) -> dict:
    return {
        "mean": np.nan,
        "std": np.nan,
        "n_values": 0,
        **dict.fromkeys(COUNTS[:-1], 0),
        "n_missing": expected,
    }


def _describe(base: dict, column: MethodColumn, reg=()) -> str:
    parts = [f"{k}={v}" for k, v in base.items()] + [f"method={column.label}"]
    if reg:
        parts.append(format_reg_param(reg))
    return "(" + ", ".join(parts) + ")"


# ----------------------------------------------------------------------------- paper join
def _paper_cell(paper: pd.DataFrame, base: dict, column: MethodColumn, reg) -> dict:
    """The paper's mean/std (and ΔAcc/ERR for the target) for one cell; NaN when not printed."""
    out = {
        "paper_mean": np.nan,
        "paper_std": np.nan,
        "paper_delta_acc": np.nan,
        "paper_err": np.nan,
    }
    if paper is None or paper.empty:
        return out
    sel = paper[
        (paper["dataset"] == base["dataset"])
        & (paper["model"] == base["model"])
        & (paper["batch_key"] == base["batch_size"])
        & np.isclose(paper["lr"], base["lr"], rtol=1e-9, atol=0)
        & paper["method_key"].isin(column.methods)
    ]
    if "epochs" in base:
        sel = sel[sel["epochs_key"] == base["epochs"]]
    if column.target:
        sel = sel[sel["reg_key"] == tuple(reg)]
    else:
        distinct = sel.drop_duplicates(["mean", "std"])
        if len(distinct) > 1:  # the baseline differs between the paper's rows: take this row's
            sel = sel[sel["reg_key"] == tuple(reg)]
    if sel.empty:
        return out
    first = sel.iloc[0]
    out["paper_mean"], out["paper_std"] = first["mean"], first["std"]
    if column.target:
        out["paper_delta_acc"], out["paper_err"] = first["delta_acc"], first["err"]
    return out


# ----------------------------------------------------------------------------- the table
def _sort_key(row: dict, axes: Sequence[str]):
    key = [row["profile"]]
    for axis in axes:
        value = row[axis]
        if axis == "model":
            key.append(
                (MODEL_ORDER.index(value) if value in MODEL_ORDER else len(MODEL_ORDER), value)
            )
        elif axis == "batch_size":
            key.append(
                (1, 0) if value == "full" else (0, int(value)) if value.isdigit() else (2, value)
            )
        elif axis == "epochs":
            key.append(float(value) if value else -1.0)
        else:
            key.append(value)
    key.append(row["target_method"])
    key.append(row["_reg"])
    return tuple(key)


def _table_runs(
    name: str, spec: TableSpec, runs: pd.DataFrame, experiment, profile, allow_mixed_profiles
) -> tuple[pd.DataFrame, list]:
    """The runs of table ``name``: its experiments (or ``experiment``), its methods, one profile."""
    glob = spec.experiment if experiment is None else experiment
    selected = select_runs(runs, experiment=glob) if len(runs) else runs
    if selected.empty:
        found = ", ".join(sorted(set(runs["experiment"].astype(str)))) if len(runs) else "none"
        raise ValueError(
            f"no {name} runs of experiment '{glob}' (experiments found: {found}); pass experiment='*' to use every run"
        )
    methods = [m for c in spec.columns for m in c.methods]
    if "method.name" not in selected.columns:
        raise ValueError(f"the {name} runs have no method.name in their config")
    in_table = selected["method.name"].isin(methods)
    if not in_table.any():
        raise ValueError(
            f"none of the {len(selected)} {name} runs uses a method of this table ({', '.join(methods)})"
        )
    return check_profiles(selected[in_table], profile, allow_mixed_profiles, what=name)


def _paper_fields(row: dict, paper_table, base: dict, spec: TableSpec, column, reg) -> None:
    """The paper's mean / std (and ΔAcc, ERR for the target column) of one cell, into ``row``."""
    paper_fields = _paper_cell(paper_table, {k: base[k] for k in spec.axes}, column, reg)
    row[f"{column.slug}_paper_mean"] = paper_fields["paper_mean"]
    row[f"{column.slug}_paper_std"] = paper_fields["paper_std"]
    if column.target:
        row["paper_delta_acc"] = paper_fields["paper_delta_acc"]
        row["paper_err"] = paper_fields["paper_err"]


def build_table(
    name: str,
    runs: pd.DataFrame,
    *,
    profile: str | None = None,
    allow_mixed_profiles: bool = False,
    expected_seeds: int | None = None,
    experiment: str | None = None,
    paper: bool = True,
    ddof: int = 1,
) -> pd.DataFrame:
    """Table ``name`` (``table1``, ``table5``, ``table6``) of the runs in ``runs`` (from
    :func:`ijr.reporting.load_runs`). See :func:`table1` for the arguments and the result.

    Longer than the ~60-line guide on purpose: one pass from runs to rows (profile check,
    selection, cells, seeds expected, paper columns) whose steps share the same grouping keys;
    split, each piece would take most of the others' arguments."""
    if name not in SPECS:
        raise ValueError(f"unknown table '{name}'; valid: {', '.join(SPECS)}")
    spec = SPECS[name]
    selected, profiles = _table_runs(name, spec, runs, experiment, profile, allow_mixed_profiles)
    keys = _key_frame(selected, spec)
    if expected_seeds is not None and expected_seeds < 1:
        raise ValueError(f"expected_seeds must be >= 1, got {expected_seeds}")

    base_cols = ["profile", *spec.axes]
    cell_keys = [*base_cols, "slug", "method", "reg"]
    cells = dict(iter(keys.groupby(cell_keys, sort=False, dropna=False)))
    expected = expected_seeds or max(
        cell["seed"].map(lambda s: "none" if _missing(s) else s).nunique()
        for cell in cells.values()
    )
    paper_table = load_paper_table(name) if paper else None
    train_sizes = keys.groupby(base_cols, sort=False)["train_size"].first().to_dict()

    rows = []
    for base_values, group in keys.groupby(base_cols, sort=False, dropna=False):
        base = dict(zip(base_cols, base_values, strict=True))
        target_rows = group[group["slug"] == spec.target.slug]
        targets = sorted(set(zip(target_rows["method"], target_rows["reg"], strict=True))) or [
            ("", ())
        ]
        for target_method, reg in targets:
            row = dict(base)
            row["train_size"] = train_sizes.get(tuple(base_values))
            row["target_method"] = target_method
            row["reg_param"] = format_reg_param(reg)
            row["_reg"] = tuple(v for _, v in reg)
            for column in spec.columns:
                row.update(
                    _column_fields(
                        column, base, group, cells, target_method, reg, expected, ddof, selected
                    )
                )
                _paper_fields(row, paper_table, base, spec, column, reg)
            ours_base, ours_target = (
                row[f"{spec.baseline.slug}_mean"],
                row[f"{spec.target.slug}_mean"],
            )
            row["delta_acc"] = float(delta_acc(ours_base, ours_target))
            row["err"] = float(error_reduction_rate(ours_base, ours_target))
            row["expected_seeds"] = expected
            rows.append(row)
    rows.sort(key=lambda r: _sort_key(r, spec.axes))
    frame = pd.DataFrame.from_records(rows).drop(columns=["_reg"])
    frame = frame[_column_order(spec, frame)]
    frame.attrs.update(
        table=name,
        title=spec.title,
        profiles=list(profiles),
        expected_seeds=int(expected),
        experiments=sorted(set(selected["experiment"].astype(str))),
        n_runs=int(len(selected)),
        ddof=ddof,
    )
    return frame


def _column_fields(column, base, group, cells, target_method, reg, expected, ddof, runs) -> dict:
    base_values = tuple(base.values())
    if column.target:
        cell = cells.get((*base_values, column.slug, target_method, reg)) if target_method else None
        where = _describe(base, column, reg)
    else:
        cell = group[group["slug"] == column.slug]
        where = _describe(base, column)
    if cell is None or cell.empty:
        stats, param = _empty_stats(expected), ""
    else:
        variants = sorted(set(zip(cell["method"], cell["method_param"], strict=True)))
        if len(variants) > 1:
            shown = "; ".join(f"{m} {p}".strip() for m, p in variants)
            raise ValueError(
                f"cell {where} has runs of several method settings ({shown}); "
                "filter the runs so that each cell holds one setting"
            )
        _seed_duplicates(cell, runs, where)
        stats, param = _cell_stats(cell, expected, ddof), variants[0][1]
    fields = {f"{column.slug}_{k}": v for k, v in stats.items()}
    fields[f"{column.slug}_param"] = param
    return fields


def _column_order(spec: TableSpec, frame: pd.DataFrame) -> list[str]:
    order = [
        "profile",
        *[a for a in ("dataset", "model", "epochs", "batch_size") if a in spec.axes],
    ]
    order += ["train_size", "lr", "target_method", "reg_param"]
    for column in spec.columns:
        order += [
            f"{column.slug}_{k}"
            for k in ("mean", "std", "n_values", *COUNTS, "param", "paper_mean", "paper_std")
        ]
    order += ["delta_acc", "err", "paper_delta_acc", "paper_err", "expected_seeds"]
    return [c for c in order if c in frame.columns]


def table1(runs: pd.DataFrame, profile: str | None = None, **kwargs) -> pd.DataFrame:
    """Table 1 (SGD, SAM, ASAM, EJR; SimpleCNN and WRN rows) of the runs in ``runs``.

    ``runs`` is :func:`ijr.reporting.load_runs`'s frame. Only runs of the experiments matching
    the glob ``experiment`` (default None: ``table1*``; ``"*"`` for all) and of the table's
    methods are used. ``profile`` keeps the runs of one profile; without it, runs of several
    profiles are an error unless ``allow_mixed_profiles=True`` (then the profile is a row key).
    ``expected_seeds`` (default: the most seeds any cell has) gives the ``n_missing`` counts.
    ``paper=False`` leaves the paper columns empty; ``ddof`` is the std's delta degrees of freedom.

    Returns one row per (profile, dataset, model, batch_size, lr, target method, reg_param) with
    ``<col>_mean``/``_std`` (test accuracy in %, over the completed runs' final ``test/acc``),
    ``<col>_n_completed/_n_diverged/_n_failed/_n_incomplete/_n_missing``, ``<col>_param``,
    ``<col>_paper_mean``/``_paper_std`` for each method column, then ``delta_acc``, ``err``,
    ``paper_delta_acc``, ``paper_err`` and ``expected_seeds``. ``batch_size`` is ``full`` for
    full-batch runs (``train_size`` holds the training-set size). ``frame.attrs`` carries the
    table name and profiles for :func:`write_table`.
    """
    return build_table("table1", runs, profile=profile, **kwargs)


def table5(runs: pd.DataFrame, profile: str | None = None, **kwargs) -> pd.DataFrame:
    """Table 5 (Baseline vs +EJR; rows also keyed by ``trainer.max_epochs``); see :func:`table1`."""
    return build_table("table5", runs, profile=profile, **kwargs)


def table6(runs: pd.DataFrame, profile: str | None = None, **kwargs) -> pd.DataFrame:
    """Table 6 (Baseline vs +EJR.v2, ρ_reg × μ_reg rows); see :func:`table1`."""
    return build_table("table6", runs, profile=profile, **kwargs)


# ----------------------------------------------------------------------------- rendering
def _spec_of(frame: pd.DataFrame) -> TableSpec:
    name = frame.attrs.get("table")
    if name not in SPECS:
        raise ValueError(
            "not a table made by ijr.reporting.tables (frame.attrs['table'] is missing)"
        )
    return SPECS[name]


def _num(value, fmt: str) -> str:
    return "" if _missing(value) else format(float(value), fmt)


def _acc(mean, std, pm: str) -> str:
    if _missing(mean):
        return ""
    return f"{mean:.2f}{pm}{std:.2f}" if not _missing(std) else f"{mean:.2f}"


def _counts(row: pd.Series, slug: str) -> str:
    text = "/".join(
        str(int(row[f"{slug}_{k}"])) for k in ("n_completed", "n_diverged", "n_failed", "n_missing")
    )
    if int(row[f"{slug}_n_incomplete"]):
        text += f", {int(row[f'{slug}_n_incomplete'])} incomplete"
    return f"[{text}]"


def _batch_label(row: pd.Series) -> str:
    if row["batch_size"] != "full":
        return str(row["batch_size"])
    size = row.get("train_size")
    return "full" if _missing(size) else f"full ({int(size)})"


def _display_rows(frame: pd.DataFrame, flavor: str) -> tuple[list[str], list[list[str]]]:
    spec = _spec_of(frame)
    tex = flavor == "tex"
    pm = r" $\pm$ " if tex else " ± "
    dash = "--" if tex else "–"
    mixed = frame["profile"].nunique() > 1
    header = (["Profile"] if mixed else []) + ["Dataset", "Model"]
    if "epochs" in spec.axes:
        header.append("Epochs")
    header += ["$B$" if tex else "B", r"$\eta$" if tex else "η", "Reg. param."]
    for column in spec.columns:
        header += [column.label, f"{column.label} (paper)"]
    delta = r"$\Delta$Acc (\%p)" if tex else "ΔAcc (%p)"
    err = r"ERR (\%)" if tex else "ERR (%)"
    header += [delta, r"$\Delta$Acc (paper)" if tex else "ΔAcc (paper)", err, "ERR (paper)"]
    body = []
    for _, row in frame.iterrows():
        text = _tex_text if tex else str
        cells = [text(str(row["profile"]))] if mixed else []
        cells += [text(dataset_name(row["dataset"])), text(model_name(row["model"]))]
        if "epochs" in spec.axes:
            cells.append(str(row["epochs"]))
        cells += [_batch_label(row), format_number(row["lr"]), reg_label(row["reg_param"], flavor)]
        for column in spec.columns:
            value = _acc(row[f"{column.slug}_mean"], row[f"{column.slug}_std"], pm) or dash
            counts = _counts(row, column.slug)
            cells.append(f"{value} {{\\scriptsize {counts}}}" if tex else f"{value} {counts}")
            cells.append(
                _acc(row[f"{column.slug}_paper_mean"], row[f"{column.slug}_paper_std"], pm)
            )
        cells += [
            _num(row["delta_acc"], "+.2f"),
            _num(row["paper_delta_acc"], "+.2f"),
            _num(row["err"], ".2f"),
            _num(row["paper_err"], ".2f"),
        ]
        body.append(cells)
    return header, body


def _preamble(frame: pd.DataFrame) -> list[str]:
    spec = _spec_of(frame)
    attrs = frame.attrs
    profiles = ", ".join(attrs.get("profiles", [])) or "unknown"
    target, baseline = spec.target.label.lstrip("+"), spec.baseline.label
    return [
        f"Profile: {profiles}.",
        f"Runs: {attrs.get('n_runs', '?')} (experiments: {', '.join(attrs.get('experiments', [])) or '?'}); "
        f"{attrs.get('expected_seeds', '?')} expected seeds per cell.",
        f"Cells: mean ± std (ddof={attrs.get('ddof', 1)}) over seeds of the final test/acc of completed runs, in %; "
        "[completed/diverged/failed/missing runs]. (paper): Lee, Park & Lee (ICML 2023), "
        f"results/paper/{spec.name}.csv.",
        f"ΔAcc = {target} − {baseline} (%p); ERR = (err_{baseline} − err_{target}) / err_{baseline} × 100 (%), err = 100 − acc.",
    ]


def to_markdown(frame: pd.DataFrame) -> str:
    """The table as GitHub Markdown, headed by its title and a ``Profile:`` line."""
    spec = _spec_of(frame)
    header, body = _display_rows(frame, "md")
    lines = [f"# {spec.title}", ""]
    lines += [f"{line}  " if i < 3 else line for i, line in enumerate(_preamble(frame))]
    lines += ["", *markdown_lines(header, body)]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "ΔAcc": r"$\Delta$Acc",
    "±": r"$\pm$",
    "−": "--",
    "×": r"$\times$",
}


def _tex_text(text: str) -> str:
    for raw, escaped in _TEX_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def to_latex(frame: pd.DataFrame) -> str:
    """The table as a LaTeX ``table`` (booktabs), with the profile in a comment and the caption."""
    spec = _spec_of(frame)
    header, body = _display_rows(frame, "tex")
    preamble = _preamble(frame)
    caption = _tex_text(spec.title + ". " + " ".join(preamble))
    comment = f"{spec.name} generated by ijr-report -- {preamble[0]}"
    return "\n".join(latex_lines(header, body, comment, caption)) + "\n"


def to_csv(frame: pd.DataFrame) -> str:
    """The table's numbers, one row per table row, ``profile`` as the first column."""
    _spec_of(frame)
    return frame.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def write_table(
    frame: pd.DataFrame, out: str | os.PathLike, formats: Sequence[str] = ("md", "csv", "tex")
) -> list[Path]:
    """Write ``out.md``, ``out.csv`` and ``out.tex`` (a suffix on ``out`` is dropped); returns the paths."""
    render = {"md": to_markdown, "csv": to_csv, "tex": to_latex}
    unknown = [fmt for fmt in formats if fmt not in render]
    if unknown:
        raise ValueError(f"unknown table format '{unknown[0]}'; valid: md, csv, tex")
    return write_texts(out, {fmt: render[fmt](frame) for fmt in formats})
