"""The ``probes`` config group (``conf/probes/{none,basic,all}.yaml``): parsing and validation.

:func:`parse_probe_config` turns ``cfg.probes`` (a ``DictConfig`` or a dict) into a
:class:`ProbeConfig` and rejects unknown keys and bad values with a one-line ``ValueError``.
See ``conf/probes/all.yaml`` for what each key means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Metric groups. Cheap ones run at every probe step, expensive ones at expensive probe steps.
CHEAP_GROUPS = ("weights", "logits", "impurity", "jacobian", "trajectory")
DEFAULT_CHEAP = ("weights", "logits", "impurity", "jacobian")
EXPENSIVE_GROUPS = (
    "sharpness",
    "gauss_newton",
    "rho_b",
    "io_jacobian",
    "gen_gap",
    "subspace",
    "margins",
    "gram",
)
BN_MODES = ("train", "eval")
DTYPES = ("float32", "float64")
EIGEN_METHODS = ("lanczos", "power")
THRESHOLDS = ("sgd", "stability")
RHO_B_POPULATIONS = ("train", "probe_set")


@dataclass
class EigenConfig:
    """Top-eigenvalue solver settings (sharpness and Gauss–Newton)."""

    method: str = "lanczos"
    tol: float = 1e-3
    max_iter: int = 100
    warm_start: bool = True


@dataclass
class JacobianConfig:
    """``||<J>||`` solver settings."""

    method: str = "exact"
    tol: float = 1e-3
    max_iter: int = 100


@dataclass
class ARPConfig:
    enabled: bool = False
    threshold: str = "sgd"
    reach_fraction: float = 0.9
    impurity_level: float = 0.25


@dataclass
class GramConfig:
    """Gram-matrix (NTK) probe settings (paper 004; ``ijr.curvature.gram``)."""

    method: str = "lanczos"
    tol: float = 1e-4
    max_iter: int = 200
    second: bool = True
    output_layer: bool = True
    linear_theory: bool = False


@dataclass
class EOSConfig:
    """Four-phase EOS tracker settings (paper 004, Section 3.1; ``ijr.probes.eos_phase``)."""

    enabled: bool = False
    sharpness: str = "gram"
    loss_tolerance: float = 0.0


@dataclass
class ProbeConfig:
    name: str = "none"
    size: int | float | None = 0.1
    physical_batch_size: int | None = None
    seed: int = 0
    every_n_steps: int | None = 10
    expensive_every_n_steps: int | None = 50
    at_steps: list[int] = field(default_factory=list)
    log_spaced: int | None = None
    at_end: bool = True
    cheap: tuple[str, ...] = DEFAULT_CHEAP
    expensive: tuple[str, ...] = ()
    dtype: str = "float32"
    bn_mode: str = "train"
    io_jacobian_bn_mode: str = "eval"
    sharpness: EigenConfig = field(default_factory=EigenConfig)
    jacobian: JacobianConfig = field(default_factory=JacobianConfig)
    rho_b_batches: int = 8
    rho_b_population: str = "train"
    track_examples: int = 0
    trajectory_dim: int = 1024
    arp: ARPConfig = field(default_factory=ARPConfig)
    gram: GramConfig = field(default_factory=GramConfig)
    eos: EOSConfig = field(default_factory=EOSConfig)

    @property
    def enabled(self) -> bool:
        return self.name != "none"


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


def parse_probe_config(node: Any) -> ProbeConfig:
    """Validate ``cfg.probes``; every key missing from ``node`` takes the default above."""
    raw = _plain(node, "probes config")
    _check_keys(raw, ProbeConfig, "probes.")
    pc = ProbeConfig()
    pc.name = _choice("name", raw.get("name", "none"), ("none", "basic", "all"))
    size = raw.get("size", pc.size)
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise ValueError(
                f"probes.size must be a fraction in (0, 1], an integer count >= 1 or null, got {size!r}"
            )
        if isinstance(size, float):
            if not 0 < size <= 1:
                raise ValueError(
                    f"probes.size as a fraction of the training set must be in (0, 1], got {size!r}"
                )
        elif size < 1:
            raise ValueError(f"probes.size as a number of examples must be >= 1, got {size!r}")
    pc.size = size
    pc.physical_batch_size = _int(
        "physical_batch_size", raw.get("physical_batch_size"), 1, allow_none=True
    )
    pc.seed = _int("seed", raw.get("seed", pc.seed), 0)  # type: ignore[assignment]
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
    pc.log_spaced = _int("log_spaced", raw.get("log_spaced"), 2, allow_none=True)
    pc.at_end = _bool("at_end", raw.get("at_end", pc.at_end))
    pc.cheap = _groups("cheap", raw.get("cheap", list(pc.cheap)), CHEAP_GROUPS)
    pc.expensive = _groups("expensive", raw.get("expensive", list(pc.expensive)), EXPENSIVE_GROUPS)
    pc.trajectory_dim = _int("trajectory_dim", raw.get("trajectory_dim", pc.trajectory_dim), 1)  # type: ignore[assignment]
    pc.dtype = _choice("dtype", raw.get("dtype", pc.dtype), DTYPES)
    pc.bn_mode = _choice("bn_mode", raw.get("bn_mode", pc.bn_mode), BN_MODES)
    pc.io_jacobian_bn_mode = _choice(
        "io_jacobian_bn_mode", raw.get("io_jacobian_bn_mode", pc.io_jacobian_bn_mode), BN_MODES
    )

    eig = _plain(raw.get("sharpness") or {}, "probes.sharpness")
    _check_keys(eig, EigenConfig, "probes.sharpness.")
    pc.sharpness = EigenConfig(
        method=_choice("sharpness.method", eig.get("method", "lanczos"), EIGEN_METHODS),
        tol=_positive_float("sharpness.tol", eig.get("tol", 1e-3), upper=1.0),
        max_iter=_int("sharpness.max_iter", eig.get("max_iter", 100), 1),  # type: ignore[arg-type]
        warm_start=_bool("sharpness.warm_start", eig.get("warm_start", True)),
    )
    jac = _plain(raw.get("jacobian") or {}, "probes.jacobian")
    _check_keys(jac, JacobianConfig, "probes.jacobian.")
    pc.jacobian = JacobianConfig(
        method=jac.get("method", "exact"),
        tol=_positive_float("jacobian.tol", jac.get("tol", 1e-3), upper=1.0),
        max_iter=_int("jacobian.max_iter", jac.get("max_iter", 100), 1),  # type: ignore[arg-type]
    )
    if not isinstance(pc.jacobian.method, str) or not pc.jacobian.method:
        raise ValueError(
            f"probes.jacobian.method must be a method name, got {pc.jacobian.method!r}"
        )
    pc.rho_b_batches = _int("rho_b_batches", raw.get("rho_b_batches", pc.rho_b_batches), 0)  # type: ignore[assignment]
    pc.rho_b_population = _choice(
        "rho_b_population", raw.get("rho_b_population", pc.rho_b_population), RHO_B_POPULATIONS
    )
    pc.track_examples = _int("track_examples", raw.get("track_examples", pc.track_examples), 0)  # type: ignore[assignment]

    arp = _plain(raw.get("arp") or {}, "probes.arp")
    _check_keys(arp, ARPConfig, "probes.arp.")
    pc.arp = ARPConfig(
        enabled=_bool("arp.enabled", arp.get("enabled", False)),
        threshold=_choice("arp.threshold", arp.get("threshold", "sgd"), THRESHOLDS),
        reach_fraction=_positive_float(
            "arp.reach_fraction", arp.get("reach_fraction", 0.9), upper=1.0
        ),
        impurity_level=_positive_float(
            "arp.impurity_level", arp.get("impurity_level", 0.25), upper=1.0
        ),
    )

    pc.gram, pc.eos = _parse_gram(raw), _parse_eos(raw)
    if pc.enabled:
        _check_eos_groups(pc)
        if "rho_b" in pc.expensive and pc.rho_b_batches < 2:
            raise ValueError(
                f"probes.expensive lists rho_b but probes.rho_b_batches={pc.rho_b_batches}; it needs >= 2 mini-batches"
            )
        if pc.arp.enabled:
            missing = [
                g
                for g, lst in (
                    ("sharpness", pc.expensive),
                    ("impurity", pc.cheap),
                    ("jacobian", pc.cheap),
                )
                if g not in lst
            ]
            if missing:
                raise ValueError(
                    f"probes.arp.enabled=true needs the probe group(s) {', '.join(missing)} (probes.cheap / probes.expensive)"
                )
        if pc.track_examples and "impurity" not in pc.cheap:
            raise ValueError("probes.track_examples > 0 needs the 'impurity' group in probes.cheap")
    return pc


def _parse_gram(raw: dict) -> GramConfig:
    gram = _plain(raw.get("gram") or {}, "probes.gram")
    _check_keys(gram, GramConfig, "probes.gram.")
    return GramConfig(
        method=_choice("gram.method", gram.get("method", "lanczos"), ("lanczos", "dense")),
        tol=_positive_float("gram.tol", gram.get("tol", 1e-4), upper=1.0),
        max_iter=_int("gram.max_iter", gram.get("max_iter", 200), 1),  # type: ignore[arg-type]
        second=_bool("gram.second", gram.get("second", True)),
        output_layer=_bool("gram.output_layer", gram.get("output_layer", True)),
        linear_theory=_bool("gram.linear_theory", gram.get("linear_theory", False)),
    )


def _parse_eos(raw: dict) -> EOSConfig:
    eos = _plain(raw.get("eos") or {}, "probes.eos")
    _check_keys(eos, EOSConfig, "probes.eos.")
    tolerance = eos.get("loss_tolerance", 0.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"probes.eos.loss_tolerance must be a number >= 0, got {tolerance!r}")
    return EOSConfig(
        enabled=_bool("eos.enabled", eos.get("enabled", False)),
        sharpness=_choice("eos.sharpness", eos.get("sharpness", "gram"), ("gram", "hessian")),
        loss_tolerance=float(tolerance),
    )


def _check_eos_groups(pc: ProbeConfig) -> None:
    """The EOS phases need the Gram group (loss, |D^T v_1|, Lambda = lambda_max(M)), the
    weights group (||A||) and, with eos.sharpness=hessian, the sharpness group."""
    if not pc.eos.enabled:
        return
    needed = [("gram", pc.expensive), ("weights", pc.cheap)]
    if pc.eos.sharpness == "hessian":
        needed.append(("sharpness", pc.expensive))
    missing = [g for g, lst in needed if g not in lst]
    if missing:
        raise ValueError(
            f"probes.eos.enabled=true needs the probe group(s) {', '.join(missing)} (probes.cheap / probes.expensive)"
        )


__all__ = [
    "ARPConfig",
    "EOSConfig",
    "GramConfig",
    "CHEAP_GROUPS",
    "EXPENSIVE_GROUPS",
    "EigenConfig",
    "JacobianConfig",
    "ProbeConfig",
    "parse_probe_config",
]
