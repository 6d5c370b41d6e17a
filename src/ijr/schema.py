"""The one validation layer of the config groups ``method``, ``adversary``, ``trainer`` and ``data``.

Each group has a dataclass schema: its field defaults are *the* Python defaults (constructors and
``train(cfg)`` read them from here), the group's YAML under ``conf/<group>/`` carries the same
values with a comment on every key, and ``tests/test_config_schema.py`` checks, for every file of
every group, that the composed YAML equals the schema's defaults. A field's ``metadata["check"]``
turns a raw value into the validated one or raises :class:`SettingError` with one line naming
the key, what it must be and what it got.

:func:`parse_settings` is the only entry: unknown keys are rejected (one line listing the valid
keys), missing keys take the schema's default, every given key passes its check, then the
schema's optional ``cross_check()`` runs the checks between keys.

Why not Hydra's ``ConfigStore`` (typed nodes in the defaults list)? A typed node converts what it
holds (an experiment's ``rho: 4`` becomes ``4.0``), so the resolved config -- and with it every
existing run key (:mod:`ijr.rundir`) -- would change; validating the composed, untouched config
against the same dataclass keeps the keys and gives the same guarantees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")
Check = Callable[[str, Any], Any]


class SettingError(ValueError):
    """A bad config value or an unknown key: one line, exit code 2 from ``ijr-train``."""


# ------------------------------------------------------------------------- fields
def setting(default: Any = dataclasses.MISSING, check: Check | None = None, *, factory=None):
    """A schema field with its default (or ``factory`` for a mutable one) and its check."""
    meta = {"check": check}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def defaults(schema: type) -> dict[str, Any]:
    """The schema's default for every field (plain dict, lists for tuples)."""
    out = {}
    for f in dataclasses.fields(schema):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def keys(schema: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(schema))


# -------------------------------------------------------------------------- parse
def unknown_keys_error(
    group: str, unknown: Iterable[str], valid: Iterable[str], label: str | None = None
) -> SettingError:
    unknown, valid = sorted(unknown), sorted(valid)
    return SettingError(
        f"unknown {group} key(s) {', '.join(unknown)}; valid keys for {label or group}: "
        f"{', '.join(valid) or '(none)'}; remove or rename the key"
    )


def parse_settings(
    schema: type[T],
    raw: Mapping[str, Any],
    group: str,
    *,
    ignore: Iterable[str] = (),
    label: str | None = None,
) -> T:
    """``raw`` (a plain mapping of one group, ``ignore``: keys that are not settings, e.g.
    ``name``) checked against ``schema``; ``label`` names the choice in the unknown-key error
    (``method=sam``). A ``DictConfig`` is resolved to plain values first. See the module
    docstring."""
    if isinstance(raw, DictConfig):
        raw = OmegaConf.to_container(raw, resolve=True)
    raw = {k: v for k, v in raw.items() if k not in set(ignore)}
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise unknown_keys_error(group, unknown, fields, label)
    values = {}
    for key, value in raw.items():
        check = fields[key].metadata.get("check")
        values[key] = check(f"{group}.{key}", value) if check is not None else value
    instance = schema(**values)
    cross_check = getattr(instance, "cross_check", None)
    if cross_check is not None:
        cross_check()
    return instance


# ------------------------------------------------------------------------- checks
def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def nonnegative_float(key: str, value: Any) -> float:
    """A finite number >= 0 (as a float)."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise SettingError(f"{key} must be a finite number >= 0, got {value!r}")
    return float(value)


def at_least_zero(key: str, value: Any) -> float:
    """A number >= 0, kept as given (``adversary.eps`` / ``alpha`` / ``beta``)."""
    if not _is_number(value) or not float(value) >= 0:
        raise SettingError(f"{key} must be >= 0, got {value}")
    return value


def positive_int(key: str, value: Any) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError(f"{key} must be an integer >= 1, got {value!r}")
    return int(value)


def integer(minimum: int | None = None, allow_none: bool = False) -> Check:
    """An integer (>= ``minimum``), or null if ``allow_none``."""

    def check(key: str, value: Any) -> int | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(
                f"{key} must be an integer{' or null' if allow_none else ''}, got {value!r}"
            )
        if minimum is not None and value < minimum:
            raise SettingError(f"{key} must be >= {minimum}, got {value}")
        return int(value)

    return check


def count_or_null(key: str, value: Any) -> int | None:
    """A step count: an integer >= 1 or null."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SettingError(f"{key} must be an integer >= 1 (or null), got {value!r}")
    return value


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"{key} must be true or false, got {value!r}")
    return value


def one_of(*choices: Any, sep: str = "; got") -> Check:
    """One of ``choices``."""

    def check(key: str, value: Any) -> Any:
        if value not in choices:
            raise SettingError(
                f"{key} must be one of {', '.join(map(str, choices))}{sep} {value!r}"
            )
        return value

    return check


def text(allow_none: bool = False) -> Check:
    """A non-empty string (a path), or null if ``allow_none``."""

    def check(key: str, value: Any) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            raise SettingError(
                f"{key} must be a non-empty path string{' or null' if allow_none else ''}, "
                f"got {value!r}"
            )
        return value

    return check


def anything(key: str, value: Any) -> Any:
    """No check (a value another layer checks: Lightning's accelerator, precision ...)."""
    return value


__all__ = [
    "SettingError",
    "anything",
    "at_least_zero",
    "boolean",
    "count_or_null",
    "defaults",
    "integer",
    "keys",
    "nonnegative_float",
    "one_of",
    "parse_settings",
    "positive_int",
    "setting",
    "text",
    "unknown_keys_error",
]
