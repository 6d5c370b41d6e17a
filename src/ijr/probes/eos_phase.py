"""The four phases of the edge of stability (paper 004, Li, Wang & Li, Section 3.1, Figure 1)
and the anomaly points of Figure 2, on a series of probe measurements — pure Python, testable on
synthetic series.

With Lambda the sharpness (paper 004 uses lambda_max of the Gram matrix M, Section 2) and eta
the learning rate, at consecutive probes:

* **Phase I** — Lambda < 2/eta (training starts here; progressive sharpening);
* **Phase II** — Lambda >= 2/eta, from the first probe where it is, while it keeps rising;
* **Phase III** — Lambda still >= 2/eta but lower than at the previous probe (it "begins to
  gradually drop");
* **Phase IV** — Lambda < 2/eta after Phase III. It lasts "until the loss decreases to a level
  around its value right before Phase III" (Section 3.1): back to Phase I at the first probe
  whose loss is <= (1 + ``loss_tolerance``) times the loss of the last Phase-II probe. If Lambda
  reaches 2/eta again first, the run goes to Phase II directly (a new cycle).

A probe where Lambda falls below 2/eta straight from Phase II passes through Phase III at that
same probe (both boundaries are recorded at its step). The cycle repeats; ``eos_cycles`` counts
the entries into Phase IV.

**Anomaly points** (Figure 2): consecutive probes where sign(Delta Lambda) != sign(Delta ||A||)
(both changes non-zero). Only probes with a sharpness value count, and every pair uses the values
measured at those two probes. ``anomaly_fraction`` = anomalies / such pairs.

Lemma 3.2 / Section 3.4 diagnostics over consecutive probe pairs: ``dv1_growth_fraction`` — the
fraction of pairs within Phases II-III where |D^T v_1| grew; ``rest_decrease_fraction`` and
``loss_decrease_fraction`` — the fractions of all pairs where ||R||^2/n, respectively the loss
||D||^2/n, decreased (Figure 3(b): R "decreases more steadily").

Markers (``summary.json["markers"]``; ``None`` until defined): ``eos_phase_boundaries`` (a list
of [step, phase] at every change, starting with the first probe), ``eos_first_phase2_step``,
``eos_first_phase4_step``, ``eos_cycles``, ``anomaly_count``, ``anomaly_pairs``,
``anomaly_fraction``, ``dv1_growth_fraction``, ``rest_decrease_fraction``,
``loss_decrease_fraction``.
"""

from __future__ import annotations

import math

_COUNTERS = ("anomaly", "dv1_growth", "rest_decrease", "loss_decrease")


def _value(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


class EOSPhaseTracker:
    """Phases I-IV and anomaly points of a run from its probes, in step order."""

    def __init__(self, loss_tolerance: float = 0.0) -> None:
        if (
            isinstance(loss_tolerance, bool)
            or not isinstance(loss_tolerance, (int, float))
            or loss_tolerance < 0
        ):
            raise ValueError(
                f"probes.eos.loss_tolerance must be a number >= 0, got {loss_tolerance!r}"
            )
        self.loss_tolerance = float(loss_tolerance)
        self.phase: int | None = None
        self.last_step: int | None = None
        self.previous: dict[str, float | None] = {}
        self.loss_before_three: float | None = None
        self.counts = {f"{k}_{w}": 0 for k in _COUNTERS for w in ("hits", "pairs")}
        self.boundaries: list[list[int]] = []
        self.cycles = 0

    # ----------------------------------------------------------------- phases
    def _enter(self, step: int, phase: int) -> None:
        self.phase = phase
        self.boundaries.append([step, phase])
        if phase == 4:
            self.cycles += 1

    def _next_phase(
        self, step: int, sharpness: float, threshold: float, loss: float | None
    ) -> None:
        above = sharpness >= threshold
        before = self.previous.get("sharpness")
        if self.phase is None:
            self._enter(step, 2 if above else 1)
        elif self.phase == 1 and above:
            self._enter(step, 2)
        elif self.phase == 2 and not above:
            self._enter(step, 3)
            self._enter(step, 4)
        elif self.phase == 2 and before is not None and sharpness < before:
            self._enter(step, 3)
        elif self.phase == 3 and not above:
            self._enter(step, 4)
        elif self.phase == 4 and above:
            self._enter(step, 2)
        elif self.phase == 4 and loss is not None and self.loss_before_three is not None:
            if loss <= (1.0 + self.loss_tolerance) * self.loss_before_three:
                self._enter(step, 1)
        if self.phase == 2 and loss is not None:
            self.loss_before_three = loss

    # ---------------------------------------------------------------- updates
    def _pair(self, name: str, hit: bool) -> None:
        self.counts[f"{name}_pairs"] += 1
        self.counts[f"{name}_hits"] += int(hit)

    def update(
        self,
        step: int,
        *,
        sharpness=None,
        threshold=None,
        loss=None,
        output_norm=None,
        d_v1=None,
        rest_loss=None,
    ) -> tuple[int | None, float]:
        """Feed one probe (``None`` = not measured there); returns (phase or None before the
        first sharpness, 1.0 / 0.0 if this probe closes an anomalous / normal pair, else NaN)."""
        step = int(step)
        if self.last_step is not None and step < self.last_step:
            raise ValueError(
                f"EOS probes must come in step order: step {step} after step {self.last_step}"
            )
        self.last_step = step
        now = {
            "sharpness": _value(sharpness),
            "loss": _value(loss),
            "output_norm": _value(output_norm),
            "d_v1": _value(d_v1),
            "rest_loss": _value(rest_loss),
        }
        threshold = _value(threshold)
        if now["sharpness"] is None:  # only probes with a sharpness count (pairs stay adjacent)
            return self.phase, math.nan
        phase_before = self.phase
        anomaly = math.nan
        prev = self.previous
        if prev.get("sharpness") is not None:
            if now["output_norm"] is not None and prev.get("output_norm") is not None:
                ds = _sign(now["sharpness"] - prev["sharpness"])
                da = _sign(now["output_norm"] - prev["output_norm"])
                if ds and da:
                    anomaly = float(ds != da)
                    self._pair("anomaly", ds != da)
        for key, name in (("rest_loss", "rest_decrease"), ("loss", "loss_decrease")):
            if now[key] is not None and prev.get(key) is not None:
                self._pair(name, now[key] < prev[key])
        if threshold is not None:
            self._next_phase(step, now["sharpness"], threshold, now["loss"])
        if (
            phase_before in (2, 3)
            and self.phase in (2, 3)
            and now["d_v1"] is not None
            and prev.get("d_v1") is not None
        ):
            self._pair("dv1_growth", now["d_v1"] > prev["d_v1"])
        self.previous = now
        return self.phase, anomaly

    # ---------------------------------------------------------------- markers
    def _fraction(self, name: str) -> float | None:
        pairs = self.counts[f"{name}_pairs"]
        return self.counts[f"{name}_hits"] / pairs if pairs else None

    @property
    def markers(self) -> dict:
        def first(phase):
            return next((s for s, p in self.boundaries if p == phase), None)

        return {
            "eos_phase_boundaries": [list(b) for b in self.boundaries],
            "eos_first_phase2_step": first(2),
            "eos_first_phase4_step": first(4),
            "eos_cycles": self.cycles,
            "anomaly_count": self.counts["anomaly_hits"],
            "anomaly_pairs": self.counts["anomaly_pairs"],
            "anomaly_fraction": self._fraction("anomaly"),
            "dv1_growth_fraction": self._fraction("dv1_growth"),
            "rest_decrease_fraction": self._fraction("rest_decrease"),
            "loss_decrease_fraction": self._fraction("loss_decrease"),
        }

    # ---------------------------------------------------------- checkpointing
    def state_dict(self) -> dict:
        return {
            "phase": self.phase,
            "last_step": self.last_step,
            "previous": dict(self.previous),
            "loss_before_three": self.loss_before_three,
            "counts": dict(self.counts),
            "boundaries": [list(b) for b in self.boundaries],
            "cycles": self.cycles,
        }

    def load_state_dict(self, state: dict) -> None:
        self.phase = state["phase"]
        self.last_step = state["last_step"]
        self.previous = dict(state["previous"])
        self.loss_before_three = state["loss_before_three"]
        self.counts = dict(state["counts"])
        self.boundaries = [list(b) for b in state["boundaries"]]
        self.cycles = int(state["cycles"])


__all__ = ["EOSPhaseTracker"]
