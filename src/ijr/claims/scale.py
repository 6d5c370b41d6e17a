"""Per-experiment scale overrides of a profile (``profile.overrides``, filled from an experiment's
``cpu_scale.overrides`` block by ``conf/profile/cpu.yaml``).

The cpu profile runs the same code as the paper profile at a smaller scale; where a cap on the
training-set size and step count is not enough (a smaller model, full-batch GD, a larger learning
rate so that 2/eta is reached within the budget), the experiment names the changed keys there.
They are merged into the composed config before the run key is computed, so the saved
``.hydra/config.yaml`` says what actually ran. To change one on the command line, override the
block itself (``cpu_scale.overrides.optim.lr=0.2``, ``cpu_scale.max_steps=50``), as for
``quick_scale``.
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf, open_dict


def apply_scale_overrides(cfg: DictConfig) -> DictConfig:
    """Merge ``profile.overrides`` (a nested mapping of config keys) into ``cfg`` in place and
    return it. ``profile.gpu_scale`` true is refused (such an experiment is not run in this
    profile; its claims report ``not run``), and so is ``profile.runs_of`` (the experiment's
    figure and claims use another experiment's runs at this scale)."""
    prof = cfg.get("profile") or {}
    if prof.get("gpu_scale"):
        raise ValueError(
            f"experiment '{cfg.get('experiment_name')}' is marked GPU-scale for "
            f"profile={prof.get('name')} ({prof.get('name')}_scale.gpu_scale: true); "
            "run it with profile=paper"
        )
    if prof.get("runs_of"):
        raise ValueError(
            f"at profile={prof.get('name')} the claims of '{cfg.get('experiment_name')}' are checked "
            f"on the runs of experiment={prof.get('runs_of')} ({prof.get('name')}_scale.runs_of); "
            f"run that one"
        )
    overrides = prof.get("overrides")
    if overrides is None:
        return cfg
    if not isinstance(overrides, Mapping):
        raise ValueError(f"profile.overrides must be a mapping of config keys, got {overrides!r}")
    plain = OmegaConf.to_container(overrides, resolve=True)
    with open_dict(cfg):
        merged = OmegaConf.merge(cfg, plain)
    for key in plain:
        with open_dict(cfg):
            cfg[key] = merged[key]
    return cfg
