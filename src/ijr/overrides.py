"""Command-line overrides checked before Hydra composes them, so a mistake is one line naming the
key and the valid names (Hydra's own errors are 7-22 lines) and exits 2.

* ``group=choice`` (``model=nosuch``, also in sweeps ``model=a,b``): the choice must be a file
  of ``conf/<group>/`` (or ``null``);
* ``a.b=v`` (``optim.lrr=0.1``): ``a.b`` must be a key of the composed config;
* ``+a.b=v`` / ``++a.b=v``: adding a key is allowed only into a mapping that is empty by design
  (``callbacks``, ``model.kwargs`` ...); ``+foo=1`` is refused rather than silently changing the
  run key.

``hydra...`` overrides, ``@package`` forms and deletions are left to Hydra.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def _choices(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def _values(override) -> list[str]:
    if override.is_sweep_override():
        try:
            return [str(v) for v in override.sweep_string_iterator()]
        except Exception:  # noqa: BLE001 - glob()/range sweeps: Hydra expands and checks them
            return []
    return [override.get_value_element_as_str()]


def _first_values(overrides) -> list[str]:
    """The overrides with every sweep replaced by its first value (to compose one config)."""
    out = []
    for o in overrides:
        values = _values(o) or [None]
        prefix = "++" if o.is_force_add() else "+" if o.is_add() else ""
        if values[0] is not None:
            out.append(f"{prefix}{o.key_or_group}={values[0]}")
    return out


def _check_group(conf_dir: Path, override) -> str | None:
    group = override.key_or_group
    choices = _choices(conf_dir, group)
    for value in _values(override):
        if value not in choices and value != "null":
            return (
                f"unknown {group} '{value}' ({group}={value}); valid {group} choices: "
                f"{', '.join(choices)}"
            )
    return None


def _check_added_key(cfg: DictConfig, key: str) -> str | None:
    """``+key``: the first part of ``key`` that does not exist yet must go into a mapping that
    is empty by design (``callbacks``, ``model.kwargs``), or the key already exists."""
    parts = key.split(".")
    node: object = cfg
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None  # inside a value the config does not describe further: Hydra decides
        if part not in node:
            known = sorted(str(k) for k in node.keys())
            if not known:
                return None
            where = ".".join(parts[:depth]) or "the config"
            return (
                f"unknown key '{key}' (+{key}=...): the config has no such key; keys of "
                f"{where}: {', '.join(known)}"
            )
        node = node[part]
    return None


def _check_key(cfg: DictConfig, override) -> str | None:
    key = override.key_or_group
    if override.is_add() or override.is_force_add():
        return _check_added_key(cfg, key)
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    where = parent_key or "the config"
    if not isinstance(parent, DictConfig):
        return f"unknown key '{key}' ({key}=...): {where} is not a group of settings"
    known = sorted(str(k) for k in parent.keys())
    if leaf in known:
        return None
    return f"unknown key '{key}' ({key}=...); keys of {where}: {', '.join(known)}"


def check_overrides(args: list[str], conf_dir: Path, config_name: str = "train") -> str | None:
    """The first problem with the overrides among ``args`` (one line), or ``None``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    texts = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(texts)
    except Exception:  # noqa: BLE001 - a syntax error: Hydra's message says where
        return None
    mine = [
        o
        for o in parsed
        if not o.key_or_group.startswith("hydra") and o.package is None and not o.is_delete()
    ]
    groups = [o for o in mine if (conf_dir / o.key_or_group).is_dir()]
    for override in groups:
        problem = _check_group(conf_dir, override)
        if problem:
            return problem
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=_first_values(groups))
    for override in mine:
        if override not in groups:
            problem = _check_key(cfg, override)
            if problem:
                return problem
    return None
