"""The check vocabulary of the claims (CLAIMS_SPEC.md): small functions over runs.

Per-run checks take one :class:`~ijr.claims.series.Run` and the claim's ``params`` and return an
:class:`Outcome`; a claim over several runs passes when every run passes
(:func:`ijr.claims.evaluate.evaluate_claim`). Multi-run checks (``monotone``, ``beats``) take the
list of runs. A check raises :class:`~ijr.claims.series.NotReached` when the event it is
conditioned on never happened and :class:`~ijr.claims.series.Unmeasured` when a quantity it needs
was not logged; :class:`MissingRuns` when there are fewer runs than it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ijr.claims.series import (
    NotReached,
    Run,
    Unmeasured,
    clip,
    first_reach,
    fmt,
    point,
    ratio_series,
    stat,
    window,
)
from ijr.reporting.runs import _matches as config_equal

PASS, FAIL, NOT_REACHED, MISSING_RUNS, NOT_RUN = (
    "pass",
    "fail",
    "not reached",
    "missing runs",
    "not run",
)
STATUSES = (PASS, FAIL, NOT_REACHED, MISSING_RUNS, NOT_RUN)


class MissingRuns(Exception):
    """Fewer runs (or run values along a swept key) than the check needs."""


@dataclass(frozen=True)
class Outcome:
    status: str
    measured: str
    expected: str


def _verdict(ok: bool, measured: str, expected: str) -> Outcome:
    return Outcome(PASS if ok else FAIL, measured, expected)


def _bounds(params: dict) -> tuple[float, float]:
    lo = params.get("lo", -math.inf)
    hi = params.get("hi", math.inf)
    return float(lo), float(hi)


def _window_text(params: dict, key: str = "window") -> str:
    if params.get(key) is not None:
        return f" in steps [{params[key][0]}, {params[key][1]}]"
    if params.get("after") is not None or params.get("until") is not None:
        return f" from {params.get('after', 'start')} to {params.get('until', 'end')}"
    return ""


# --------------------------------------------------------------------------- per-run checks
def reaches(run: Run, p: dict) -> Outcome:
    """metric >= level * (1 - rtol) at some logged step (Cohen et al.'s progressive sharpening)."""
    rtol = float(p.get("rtol", 0.05))
    ratio = clip(ratio_series(run, p["metric"], p.get("level", 1.0)), window(run, p))
    expected = (
        f"{p['metric']} >= {1 - rtol:g} x {p.get('level', 1.0)} at some step{_window_text(p)}"
    )
    if ratio.empty:
        raise Unmeasured(f"no {p['metric']} logged{_window_text(p)}")
    held = ratio[ratio >= 1 - rtol]
    measured = f"max ratio {fmt(ratio.max())} at step {int(ratio.idxmax())}"
    if not held.empty:
        measured += f"; first held at step {int(held.index[0])}"
    return _verdict(not held.empty, measured, expected)


def band(run: Run, p: dict) -> Outcome:
    """From ``after`` (until ``until``), metric/level in [lo, hi] for >= ``frac`` of the steps."""
    lo, hi = _bounds(p)
    frac = float(p.get("frac", 1.0))
    ratio = clip(ratio_series(run, p["metric"], p.get("level", 1.0)), window(run, p))
    expected = f"{p['metric']} / {p.get('level', 1.0)} in [{lo:g}, {hi:g}] for >= {frac:.0%} of the probes{_window_text(p)}"
    if ratio.empty:
        raise NotReached(f"no probe{_window_text(p)}")
    share = float(((ratio >= lo) & (ratio <= hi)).mean())
    measured = (
        f"{share:.0%} of {len(ratio)} probes in band (steps {int(ratio.index[0])}-{int(ratio.index[-1])}); "
        f"ratio median {fmt(ratio.median())}, range [{fmt(ratio.min())}, {fmt(ratio.max())}]"
    )
    return _verdict(share >= frac, measured, expected)


def rises_then_falls(run: Run, p: dict) -> Outcome:
    """Interior peak with peak/first >= ``rise`` and peak/last >= ``fall`` (n-shape, Fig. 1)."""
    series = clip(run.series(p["metric"]), window(run, p))
    k = int(p.get("smooth", 1))
    if k > 1:
        series = series.rolling(k, center=True, min_periods=1).median()
    rise, fall = float(p.get("rise", 1.0)), float(p.get("fall", 1.0))
    expected = f"interior peak, peak/first >= {rise:g}, peak/last >= {fall:g}{_window_text(p)}"
    if len(series) < 3:
        raise NotReached(f"{len(series)} logged values{_window_text(p)} (3 needed)")
    pos = int(np.argmax(series.to_numpy()))
    first, peak, last = series.iloc[0], series.iloc[pos], series.iloc[-1]
    interior = 0 < pos < len(series) - 1
    ok = interior and peak >= rise * first and peak >= fall * last
    measured = (
        f"first {fmt(first)} (step {int(series.index[0])}) -> peak {fmt(peak)} (step "
        f"{int(series.index[pos])}) -> last {fmt(last)} (step {int(series.index[-1])})"
    )
    return _verdict(ok, measured, expected)


def between(run: Run, p: dict) -> Outcome:
    """lo <= metric <= hi (numbers or expressions, row by row) with slack ``atol`` at every row
    (or >= ``frac`` of them); ``table: probe_examples`` reads the tracked examples instead."""
    atol, frac = float(p.get("atol", 0.0)), float(p.get("frac", 1.0))
    expected = f"{p.get('lo', '-inf')} - {atol:g} <= {p['metric']} <= {p.get('hi', 'inf')} + {atol:g} at >= {frac:.0%} of the rows{_window_text(p)}"
    value, lo, hi = _between_columns(run, p)
    if value.empty:
        raise Unmeasured(f"no {p['metric']} logged{_window_text(p)}")
    inside = (value >= lo - atol) & (value <= hi + atol)
    share = float(inside.mean())
    worst = float(np.max(np.maximum(lo - value, value - hi)))
    measured = f"{share:.1%} of {len(value)} rows inside; largest excursion {fmt(worst)}"
    return _verdict(share >= frac, measured, expected)


def _between_columns(run: Run, p: dict) -> tuple[pd.Series, pd.Series, pd.Series]:
    lo, hi = p.get("lo", -math.inf), p.get("hi", math.inf)
    if p.get("table"):
        frame = run.table(str(p["table"]))
        frame = frame[frame["step"].between(*window(run, p))]
        cols = [
            frame[x] if isinstance(x, str) else pd.Series(float(x), index=frame.index)
            for x in (p["metric"], lo, hi)
        ]
        return cols[0], cols[1], cols[2]
    parts = [run.series(x) if isinstance(x, str) else None for x in (p["metric"], lo, hi)]
    frame = pd.concat([s for s in parts if s is not None], axis=1, join="inner").dropna()
    frame = frame[(frame.index >= window(run, p)[0]) & (frame.index <= window(run, p)[1])]
    cols, i = [], 0
    for x, s in zip((p["metric"], lo, hi), parts, strict=True):
        if s is None:
            cols.append(pd.Series(float(x), index=frame.index))
        else:
            cols.append(frame.iloc[:, i])
            i += 1
    return cols[0], cols[1], cols[2]


def ratio(run: Run, p: dict) -> Outcome:
    """stat of ``num`` over stat of ``den`` in [lo, hi] (``stat``, or ``num_stat``/``den_stat``)."""
    lo, hi = _bounds(p)
    num_stat = p.get("num_stat", p.get("stat", "mean"))
    den_stat = p.get("den_stat", p.get("stat", "mean"))
    num, den = stat(run, p["num"], num_stat, p), stat(run, p["den"], den_stat, p)
    value = num / den if den else math.inf
    expected = (
        f"{num_stat}({p['num']}) / {den_stat}({p['den']}) in [{lo:g}, {hi:g}]{_window_text(p)}"
    )
    measured = f"{fmt(num)} / {fmt(den)} = {fmt(value)}"
    return _verdict(lo <= value <= hi, measured, expected)


def fraction(run: Run, p: dict) -> Outcome:
    """The summary value ``summary_key`` (over ``den_key`` if given) in [lo, hi]."""
    lo, hi = _bounds(p)
    key = p["summary_key"]
    expected = f"{key}{' / ' + p['den_key'] if p.get('den_key') else ''} in [{lo:g}, {hi:g}]"
    value = _summary_number(run, key)
    if p.get("den_key"):
        value = value / _summary_number(run, p["den_key"])
    return _verdict(lo <= value <= hi, f"{fmt(value)}", expected)


def _summary_number(run: Run, key: str) -> float:
    value = run.summary_value(key)
    if value is None:
        if key.startswith("markers."):
            raise NotReached(f"{key} never reached")
        raise Unmeasured(f"{key} not in {run.path.name}/summary.json")
    return float(value)


def growth(run: Run, p: dict) -> Outcome:
    """Slope of ``metric`` over ``window`` against its slope over ``versus`` (``scale``: linear
    per step, or log: relative growth per step); ratio <= ``max_ratio`` / >= ``min_ratio``."""
    log = p.get("scale", "linear") == "log"
    slopes = [_slope(run, p, key, log) for key in ("window", "versus")]
    value = slopes[0] / slopes[1] if slopes[1] else math.inf
    lo, hi = float(p.get("min_ratio", -math.inf)), float(p.get("max_ratio", math.inf))
    expected = f"slope{_window_text(p)} / slope{_window_text(p, 'versus')} in [{lo:g}, {hi:g}] ({p.get('scale', 'linear')})"
    measured = f"{fmt(slopes[0])} / {fmt(slopes[1])} per step = {fmt(value)}"
    return _verdict(lo <= value <= hi, measured, expected)


def _slope(run: Run, p: dict, key: str, log: bool) -> float:
    series = clip(run.series(p["metric"]), window(run, p, key))
    if len(series) < 2:
        raise NotReached(f"fewer than 2 probes{_window_text(p, key)}")
    a, b = series.iloc[0], series.iloc[-1]
    span = float(series.index[-1] - series.index[0])
    return (math.log(b / a) if log else b - a) / span


def co_moves(run: Run, p: dict) -> Outcome:
    """Consecutive changes of ``metric`` and ``other`` share their sign for >= ``frac`` (Fig. 2)."""
    both = pd.concat([run.series(p["metric"]), run.series(p["other"])], axis=1, join="inner")
    both = clip(both.dropna(), window(run, p))
    frac = float(p.get("frac", 0.5))
    expected = f"{p['metric']} and {p['other']} move the same way at >= {frac:.0%} of consecutive probes{_window_text(p)}"
    if len(both) < 3:
        raise NotReached(f"{len(both)} probes{_window_text(p)} (3 needed)")
    moves = np.sign(both.diff().dropna().to_numpy())
    share = float((moves[:, 0] == moves[:, 1]).mean())
    return _verdict(share >= frac, f"{share:.0%} of {len(moves)} moves agree", expected)


def steadier(run: Run, p: dict) -> Outcome:
    """Median |change of log metric| between consecutive probes <= ``max_ratio`` x that of
    ``than`` (lambda_hat "locally constant" while the sharpness oscillates, Fig. 2)."""
    both = pd.concat([run.series(p["metric"]), run.series(p["than"])], axis=1, join="inner")
    both = clip(both.dropna(), window(run, p))
    limit = float(p.get("max_ratio", 1.0))
    expected = (
        f"median |dlog {p['metric']}| <= {limit:g} x median |dlog {p['than']}|{_window_text(p)}"
    )
    if len(both) < 3 or (both <= 0).to_numpy().any():
        raise Unmeasured(f"need >= 3 positive probes{_window_text(p)}, got {len(both)}")
    moves = np.abs(np.diff(np.log(both.to_numpy()), axis=0))
    steady, reference = float(np.median(moves[:, 0])), float(np.median(moves[:, 1]))
    value = steady / reference if reference else math.inf
    measured = f"{fmt(steady)} vs {fmt(reference)} (ratio {fmt(value)}, {len(moves)} moves)"
    return _verdict(value <= limit, measured, expected)


def spikes(run: Run, p: dict) -> Outcome:
    """Count rises of ``metric`` above ``rise`` x its running minimum in the window (catapults);
    pass when the count is >= ``min_count`` and <= ``max_count``."""
    series = clip(run.series(p["metric"]), window(run, p))
    rise = float(p.get("rise", 1.1))
    lo, hi = int(p.get("min_count", 0)), p.get("max_count")
    expected = f"{lo} <= spikes of {p['metric']} above {rise:g} x its running minimum <= {hi if hi is not None else 'inf'}{_window_text(p)}"
    if len(series) < 2:
        raise Unmeasured(f"{len(series)} values of {p['metric']}{_window_text(p)}")
    values = series.to_numpy()
    running_min = np.minimum.accumulate(values)
    above = values > rise * running_min
    count = int(np.sum(above[1:] & ~above[:-1]) + above[0])
    biggest = float(np.max(values / running_min))
    ok = count >= lo and (hi is None or count <= int(hi))
    return _verdict(ok, f"{count} spikes; largest {fmt(biggest)} x running minimum", expected)


def trajectory(run: Run, p: dict) -> Outcome:
    """Cosines of consecutive displacements of the sketched parameters (trajectory.bin): the
    share of reversals (cos < 0) within [``min_frac_negative``, ``max_frac_negative``] (Fig. 3)."""
    sketch = run.trajectory()
    start, end = window(run, p)
    steps = sketch.index.to_numpy()
    moves = np.diff(sketch.to_numpy(dtype=np.float64), axis=0)
    consecutive = np.diff(steps) == 1
    a, b = moves[:-1], moves[1:]
    keep = consecutive[:-1] & consecutive[1:] & (steps[1:-1] >= start) & (steps[1:-1] <= end)
    lo, hi = float(p.get("min_frac_negative", 0.0)), float(p.get("max_frac_negative", 1.0))
    expected = f"share of reversing steps in [{lo:g}, {hi:g}]{_window_text(p)}"
    if keep.sum() < 2:
        raise Unmeasured(f"fewer than 2 consecutive sketched steps{_window_text(p)}")
    cos = np.einsum("ij,ij->i", a[keep], b[keep]) / (
        np.linalg.norm(a[keep], axis=1) * np.linalg.norm(b[keep], axis=1) + 1e-30
    )
    share = float((cos < 0).mean())
    measured = f"{share:.0%} of {len(cos)} steps reverse; median cos {fmt(float(np.median(cos)))}"
    return _verdict(lo <= share <= hi, measured, expected)


def salient(run: Run, p: dict) -> Outcome:
    """Fig. 8: in the mean Q Lambda^{1/2} (logit_eigvecs.csv, at ``step`` or the last probe),
    column i has its largest entry at rank i and its smallest at rank i + 1, for >= ``frac`` of
    the C - 1 eigenpairs (Theorem 4.1 (b))."""
    frame = run.table("logit_eigvecs")
    step = point(run, p.get("step"), p, float(frame["step"].max()))
    step = float(frame["step"][frame["step"] >= step].min())  # the first probe at/after it
    grid = frame[frame["step"] == step].pivot(index="rank", columns="eigenpair", values="value")
    frac = float(p.get("frac", 1.0))
    pairs = [i for i in grid.columns if i + 1 in grid.index][: len(grid.index) - 1]
    hits = [grid[i].idxmax() == i and grid[i].idxmin() == i + 1 for i in pairs]
    share = float(np.mean(hits)) if hits else 0.0
    expected = f"salient entries (i, i+1) in >= {frac:.0%} of the eigenpairs at step {step:g}"
    return _verdict(share >= frac, f"{sum(hits)} of {len(hits)} eigenpairs", expected)


# --------------------------------------------------------------------------- multi-run checks
def _value(run: Run, p: dict) -> float:
    return stat(run, p["metric"], str(p.get("stat", "final")), p)


def _matches(run: Run, where: dict) -> bool:
    return all(config_equal(run.row.get(k), v) for k, v in where.items())


def _paired(runs: list[Run], p: dict, a: dict, b: dict, pair_by: list[str]) -> pd.DataFrame:
    """One row per pair (A, B) equal on ``pair_by``: the keys and both values."""
    rows = {}
    for side, where in (("a", a), ("b", b)):
        for run in runs:
            if _matches(run, where):
                key = tuple(run.row.get(k) for k in pair_by)
                rows.setdefault(key, {})[side] = _value(run, p)
    pairs = [
        dict(zip(pair_by, k, strict=True), **v) for k, v in rows.items() if "a" in v and "b" in v
    ]
    return pd.DataFrame(pairs, columns=[*pair_by, "a", "b"])


def monotone(runs: list[Run], p: dict) -> Outcome:
    """The per-run ``stat`` of ``metric`` (or the paired difference A - B, ``paired: {a, b}``),
    averaged over seeds, is monotone along the swept key ``along`` with <= ``violations``
    adjacent pairs out of order; :class:`MissingRuns` when a value of ``values`` has no run."""
    along = p["along"]
    if p.get("paired"):
        keys = [along, "seed"]
        frame = _paired(runs, p, p["paired"]["a"], p["paired"]["b"], keys)
        frame["value"] = frame["a"] - frame["b"]
    else:
        frame = pd.DataFrame(
            {along: [r.row.get(along) for r in runs], "value": [_value(r, p) for r in runs]}
        )
    means = frame.groupby(along)["value"].mean().sort_index()
    wanted = [float(v) for v in p.get("values", [])]
    present = [float(v) for v in means.index]
    lacking = [v for v in wanted if not any(math.isclose(v, x) for x in present)]
    if lacking or len(means) < 2:
        raise MissingRuns(f"no run at {along} = {', '.join(map(fmt, lacking)) or 'a second value'}")
    sign = 1 if p.get("direction", "increasing") == "increasing" else -1
    steps = np.diff(means.to_numpy()) * sign
    bad = int(np.sum(steps <= 0))
    allowed = int(p.get("violations", 0))
    expected = f"{p.get('direction', 'increasing')} along {along}, <= {allowed} pairs out of order"
    measured = (
        "; ".join(f"{fmt(float(k))}: {fmt(v)}" for k, v in means.items()) + f" ({bad} out of order)"
    )
    return _verdict(bad <= allowed, measured, expected)


def _require_cells(frame: pd.DataFrame, p: dict) -> None:
    """With ``along`` and ``values``: every value of ``values`` has a cell of >= ``min_seeds``
    pairs (:class:`MissingRuns` otherwise)."""
    along, wanted = p.get("along"), [float(v) for v in p.get("values", [])]
    if not along or not wanted:
        return
    sizes = frame.groupby(along).size() if len(frame) else pd.Series(dtype=int)
    need = int(p.get("min_seeds", 1))
    lacking = [
        v
        for v in wanted
        if not any(math.isclose(v, float(k)) and n >= need for k, n in sizes.items())
    ]
    if lacking:
        raise MissingRuns(
            f"fewer than {need} paired seeds at {along} = {', '.join(map(fmt, lacking))}"
        )


def beats(runs: list[Run], p: dict) -> Outcome:
    """A beats B: runs matching ``a`` and ``b`` paired by ``pair_by`` (seed included); per cell
    (``pair_by`` without seed) the mean paired difference A - B exceeds ``margin`` (below
    -margin with ``lower_is_better``) in >= ``min_frac`` of the cells. With ``along`` (a key of
    ``pair_by``) and ``values``, each of those values needs a cell of >= ``min_seeds`` pairs."""
    pair_by = list(p.get("pair_by", ["seed"]))
    frame = _paired(runs, p, p["a"], p["b"], pair_by)
    need = int(p.get("min_pairs", 1))
    if len(frame) < need:
        raise MissingRuns(f"{len(frame)} paired runs of {p['a']} and {p['b']} ({need} needed)")
    _require_cells(frame, p)
    sign = -1 if p.get("lower_is_better") else 1
    frame["diff"] = (frame["a"] - frame["b"]) * sign
    frame = frame.sort_values(pair_by, kind="stable")  # per seed: in seed order
    cells = [k for k in pair_by if k != "seed"]
    grouped = frame.groupby(cells)["diff"] if cells else [((), frame["diff"])]
    margin, parts, wins = float(p.get("margin", 0.0)), [], 0
    for key, diff in grouped:
        wins += bool(diff.mean() > margin)
        std = diff.std(ddof=1) if len(diff) > 1 else float("nan")
        label = f"{key}: " if cells else ""
        parts.append(
            f"{label}A-B {fmt(diff.mean())} +- {fmt(std)} (n={len(diff)}, per seed {', '.join(fmt(d) for d in diff)})"
        )
    n = len(parts)
    min_frac = float(p.get("min_frac", 1.0))
    expected = f"mean paired {p['metric']} difference > {margin:g} in >= {min_frac:.0%} of cells"
    measured = f"{wins} of {n} cells; " + "; ".join(parts)
    return _verdict(wins >= min_frac * n, measured, expected)


PerRun = Callable[[Run, dict], Outcome]
MultiRun = Callable[[list[Run], dict], Outcome]
PER_RUN: dict[str, PerRun] = {
    "reaches": reaches,
    "band": band,
    "rises_then_falls": rises_then_falls,
    "between": between,
    "ratio": ratio,
    "fraction": fraction,
    "growth": growth,
    "co_moves": co_moves,
    "steadier": steadier,
    "spikes": spikes,
    "trajectory": trajectory,
    "salient": salient,
}
MULTI_RUN: dict[str, MultiRun] = {"monotone": monotone, "beats": beats}
CHECKS: dict[str, Any] = {**PER_RUN, **MULTI_RUN}
__all__ = [
    "CHECKS",
    "Outcome",
    "STATUSES",
    "MissingRuns",
    "NotReached",
    "Unmeasured",
    "first_reach",
]
