"""What a check reads from one run directory: metric series by step (``metrics.csv``), per-step
tables (``probe_examples.csv``, ``logit_eigvecs.csv``, ``trajectory.bin``), summary values and
markers, and the windows claims are conditioned on.

A metric *expression* is one metric name or several joined by `` * `` / `` / `` (spaces around the
operator; evaluated left to right), e.g. ``probe/sharpness / probe/impurity_mean /
probe/jacobian_ones_sq``; a token that parses as a number is a constant. Values are aligned on the
steps where every term was logged (probe by probe).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ijr.reporting.runs import load_metrics
from ijr.run_artifacts import TRAJECTORY_FILE, TrajectoryFile


class NotReached(Exception):
    """The event a claim is conditioned on never happened in a run (status ``not reached``)."""


class Unmeasured(Exception):
    """A quantity the claim needs was not logged by a run (the claim fails, saying which)."""


_OPERATOR = re.compile(r"\s+([*/])\s+")


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


@dataclass
class Run:
    """One run directory and its row of :func:`ijr.reporting.runs.load_runs`."""

    path: Path
    row: pd.Series
    label: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """metrics.csv with one row per step (several logged rows of a step merged)."""
        frame = load_metrics(self.path)
        return frame.groupby("step", sort=True).first()

    @cached_property
    def summary(self) -> dict:
        try:
            return json.loads((self.path / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def column(self, name: str) -> pd.Series:
        """One metric's logged values by step (NaN rows dropped)."""
        if name not in self.metrics.columns:
            raise Unmeasured(f"'{name}' not in {self.path.name}/metrics.csv")
        return self.metrics[name].dropna()

    def series(self, expr: Any) -> pd.Series:
        """A metric expression (see the module docstring) or a number, by step."""
        if isinstance(expr, (int, float)) and not isinstance(expr, bool):
            index = self.metrics.index
            return pd.Series(float(expr), index=index, dtype=float)
        parts = _OPERATOR.split(str(expr).strip())
        value = self._term(parts[0])
        for op, token in zip(parts[1::2], parts[2::2], strict=True):
            term = self._term(token)
            value = value * term if op == "*" else value / term
            value = value.dropna()
        return value.astype(float)

    def _term(self, token: str) -> pd.Series | float:
        number = _number(token)
        return number if number is not None else self.column(token)

    def marker(self, name: str) -> float | None:
        """A summary marker (e.g. ``arp_end_step``); None when never reached."""
        value = (self.summary.get("markers") or {}).get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    def summary_value(self, dotted: str) -> Any:
        """``final.test/acc`` -> summary["final"]["test/acc"] (a key may itself hold dots, as
        ``final.probe/layer_norm/1.weight``); None when absent."""
        node: Any = self.summary
        rest = dotted
        while rest:
            if not isinstance(node, dict):
                return None
            if rest in node:
                return node[rest]
            head, sep, rest = rest.partition(".")
            if not sep or head not in node:
                return None
            node = node[head]
        return None

    def table(self, name: str) -> pd.DataFrame:
        """A per-step CSV beside metrics.csv (``probe_examples``, ``logit_eigvecs``)."""
        path = self.path / f"{name}.csv"
        if not path.is_file():
            raise Unmeasured(f"{self.path.name}/{name}.csv does not exist")
        frame = pd.read_csv(path)
        if name == "probe_examples":
            p = frame["p_top1"]
            frame["gini_lower"] = p * (1 - p)  # Gini(p_(1)) / 2, Theorem 4.1 (d)
            frame["gini_upper"] = np.minimum(p, 2 * p * (1 - p))  # min(p_(1), Gini), (c)-(d)
        return frame

    def trajectory(self) -> pd.DataFrame:
        """``trajectory.bin`` as a frame: index step, one column per sketch coordinate."""
        path = self.path / TRAJECTORY_FILE
        if not path.is_file():
            raise Unmeasured(f"{self.path.name}/{TRAJECTORY_FILE} does not exist")
        dim = int(self.row.get("probes.trajectory_dim") or 1024)
        steps, sketches = TrajectoryFile(path, dim).read()
        return pd.DataFrame(sketches, index=steps).sort_index()


def first_reach(run: Run, params: dict) -> int:
    """First step where ``reach.metric >= reach.level * (1 - reach.rtol)`` (defaults: the claim's
    own ``metric``, ``level`` and ``rtol``); :class:`NotReached` when it never does."""
    reach = params.get("reach") or {}
    metric = reach.get("metric", params.get("metric"))
    level = reach.get("level", params.get("level", 1.0))
    rtol = float(reach.get("rtol", params.get("rtol", 0.05)))
    ratio = ratio_series(run, metric, level)
    held = ratio[ratio >= 1 - rtol]
    if held.empty:
        raise NotReached(f"{metric} never reached {1 - rtol:g} x {level}")
    return int(held.index[0])


def point(run: Run, spec: Any, params: dict, default: float) -> float:
    """A window end: a step, ``start``/``end``, ``first_reach`` or a summary marker name."""
    if spec is None:
        return default
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return float(spec)
    name = str(spec)
    if name == "start":
        return -math.inf
    if name == "end":
        return math.inf
    if name == "first_reach":
        return float(first_reach(run, params))
    value = run.marker(name)
    if value is None:
        raise NotReached(f"marker {name} never reached")
    return float(value)


def window(run: Run, params: dict, key: str = "window") -> tuple[float, float]:
    """``params[key] = [start, end]`` or ``after``/``until``; inclusive, default the whole run."""
    if params.get(key) is not None:
        start, end = params[key]
    else:
        start, end = params.get("after"), params.get("until")
    return point(run, start, params, -math.inf), point(run, end, params, math.inf)


def clip(series: pd.Series, bounds: tuple[float, float]) -> pd.Series:
    start, end = bounds
    return series[(series.index >= start) & (series.index <= end)]


def ratio_series(run: Run, metric: Any, level: Any = 1.0) -> pd.Series:
    """metric / level probe by probe (level a number or an expression)."""
    num, den = run.series(metric), run.series(level)
    both = pd.concat([num, den], axis=1, join="inner").dropna()
    return (both.iloc[:, 0] / both.iloc[:, 1]).astype(float)


def stat(run: Run, metric: Any, name: str, params: dict) -> float:
    """A run's statistic of a metric (within ``params['window']``): first, final, max, min,
    mean, median, or ``at_marker:<name>`` (the value at the first probe at/after the marker)."""
    series = clip(run.series(metric), window(run, params))
    if name.startswith("at_marker:"):
        step = run.marker(name.split(":", 1)[1])
        if step is None:
            raise NotReached(f"marker {name.split(':', 1)[1]} never reached")
        after = series[series.index >= float(step)]
        if after.empty:
            raise Unmeasured(f"no {metric} logged at or after step {step}")
        return float(after.iloc[0])
    if series.empty:
        raise Unmeasured(f"no {metric} logged in the window")
    reducers = {
        "first": lambda s: s.iloc[0],
        "final": lambda s: s.iloc[-1],
        "max": np.max,
        "min": np.min,
        "mean": np.mean,
        "median": np.median,
    }
    if name not in reducers:
        raise ValueError(
            f"unknown stat '{name}' (first, final, max, min, mean, median, at_marker:M)"
        )
    return float(reducers[name](series))


def fmt(value: float) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.3g}"
    )
