"""The ``probes`` config group: the defaults of every key (:class:`ProbeConfig`), parsing and
validation.

One source of defaults: the dataclasses below hold every default and its one-line meaning;
``conf/probes/none.yaml`` is generated from them (``python -m ijr.probes.generate``;
``tests/test_probe_groups.py`` checks it is current) and ``basic.yaml`` / ``all.yaml`` start from
it and state only what differs, so ``ProbeConfig()`` in a notebook and ``probes=none`` on the
command line measure the same. The ``gram`` and ``eos`` sections (paper 004) are not written to
the YAML (so the resolved config, and the run key, of every earlier run stays as it was); an
experiment that uses them states them and every key it leaves out takes the default below.

:func:`parse_probe_config` turns ``cfg.probes`` (a ``DictConfig`` or a dict) into a
:class:`ProbeConfig` and rejects unknown keys and bad values with a one-line ``ValueError``. The
probe group names come from the registry (:mod:`ijr.probes.groups`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ijr.probes import groups as _groups_registry

# The registered group names (ijr.probes.groups) when this module was imported.
CHEAP_GROUPS = _groups_registry.names("cheap")
DEFAULT_CHEAP = _groups_registry.default_cheap()
EXPENSIVE_GROUPS = _groups_registry.names("expensive")
BN_MODES = ("train", "eval")
DTYPES = ("float32", "float64")
EIGEN_METHODS = ("lanczos", "power")
THRESHOLDS = ("sgd", "stability")
RHO_B_POPULATIONS = ("train", "probe_set")
# Sections that exist in Python but are written to conf/probes only by the experiments using them.
NOT_IN_YAML = ("gram", "eos")


def _key(default: Any, doc: str, **kwargs: Any) -> Any:
    """A config field with its default and its one-line meaning (the YAML comment)."""
    if isinstance(default, (list, dict)) or callable(default):
        factory = default if callable(default) else (lambda d=default: type(d)(d))
        return field(default_factory=factory, metadata={"doc": doc}, **kwargs)
    return field(default=default, metadata={"doc": doc}, **kwargs)


@dataclass
class EigenConfig:
    """Top-eigenvalue solver settings (sharpness and Gauss–Newton)."""

    method: str = _key("lanczos", "lanczos | power (cross-check backend)")
    tol: float = _key(
        1e-3,
        "relative accuracy of the eigenvalue (Lanczos stops when its error estimate is below it)",
    )
    max_iter: int = _key(100, "at most this many Hessian(-vector) products per measurement")
    warm_start: bool = _key(
        True,
        "start from the previous probe's eigenvector (false: a fresh seeded random vector each time)",
    )


@dataclass
class JacobianConfig:
    """``||<J>||`` solver settings."""

    method: str = _key(
        "exact",
        "exact (C batched VJPs, then the C x C Gram: all norms exactly) | jvp (Lanczos, one VJP + one JVP per iteration) | algorithm2 (the paper's Algorithm 2, reference)",
    )
    tol: float = _key(1e-3, "relative tolerance of the power iteration on <J>^T <J>")
    max_iter: int = _key(100, "iteration cap of that power iteration")


@dataclass
class ARPConfig:
    """Active Regularization Period (paper 000, Section 5.2, Figure 4)."""

    enabled: bool = _key(
        False, "track phases I/II/III (needs the sharpness, impurity and jacobian groups)"
    )
    threshold: str = _key(
        "sgd",
        "sgd: 2 rho_B / eta (Proposition 5.2; 2 / eta at probes where rho_B is not measured) | stability: 2 / eta",
    )
    reach_fraction: float = _key(
        0.9,
        'the ARP starts when sharpness >= reach_fraction * threshold ("reaches near the threshold")',
    )
    impurity_level: float = _key(
        0.25,
        "it ends at the first later probe where <lambda^(1)> has decreased below this, having been at or above it (Figure 5)",
    )


@dataclass
class GramConfig:
    """Gram-matrix (NTK) probe settings (paper 004; ``ijr.curvature.gram``)."""

    method: str = _key("lanczos", "lanczos (products only) | dense (forms M)")
    tol: float = _key(1e-4, "relative accuracy of lambda_max(M)")
    max_iter: int = _key(200, "at most this many Gram-vector products")
    second: bool = _key(True, "also lambda_2(M) (deflated Lanczos)")
    output_layer: bool = _key(True, "also lambda_max(M_A) of the output layer")
    linear_theory: bool = _key(False, "Section 4's quantities (fc2, linear)")


@dataclass
class EOSConfig:
    """Four-phase EOS tracker settings (paper 004, Section 3.1; ``ijr.probes.eos_phase``)."""

    enabled: bool = _key(
        False, "eos/phase and the phase markers (needs the gram and weights groups)"
    )
    sharpness: str = _key("gram", "gram: Lambda = lambda_max(M) | hessian: probe/sharpness")
    loss_tolerance: float = _key(
        0.0, "Phase IV ends when the loss is back within this of its value before Phase III"
    )


@dataclass
class ProbeConfig:
    """Every key of ``cfg.probes`` with its default (the values of ``probes=none``)."""

    name: str = _key("none", "none | basic | all (which file this is; recorded in the run config)")
    size: int | float | None = _key(
        0.1,
        "probe set, a fixed seeded subset of the TRAINING data (no augmentation): a fraction in (0, 1] (paper App. E.4: 5-25 %), an integer number of examples, or null = the whole training set",
    )
    physical_batch_size: int | None = _key(
        None,
        "chunk size for evaluating the probe set (results are exact sums over chunks); null = data.physical_batch_size",
    )
    seed: int = _key(
        0,
        "seeds the probe subset and every random choice of the probes (own torch.Generator, never the global RNG)",
    )
    every_n_steps: int | None = _key(
        10, "cheap probes at every multiple of this step (0, k, 2k, ...); null = none by cadence"
    )
    expensive_every_n_steps: int | None = _key(
        50,
        "expensive probes at every multiple of this step; null = only at at_steps / log_spaced / the end",
    )
    at_steps: list[int] = _key(
        [], "extra steps with every probe (cheap and expensive), e.g. [0, 1, 2, 5]"
    )
    log_spaced: int | None = _key(
        None,
        "N: every probe at N distinct log-spaced steps over the run (0, ..., last step); null = off",
    )
    at_end: bool = _key(True, "also probe everything at the final step of training")
    cheap: tuple[str, ...] = _key(
        DEFAULT_CHEAP, f"cheap probe groups, drawn from {', '.join(CHEAP_GROUPS)} (README table)"
    )
    expensive: tuple[str, ...] = _key(
        (), f"expensive probe groups, drawn from {', '.join(EXPENSIVE_GROUPS)} (README table)"
    )
    dtype: str = _key(
        "float32",
        "float32 | float64: precision of the probe computations (training is unaffected)",
    )
    bn_mode: str = _key(
        "train",
        "BatchNorm during parameter-curvature probes: train (batch statistics, as paper 002 for the Hessian; running stats are NOT updated) | eval (running stats)",
    )
    io_jacobian_bn_mode: str = _key(
        "eval",
        "BatchNorm during the input-output Jacobian probe: eval (per-example function of the input) | train",
    )
    sharpness: EigenConfig = _key(
        EigenConfig,
        "top-eigenvalue solver for probe/sharpness (largest ALGEBRAIC eigenvalue) and probe/sharpness_gn",
    )
    jacobian: JacobianConfig = _key(
        JacobianConfig, "solver for the ||<J>|| family (probe/jacobian_*)"
    )
    rho_b_batches: int = _key(
        16,
        "K mini-batches of data.batch_size (seeded, unaugmented, each without replacement) estimate E||<g>_B||^2 in rho_B = ||<g>||^2 / E||<g>_B||^2 (Proposition 5.2); full-batch GD logs rho_B = 1 exactly",
    )
    rho_b_population: str = _key(
        "train",
        "the set <g> is the mean gradient over AND the mini-batches are drawn from: train (the whole training set, as Proposition 5.2 defines it; one extra gradient pass over it per expensive probe) | probe_set (cheaper; needs probes.size > data.batch_size and over-estimates rho_B unless the probe set is much larger than B)",
    )
    track_examples: int = _key(
        0,
        "write <run_dir>/probe_examples.csv for this many fixed probe examples (Figure 1 top); 0 = off",
    )
    trajectory_dim: int = _key(
        1024,
        "D of the trajectory group's count sketch S theta (distances kept to about sqrt(2/D) relative error)",
    )
    arp: ARPConfig = _key(
        ARPConfig,
        "Active Regularization Period (Section 5.2, Figure 4): arp/phase and summary markers",
    )
    gram: GramConfig = _key(GramConfig, "the gram group's settings (paper 004)")
    eos: EOSConfig = _key(EOSConfig, "the four EOS phases (paper 004, Section 3.1)")

    @property
    def enabled(self) -> bool:
        return self.name != "none"

    def measures(self, group: str) -> bool:
        """Whether the probe group ``group`` runs (at cheap or at expensive probe steps)."""
        if group not in _groups_registry.GROUPS:
            raise ValueError(f"unknown probe group {group!r}")
        return self.enabled and (group in self.cheap or group in self.expensive)


def _plain(node: Any, what: str) -> dict:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    if isinstance(node, Mapping):
        return dict(node)
    raise ValueError(f"{what} must be a mapping, got {type(node).__name__}")


def _check_keys(raw: dict, cls, prefix: str) -> None:
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; valid: {', '.join(sorted(valid))}"
        )


def _int(key: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"probes.{key} must be an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}"
        )
    return int(value)


def _positive_float(key: str, value: Any, upper: float | None = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or (upper is not None and value > upper)
    ):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ValueError(f"probes.{key} must be a number > 0{bound}, got {value!r}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"probes.{key} must be true or false, got {value!r}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"probes.{key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _groups(key: str, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or any(v not in choices for v in value):
        raise ValueError(
            f"probes.{key} must be a list drawn from [{', '.join(choices)}], got {value!r}"
        )
    if len(set(value)) != len(value):
        raise ValueError(f"probes.{key} lists a group twice: {list(value)!r}")
    return tuple(value)


def _size(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"probes.size must be a fraction in (0, 1], an integer count >= 1 or null, got {value!r}"
        )
    if isinstance(value, float):
        if not 0 < value <= 1:
            raise ValueError(
                f"probes.size as a fraction of the training set must be in (0, 1], got {value!r}"
            )
    elif value < 1:
        raise ValueError(f"probes.size as a number of examples must be >= 1, got {value!r}")
    return value


def _section(raw: dict, key: str, cls) -> tuple[dict, Any]:
    """``raw[key]`` as a plain dict with its keys checked, and the section's defaults."""
    sub = _plain(raw.get(key) or {}, f"probes.{key}")
    _check_keys(sub, cls, f"probes.{key}.")
    return sub, cls()


def _schedule_keys(raw: dict, pc: ProbeConfig) -> None:
    """When the probes run (``ijr.probes.schedule``) and which groups."""
    pc.every_n_steps = _int(
        "every_n_steps", raw.get("every_n_steps", pc.every_n_steps), 1, allow_none=True
    )
    pc.expensive_every_n_steps = _int(
        "expensive_every_n_steps",
        raw.get("expensive_every_n_steps", pc.expensive_every_n_steps),
        1,
        allow_none=True,
    )
    at_steps = raw.get("at_steps") or []
    if not isinstance(at_steps, (list, tuple)):
        raise ValueError(f"probes.at_steps must be a list of steps, got {at_steps!r}")
    pc.at_steps = [_int("at_steps[]", s, 0) for s in at_steps]  # type: ignore[misc]
    pc.log_spaced = _int("log_spaced", raw.get("log_spaced", pc.log_spaced), 2, allow_none=True)
    pc.at_end = _bool("at_end", raw.get("at_end", pc.at_end))
    names = _groups_registry.names  # read at call time: every registered group is valid
    pc.cheap = _groups("cheap", raw.get("cheap", list(pc.cheap)), names("cheap"))
    pc.expensive = _groups(
        "expensive", raw.get("expensive", list(pc.expensive)), names("expensive")
    )


def _measurement_keys(raw: dict, pc: ProbeConfig) -> None:
    """How the probes measure: probe set, precision, BatchNorm modes, rho_B, tracked outputs."""
    pc.size = _size(raw.get("size", pc.size))
    pc.physical_batch_size = _int(
        "physical_batch_size", raw.get("physical_batch_size", pc.physical_batch_size), 1, True
    )
    pc.seed = _int("seed", raw.get("seed", pc.seed), 0)  # type: ignore[assignment]
    pc.trajectory_dim = _int("trajectory_dim", raw.get("trajectory_dim", pc.trajectory_dim), 1)  # type: ignore[assignment]
    pc.dtype = _choice("dtype", raw.get("dtype", pc.dtype), DTYPES)
    pc.bn_mode = _choice("bn_mode", raw.get("bn_mode", pc.bn_mode), BN_MODES)
    pc.io_jacobian_bn_mode = _choice(
        "io_jacobian_bn_mode", raw.get("io_jacobian_bn_mode", pc.io_jacobian_bn_mode), BN_MODES
    )
    pc.rho_b_batches = _int("rho_b_batches", raw.get("rho_b_batches", pc.rho_b_batches), 0)  # type: ignore[assignment]
    pc.rho_b_population = _choice(
        "rho_b_population", raw.get("rho_b_population", pc.rho_b_population), RHO_B_POPULATIONS
    )
    pc.track_examples = _int("track_examples", raw.get("track_examples", pc.track_examples), 0)  # type: ignore[assignment]


def _parse_sharpness(raw: dict) -> EigenConfig:
    eig, d = _section(raw, "sharpness", EigenConfig)
    return EigenConfig(
        method=_choice("sharpness.method", eig.get("method", d.method), EIGEN_METHODS),
        tol=_positive_float("sharpness.tol", eig.get("tol", d.tol), upper=1.0),
        max_iter=_int("sharpness.max_iter", eig.get("max_iter", d.max_iter), 1),  # type: ignore[arg-type]
        warm_start=_bool("sharpness.warm_start", eig.get("warm_start", d.warm_start)),
    )


def _parse_jacobian(raw: dict) -> JacobianConfig:
    jac, d = _section(raw, "jacobian", JacobianConfig)
    method = jac.get("method", d.method)
    if not isinstance(method, str) or not method:
        raise ValueError(f"probes.jacobian.method must be a method name, got {method!r}")
    return JacobianConfig(
        method=method,
        tol=_positive_float("jacobian.tol", jac.get("tol", d.tol), upper=1.0),
        max_iter=_int("jacobian.max_iter", jac.get("max_iter", d.max_iter), 1),  # type: ignore[arg-type]
    )


def _parse_arp(raw: dict) -> ARPConfig:
    arp, d = _section(raw, "arp", ARPConfig)
    return ARPConfig(
        enabled=_bool("arp.enabled", arp.get("enabled", d.enabled)),
        threshold=_choice("arp.threshold", arp.get("threshold", d.threshold), THRESHOLDS),
        reach_fraction=_positive_float(
            "arp.reach_fraction", arp.get("reach_fraction", d.reach_fraction), upper=1.0
        ),
        impurity_level=_positive_float(
            "arp.impurity_level", arp.get("impurity_level", d.impurity_level), upper=1.0
        ),
    )


def parse_probe_config(node: Any) -> ProbeConfig:
    """Validate ``cfg.probes``; every key missing from ``node`` takes the default above."""
    raw = _plain(node, "probes config")
    _check_keys(raw, ProbeConfig, "probes.")
    pc = ProbeConfig()
    pc.name = _choice("name", raw.get("name", pc.name), ("none", "basic", "all"))
    _measurement_keys(raw, pc)
    _schedule_keys(raw, pc)
    pc.sharpness, pc.jacobian = _parse_sharpness(raw), _parse_jacobian(raw)
    pc.arp, pc.gram, pc.eos = _parse_arp(raw), _parse_gram(raw), _parse_eos(raw)
    if pc.enabled:
        _check_requirements(pc)
    return pc


def _require(pc: ProbeConfig, needed: list[str], what: str) -> None:
    """One-line error naming the probe groups ``what`` needs that the config does not enable."""
    missing = [g for g in needed if g not in pc.cheap and g not in pc.expensive]
    if missing:
        raise ValueError(
            f"{what} needs the probe group(s) {', '.join(missing)} (probes.cheap / probes.expensive)"
        )


def _check_requirements(pc: ProbeConfig) -> None:
    """What the enabled groups and trackers need (group ``needs`` from the registry)."""
    for name in (*pc.cheap, *pc.expensive):
        _require(pc, list(_groups_registry.GROUPS[name].needs), f"the probe group {name}")
    if pc.eos.enabled:
        needed = ["gram", "weights"] + (["sharpness"] if pc.eos.sharpness == "hessian" else [])
        _require(pc, needed, "probes.eos.enabled=true")
    if "rho_b" in pc.expensive and pc.rho_b_batches < 2:
        raise ValueError(
            f"probes.expensive lists rho_b but probes.rho_b_batches={pc.rho_b_batches}; it needs >= 2 mini-batches"
        )
    if pc.arp.enabled:
        _require(pc, ["sharpness", "impurity", "jacobian"], "probes.arp.enabled=true")
    if pc.track_examples and "impurity" not in pc.cheap:
        raise ValueError("probes.track_examples > 0 needs the 'impurity' group in probes.cheap")


def _parse_gram(raw: dict) -> GramConfig:
    gram, d = _section(raw, "gram", GramConfig)
    return GramConfig(
        method=_choice("gram.method", gram.get("method", d.method), ("lanczos", "dense")),
        tol=_positive_float("gram.tol", gram.get("tol", d.tol), upper=1.0),
        max_iter=_int("gram.max_iter", gram.get("max_iter", d.max_iter), 1),  # type: ignore[arg-type]
        second=_bool("gram.second", gram.get("second", d.second)),
        output_layer=_bool("gram.output_layer", gram.get("output_layer", d.output_layer)),
        linear_theory=_bool("gram.linear_theory", gram.get("linear_theory", d.linear_theory)),
    )


def _parse_eos(raw: dict) -> EOSConfig:
    eos, d = _section(raw, "eos", EOSConfig)
    tolerance = eos.get("loss_tolerance", d.loss_tolerance)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"probes.eos.loss_tolerance must be a number >= 0, got {tolerance!r}")
    return EOSConfig(
        enabled=_bool("eos.enabled", eos.get("enabled", d.enabled)),
        sharpness=_choice("eos.sharpness", eos.get("sharpness", d.sharpness), ("gram", "hessian")),
        loss_tolerance=float(tolerance),
    )


# ------------------------------------------------------------------ conf/probes/none.yaml
YAML_FILE = Path(__file__).resolve().parents[3] / "conf" / "probes" / "none.yaml"
YAML_HEADER = """\
# GENERATED from ijr.probes.config.ProbeConfig (the one source of the probe defaults) by
# `python -m ijr.probes.generate`; do not edit by hand (tests/test_probe_groups.py checks it).
# No curvature probes run with name none: only train/test loss and accuracy are logged. Every key
# is listed, with its default and meaning, so that an override such as `probes.every_n_steps=5`
# is valid whatever probe set is chosen; conf/probes/basic.yaml and all.yaml start from this file
# and state what differs. Probe groups and their metric names: README "Metric names"
# (ijr.probes.groups). Math: ijr.curvature; scheduling and logging: ijr.probes. The gram and eos
# sections (paper 004) are set by the experiments that use them (defaults: GramConfig, EOSConfig).
"""


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _yaml_lines(obj: Any, indent: str = "") -> list[str]:
    lines = []
    for f in fields(obj):
        if not indent and f.name in NOT_IN_YAML:
            continue
        value, doc = getattr(obj, f.name), f.metadata["doc"]
        if hasattr(value, "__dataclass_fields__"):
            lines.append(f"{indent}{f.name}:".ljust(27) + f"# {doc}")
            lines += _yaml_lines(value, indent + "  ")
        else:
            lines.append(f"{indent}{f.name}: {_yaml_value(value)}".ljust(26) + f" # {doc}")
    return lines


def defaults_yaml() -> str:
    """The text of ``conf/probes/none.yaml``: every key of :class:`ProbeConfig` but
    :data:`NOT_IN_YAML`, at its default, each with its meaning as the comment."""
    return YAML_HEADER + "\n".join(_yaml_lines(ProbeConfig())) + "\n"


__all__ = [
    "ARPConfig",
    "EOSConfig",
    "GramConfig",
    "CHEAP_GROUPS",
    "EXPENSIVE_GROUPS",
    "EigenConfig",
    "JacobianConfig",
    "ProbeConfig",
    "defaults_yaml",
    "parse_probe_config",
]
