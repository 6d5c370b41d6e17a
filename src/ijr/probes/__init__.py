"""Curvature probes: Lightning callbacks that measure, on a schedule, the quantities of paper 000
(sharpness, Gauss–Newton top eigenvalue, rho_B and the SGD threshold, impurity statistics and Gini
bounds, the ||<J>|| family, norms, logit statistics, input–output Jacobian, generalisation gap),
log them under the docs/design.md contract-2 names and mark the phases of Implicit Jacobian
Regularization (the Active Regularization Period, ``arp/phase`` and summary markers).

``build_callbacks(cfg, dm, run)`` is what ``ijr.train`` calls when ``cfg.probes.name != "none"``.
The math is in :mod:`ijr.curvature`; here: the probe groups, each declared once (:mod:`.groups`),
config (:mod:`.config`), schedule (:mod:`.schedule`), ARP phases (:mod:`.arp`), one measurement
(:mod:`.measure`), the callback (:mod:`.callback`) and ``probe_examples.csv`` (:mod:`.examples`).

Only :mod:`.callback` (and :func:`build_callbacks`) imports Lightning, on first use, so the
registry, the config and the measurement are importable without it (``ijr.reporting`` reads
the registry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ijr.probes.arp import ARPTracker
from ijr.probes.config import ProbeConfig, parse_probe_config
from ijr.probes.schedule import ProbeSchedule, log_spaced_steps

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from ijr.probes.callback import CurvatureProbes


def build_callbacks(cfg, dm, run) -> list[pl.Callback]:
    """The probe callbacks for the run config ``cfg`` (uses ``cfg.probes``),
    the set-up datamodule ``dm`` and the run directory ``run`` (``run.path``); ``[]`` for
    ``probes=none``. Bad settings raise a one-line ``ValueError``."""
    config = parse_probe_config(cfg.probes)
    if not config.enabled:
        return []
    from ijr.probes.callback import CurvatureProbes

    return [CurvatureProbes(config, dm, run.path)]


def __getattr__(name: str) -> Any:
    if name == "CurvatureProbes":  # the Lightning callback, imported on first use
        from ijr.probes.callback import CurvatureProbes

        return CurvatureProbes
    raise AttributeError(f"module 'ijr.probes' has no attribute {name!r}")


__all__ = [
    "ARPTracker",
    "CurvatureProbes",
    "ProbeConfig",
    "ProbeSchedule",
    "build_callbacks",
    "log_spaced_steps",
    "parse_probe_config",
]
