"""The three phases of Implicit Jacobian Regularization (paper 000, Section 5.2, Figure 4) on a
series of probe measurements — pure Python, no Lightning, so it is testable on synthetic series.

* **Phase I** — before the sharpness ``||H||_sigma`` first reaches near its threshold:
  ``sharpness >= reach_fraction * threshold``.
* **Phase II, the Active Regularization Period (ARP)** — from the first probe where it does.
* **Phase III** — from the first LATER probe (step > the ARP start) where the mean impurity
  ``<lambda^(1)>`` is below ``impurity_level`` after having been at or above it at some earlier
  probe (0.25 in Figure 5: "we arbitrarily mark the end of the ARP when <lambda^(1)> decreases
  below a certain value"). A run whose impurity never reached the level has no phase III: it
  cannot *decrease* below it (at initialisation <lambda^(1)> is about 1/C, below 0.25 for C = 10,
  so without this condition every ARP would end one probe after it starts). Phases never go
  back.

The threshold is, with ``threshold="sgd"``, the SGD threshold ``2 rho_B / eta`` of
Proposition 5.2, and with ``threshold="stability"`` the edge of stability ``2 / eta`` (Cohen et
al.; the ``rho_B = 1`` full-batch case). With ``"sgd"``, a probe whose ``rho_B`` was not measured
uses ``2 / eta`` instead, and :attr:`ARPTracker.markers` records that the start was decided by the
fallback (``arp_start_threshold_kind = "stability (fallback: rho_B not measured)"``).

A probe without a sharpness value (cheap-only probe steps) cannot start the ARP; a probe without
an impurity value (e.g. a one-output MSE model, where the softmax impurity is undefined) cannot
end it.

Markers (written to ``summary.json["markers"]``; ``None`` until reached):
``arp_start_step``, ``arp_start_sharpness``, ``arp_start_threshold``,
``arp_start_threshold_kind``, ``arp_end_step``, ``arp_end_impurity_mean``,
``arp_end_jacobian_norm_sq`` (``||<J>||^2`` at the end of the ARP, the "x" marks of Figure 5).
"""

from __future__ import annotations

import math

THRESHOLD_KINDS = ("sgd", "stability")
FALLBACK_KIND = "stability (fallback: rho_B not measured)"


def _number_or_none(value) -> float | None:
    """``value`` as a float; ``None`` for not measured (``None`` or NaN)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return value


class ARPTracker:
    """Phase I / II / III of a run from its probe measurements, in step order."""

    def __init__(
        self, threshold: str = "sgd", reach_fraction: float = 0.9, impurity_level: float = 0.25
    ) -> None:
        if threshold not in THRESHOLD_KINDS:
            raise ValueError(
                f"probes.arp.threshold must be one of {', '.join(THRESHOLD_KINDS)}; got {threshold!r}"
            )
        if (
            isinstance(reach_fraction, bool)
            or not isinstance(reach_fraction, (int, float))
            or not 0 < reach_fraction <= 1
        ):
            raise ValueError(f"probes.arp.reach_fraction must be in (0, 1], got {reach_fraction!r}")
        if (
            isinstance(impurity_level, bool)
            or not isinstance(impurity_level, (int, float))
            or not 0 < impurity_level < 1
        ):
            raise ValueError(f"probes.arp.impurity_level must be in (0, 1), got {impurity_level!r}")
        self.threshold = threshold
        self.reach_fraction = float(reach_fraction)
        self.impurity_level = float(impurity_level)
        self.phase = 1
        self.last_step: int | None = None
        self.impurity_reached_level = False  # <lambda^(1)> >= impurity_level at some probe
        self.markers: dict[str, float | int | str | None] = {
            "arp_start_step": None,
            "arp_start_sharpness": None,
            "arp_start_threshold": None,
            "arp_start_threshold_kind": None,
            "arp_end_step": None,
            "arp_end_impurity_mean": None,
            "arp_end_jacobian_norm_sq": None,
        }

    def threshold_at(
        self, stability_threshold: float | None, sgd_threshold: float | None
    ) -> tuple[float | None, str | None]:
        """The threshold used at one probe and its kind (see the module docstring)."""
        if self.threshold == "sgd":
            if sgd_threshold is not None:
                return sgd_threshold, "sgd"
            return (
                (stability_threshold, FALLBACK_KIND)
                if stability_threshold is not None
                else (None, None)
            )
        return (
            (stability_threshold, "stability") if stability_threshold is not None else (None, None)
        )

    def update(
        self,
        step: int,
        *,
        sharpness: float | None = None,
        stability_threshold: float | None = None,
        sgd_threshold: float | None = None,
        impurity_mean: float | None = None,
        jacobian_norm_sq: float | None = None,
    ) -> int:
        """Feed the measurements of the probe at ``step`` (``None`` = not measured there) and
        return the phase (1, 2 or 3) at that step. Steps must not decrease."""
        step = int(step)
        if self.last_step is not None and step < self.last_step:
            raise ValueError(
                f"ARP probes must come in step order: step {step} after step {self.last_step}"
            )
        self.last_step = step
        sharpness = _number_or_none(sharpness)
        impurity_mean = _number_or_none(impurity_mean)
        jacobian_norm_sq = _number_or_none(jacobian_norm_sq)
        stability_threshold = _number_or_none(stability_threshold)
        sgd_threshold = _number_or_none(sgd_threshold)
        if impurity_mean is not None and impurity_mean >= self.impurity_level:
            self.impurity_reached_level = True
        if self.phase == 1 and sharpness is not None:
            threshold, kind = self.threshold_at(stability_threshold, sgd_threshold)
            if threshold is not None and sharpness >= self.reach_fraction * threshold:
                self.phase = 2
                self.markers.update(
                    arp_start_step=step,
                    arp_start_sharpness=sharpness,
                    arp_start_threshold=threshold,
                    arp_start_threshold_kind=kind,
                )
                return self.phase
        if (
            self.phase == 2
            and step > int(self.markers["arp_start_step"])  # type: ignore[arg-type]
            and self.impurity_reached_level
            and impurity_mean is not None
            and impurity_mean < self.impurity_level
        ):
            self.phase = 3
            self.markers.update(
                arp_end_step=step,
                arp_end_impurity_mean=impurity_mean,
                arp_end_jacobian_norm_sq=jacobian_norm_sq,
            )
        return self.phase

    # checkpointing (plain Python values only)
    def state_dict(self) -> dict:
        return {
            "phase": self.phase,
            "last_step": self.last_step,
            "markers": dict(self.markers),
            "impurity_reached_level": self.impurity_reached_level,
        }

    def load_state_dict(self, state: dict) -> None:
        self.phase = int(state["phase"])
        self.last_step = state["last_step"]
        self.markers = dict(state["markers"])
        self.impurity_reached_level = bool(state.get("impurity_reached_level", False))


__all__ = ["ARPTracker", "FALLBACK_KIND", "THRESHOLD_KINDS"]
