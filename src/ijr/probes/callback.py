"""The Lightning callback that runs the probes on schedule, logs them, writes
``probe_examples.csv`` and tracks the ARP phases. Thin: what is measured is
:mod:`ijr.probes.measure` (which calls :mod:`ijr.curvature`), when is
:mod:`ijr.probes.schedule`, the phases are :mod:`ijr.probes.arp`.

Step convention (as ``ijr.callbacks``): a probe at step ``t`` measures theta_t, the parameters
after ``t`` updates — at ``on_train_start`` for the first step of a (possibly resumed) run and at
``on_train_batch_end`` afterwards (``global_step`` already incremented). Two-pass methods (SAM,
EJR) restore the unperturbed parameters before their update, so probes see theta_t.

Resume: the callback state (theta_0 for ``dist_from_init``, the warm-start eigenvector, the ARP
state) is part of the Lightning checkpoint. The checkpoint of step ``s`` is written after the
probe of step ``s``, and a resumed run measures step ``s`` again, so the state holds both the
state *before* and *after* the last probe; on resume at ``s`` the "before" state is used when the
last probe was at ``s``. Random draws come from generators seeded by ``(probes.seed, step)``.
Together, a resumed run logs exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from ijr.data.rng import derive_seed
from ijr.methods.base import smoothed_label_entropy
from ijr.metrics_log import log_metrics
from ijr.probes.arp import ARPTracker
from ijr.probes.config import ProbeConfig
from ijr.probes.eos_phase import EOSPhaseTracker
from ijr.probes.examples import (
    EIGVEC_FILE_NAME,
    FILE_NAME,
    MARGINS_DIR,
    LogitEigvecsCSV,
    ProbeExamplesCSV,
    StepArrays,
)
from ijr.probes.measure import ProbeMeasurer, ProbeState
from ijr.probes.schedule import ProbeSchedule
from ijr.probes.trajectory import FILE_NAME as TRAJECTORY_FILE
from ijr.probes.trajectory import TrajectoryFile

log = logging.getLogger("ijr")
STATE_VERSION = 1


def resolve_probe_size(size: int | float | None, train_size: int) -> int:
    """Number of probe examples: a fraction of the training set, a count, or all of it."""
    if size is None:
        return int(train_size)
    if isinstance(size, float):
        return max(1, int(round(size * train_size)))
    if size > train_size:
        raise ValueError(
            f"probes.size={size} exceeds the {train_size} training examples; use a fraction or a smaller count"
        )
    return int(size)


def current_lr(pl_module: pl.LightningModule) -> float:
    """The learning rate eta of the next update (after the scheduler steps taken so far)."""
    scheds = pl_module.lr_schedulers()
    if scheds is None:
        raise ValueError("probes need the module's learning-rate scheduler to read the current eta")
    sched = scheds[0] if isinstance(scheds, list) else scheds
    return float(sched.get_last_lr()[0])


class CurvatureProbes(pl.Callback):
    """Probe the model on schedule (see the module docstring)."""

    def __init__(self, config: ProbeConfig, dm, run_dir: str | Path) -> None:
        self.config = config
        self.dm = dm
        self.run_dir = Path(run_dir)
        self.size = resolve_probe_size(
            config.size, dm.train_size
        )  # fails early on a bad probes.size
        if (
            config.measures("rho_b")
            and config.rho_b_population == "probe_set"
            and not dm.is_full_batch
            and self.size <= dm.batch_size
        ):
            raise ValueError(
                f"probes.rho_b_population=probe_set draws mini-batches of data.batch_size={dm.batch_size} "
                f"from the probe set of {self.size} examples; it needs more examples than that "
                "(raise probes.size or use probes.rho_b_population=train)"
            )
        self.examples_csv = (
            ProbeExamplesCSV(self.run_dir / FILE_NAME) if config.track_examples else None
        )
        self.eigvecs_csv = (
            LogitEigvecsCSV(self.run_dir / EIGVEC_FILE_NAME)
            if config.measures("subspace")
            else None
        )
        self.margins_files = (
            StepArrays(self.run_dir / MARGINS_DIR) if config.measures("margins") else None
        )
        self.trajectory_file = (
            TrajectoryFile(self.run_dir / TRAJECTORY_FILE, config.trajectory_dim)
            if config.measures("trajectory")
            else None
        )
        self.arp = (
            ARPTracker(config.arp.threshold, config.arp.reach_fraction, config.arp.impurity_level)
            if config.arp.enabled
            else None
        )
        self.eos = (
            EOSPhaseTracker(config.eos.loss_tolerance)
            if config.enabled and config.eos.enabled
            else None
        )
        self.schedule: ProbeSchedule | None = None
        self.measurer: ProbeMeasurer | None = None
        self.batches: list | None = None
        self.state = ProbeState()
        self.last_step: int | None = None
        self._before_last: dict | None = None
        self._loaded: dict | None = None

    # ------------------------------------------------------------------ markers
    @property
    def markers(self) -> dict:
        """ARP and EOS-phase markers for ``summary.json`` (empty when neither is tracked)."""
        out = dict(self.arp.markers) if self.arp is not None else {}
        if self.eos is not None:
            out.update(self.eos.markers)
        return out

    # -------------------------------------------------------------- checkpoint
    def _snapshot(self) -> dict:
        """The carried state by reference (tensors are replaced between probes, never mutated)."""
        return {
            "theta0": self.state.theta0,
            "warm_vector": self.state.warm_vector,
            "arp": None if self.arp is None else self.arp.state_dict(),
            "eos": None if self.eos is None else self.eos.state_dict(),
        }

    @staticmethod
    def _to_cpu(snap: dict | None) -> dict | None:
        if snap is None:
            return None
        theta0, warm = snap["theta0"], snap["warm_vector"]
        return {
            "theta0": None if theta0 is None else [t.detach().cpu() for t in theta0],
            "warm_vector": None if warm is None else warm.detach().cpu(),
            "arp": snap["arp"],
            "eos": snap.get("eos"),
        }

    def _restore(self, snap: dict, device: torch.device) -> None:
        theta0 = snap.get("theta0")
        self.state.theta0 = None if theta0 is None else [t.to(device) for t in theta0]
        warm = snap.get("warm_vector")
        self.state.warm_vector = None if warm is None else warm.to(device)
        if self.arp is not None:
            if snap.get("arp") is None:
                raise ValueError(
                    "the checkpoint's probe state has no ARP state; it was written with probes.arp.enabled=false"
                )
            self.arp.load_state_dict(snap["arp"])
        if self.eos is not None:
            if snap.get("eos") is None:
                raise ValueError(
                    "the checkpoint's probe state has no EOS-phase state; it was written with probes.eos.enabled=false"
                )
            self.eos.load_state_dict(snap["eos"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "last_step": self.last_step,
            "before_last": self._to_cpu(self._before_last),
            "after_last": self._to_cpu(self._snapshot()),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("version") != STATE_VERSION:
            raise ValueError(
                f"probe state version {state_dict.get('version')!r} in the checkpoint, expected {STATE_VERSION}"
            )
        self._loaded = state_dict

    # ------------------------------------------------------------------- hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        cfg = self.config
        step = int(trainer.global_step)
        self.schedule = ProbeSchedule(
            total_steps=int(trainer.max_steps),
            every_n_steps=cfg.every_n_steps,
            expensive_every_n_steps=cfg.expensive_every_n_steps,
            at_steps=cfg.at_steps,
            log_spaced=cfg.log_spaced,
        )
        self.measurer = ProbeMeasurer(cfg, num_outputs=int(self.dm.num_classes))
        size, chunk = self.size, cfg.physical_batch_size or self.dm.physical_batch_size
        self.batches = [
            (x.to(pl_module.device), y.to(pl_module.device))
            for x, y in self.dm.probe_batches(size, chunk, cfg.seed)
        ]
        if self._loaded is not None:
            last = self._loaded["last_step"]
            if last is not None and last > step:
                raise ValueError(
                    f"probe state in the checkpoint was measured at step {last}, after the checkpoint step {step}"
                )
            snap = self._loaded["before_last"] if last == step else self._loaded["after_last"]
            self._restore(snap, pl_module.device)
            self.last_step = None if last == step else last
            self._before_last = None
            self._loaded = None
        elif step != 0:
            raise ValueError(
                f"resuming at step {step} but the checkpoint holds no probe state (written without probes?)"
            )
        else:
            self.state.theta0 = [p.detach().clone() for p in pl_module.model.parameters()]
        if trainer.is_global_zero:
            for table in (
                self.examples_csv,
                self.eigvecs_csv,
                self.trajectory_file,
                self.margins_files,
            ):
                if table is not None:
                    table.truncate_from(step)
        log.info(
            "ijr probes: %d examples in chunks of %d; %s", size, chunk, self.schedule.describe()
        )
        self._maybe_measure(trainer, pl_module, step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._maybe_measure(trainer, pl_module, int(trainer.global_step))

    def on_train_end(self, trainer, pl_module) -> None:
        step = int(trainer.global_step)
        if self.config.at_end and self.last_step != step:
            self._measure(trainer, pl_module, step, expensive=True)

    # ---------------------------------------------------------------- measuring
    def _maybe_measure(self, trainer, pl_module, step: int) -> None:
        assert self.schedule is not None
        final = self.config.at_end and self.schedule.is_final_step(step)
        if final or self.schedule.is_probe_step(step):
            self._measure(
                trainer, pl_module, step, expensive=final or self.schedule.is_expensive_step(step)
            )

    def _rho_b_sets(self, step: int, device: torch.device) -> tuple[list, list]:
        """(reference, mini-batches) for rho_B = ||<g>||^2 / E||<g>_B||^2 (Proposition 5.2):
        ``<g>`` is the mean gradient over the reference set and the K mini-batches of the
        training batch size are drawn from that same set, each without replacement, with a
        generator seeded by (probes.seed, step). ``probes.rho_b_population`` picks the set:
        ``train`` — the whole (unaugmented) training set, in physical chunks, as the proposition
        defines it; ``probe_set`` — the probe set (cheaper; rho_B of the probe set taken as the
        dataset, which over-estimates rho_B unless the probe set is much larger than B).

        Both must come from one set: with <g> over a probe set smaller than B and the mini-batches
        from the training set, ||<g>||^2 carries more sampling noise than E||<g>_B||^2 and the
        ratio exceeds 1 (measured: up to 3.1 with 100 probe examples and B = 128)."""
        gen = torch.Generator(device="cpu").manual_seed(
            derive_seed("probes.rho_b", self.config.seed, step)
        )
        b = self.dm.batch_size
        if self.config.rho_b_population == "train":
            x, y = self.dm.train_x, self.dm.train_y
            chunk = self.config.physical_batch_size or self.dm.physical_batch_size
            reference = [
                (x[i : i + chunk].to(device), y[i : i + chunk].to(device))
                for i in range(0, x.shape[0], chunk)
            ]
        else:
            assert self.batches is not None
            reference = self.batches
            x = torch.cat([bx for bx, _ in self.batches])
            y = torch.cat([by for _, by in self.batches])
        mini = []
        for _ in range(self.config.rho_b_batches):
            idx = torch.randperm(x.shape[0], generator=gen)[:b].to(x.device)
            mini.append((x.index_select(0, idx).to(device), y.index_select(0, idx).to(device)))
        return reference, mini

    def _group_inputs(self, pl_module, step: int, expensive: bool) -> dict:
        """The inputs of the groups that need more than the probe set (``rho_b``, ``gen_gap``; the
        label entropy of paper 002 Fig. 1 for cross-entropy)."""
        cfg, dm = self.config, self.dm
        want_rho = expensive and "rho_b" in cfg.expensive and not dm.is_full_batch
        rho_reference, rho_minibatches = (
            self._rho_b_sets(step, pl_module.device) if want_rho else (None, None)
        )
        want_gap = expensive and "gen_gap" in cfg.expensive
        chunk = cfg.physical_batch_size or dm.physical_batch_size
        return {
            "rho_b_batches": rho_minibatches,
            "rho_b_reference": rho_reference,
            "full_batch": bool(dm.is_full_batch),
            "evaluate": pl_module.evaluate if want_gap else None,
            "test_batches": dm.eval_batches("test", chunk) if want_gap else None,
            "label_entropy": smoothed_label_entropy(pl_module.label_smoothing, dm.num_classes)
            if want_gap and pl_module.loss_name == "cross_entropy"
            else None,
        }

    def _measure(self, trainer, pl_module, step: int, *, expensive: bool) -> None:
        assert self.measurer is not None and self.batches is not None
        before = self._snapshot()
        gen = torch.Generator(device="cpu").manual_seed(
            derive_seed("probes", self.config.seed, step)
        )
        result = self.measurer.measure(
            pl_module.model,
            pl_module.loss_fn,
            self.batches,
            lr=current_lr(pl_module),
            expensive=expensive,
            state=self.state,
            generator=gen,
            **self._group_inputs(pl_module, step, expensive),
        )
        metrics = result.metrics
        if result.warm_vector is not None:
            self.state.warm_vector = result.warm_vector
        if self.arp is not None:
            metrics["arp/phase"] = float(
                self.arp.update(
                    step,
                    sharpness=metrics.get("probe/sharpness"),
                    stability_threshold=metrics.get("probe/stability_threshold"),
                    sgd_threshold=metrics.get("probe/sgd_threshold"),
                    impurity_mean=metrics.get("probe/impurity_mean"),
                    jacobian_norm_sq=metrics.get("probe/jacobian_norm_sq"),
                )
            )
        if self.eos is not None:
            self._track_eos(step, metrics)
        log_metrics(trainer, metrics, step)
        if trainer.is_global_zero:
            self._write_outputs(step, result)
        self._before_last = before
        self.last_step = step

    def _write_outputs(self, step: int, result) -> None:
        """The groups' outputs beyond metrics into their run files (rank 0 only)."""
        if self.examples_csv is not None and result.examples is not None:
            self.examples_csv.append(step, *result.examples)
        if self.eigvecs_csv is not None and result.eigvec_heatmap is not None:
            self.eigvecs_csv.append(step, result.eigvec_heatmap)
        if self.trajectory_file is not None and result.sketch is not None:
            self.trajectory_file.append(step, result.sketch)
        if self.margins_files is not None and result.margins is not None:
            self.margins_files.save(step, result.margins)

    def _track_eos(self, step: int, metrics: dict) -> None:
        """``eos/phase`` (1-4) and ``eos/anomaly`` (paper 004, Figures 1-2) into ``metrics``."""
        assert self.eos is not None
        key = "probe/gram_max" if self.config.eos.sharpness == "gram" else "probe/sharpness"
        phase, anomaly = self.eos.update(
            step,
            sharpness=metrics.get(key),
            threshold=metrics.get("probe/stability_threshold"),
            loss=metrics.get("probe/gram_loss"),
            output_norm=metrics.get("probe/output_layer_norm"),
            d_v1=metrics.get("probe/gram_d_v1"),
            rest_loss=metrics.get("probe/gram_rest_loss"),
        )
        if key in metrics and phase is not None:
            metrics["eos/phase"] = float(phase)
            if anomaly == anomaly:  # not NaN: this probe closes a pair
                metrics["eos/anomaly"] = anomaly


__all__ = ["CurvatureProbes", "current_lr", "resolve_probe_size"]
