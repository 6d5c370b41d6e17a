"""The ``data`` config group: its schema and the parsing of ``conf/data/<name>.yaml``.

:class:`DataConfig` is the schema (:mod:`ijr.schema`): each field's default is the value of the
YAML files (``tests/test_config_schema.py`` checks every file) and its check turns the raw value
into the validated one. :func:`parse_data_config` turns a ``DictConfig`` or a plain dict into a
:class:`DataConfig`, filling every key that is not given with its default and rejecting unknown
keys, keys that the chosen dataset does not use, and bad values with a one-line ``ValueError``.
Checks that need the data itself (subset larger than the dataset, batch size larger than the
training set, class indices out of range) happen in ``TensorDataModule.setup``.

To add a key: a field below (default + check), its name in :data:`COMMON_KEYS` or the dataset's
:data:`DATASET_KEYS`, and the key with a comment in ``conf/data/*.yaml``; checks between keys go
in :meth:`DataConfig.cross_check`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from ijr.schema import SettingError, boolean, integer, one_of, parse_settings, setting, text

DATASETS: tuple[str, ...] = (
    "cifar10",
    "cifar100",
    "mnist",
    "imagefolder",
    "digits",
    "synthetic",
    "points",
)

SUBSET_MODES = ("first", "balanced")
TASKS = ("classification", "two_class_mse", "regression")
TARGETS = ("index", "onehot")
DTYPES = ("float32", "float64")

# Keys every dataset accepts.
COMMON_KEYS = (
    "name",
    "subset",
    "subset_mode",
    "subset_seed",
    "test_subset",
    "classes",
    "task",
    "targets",
    "standardize",
    "input_scale",
    "augment",
    "augment_p",
    "mixup_beta",
    "batch_size",
    "physical_batch_size",
    "drop_last",
    "dtype",
)
# Extra keys, per dataset (a key outside COMMON_KEYS + these is an error for that dataset).
DATASET_KEYS: dict[str, tuple[str, ...]] = {
    "cifar10": ("root", "download", "archive", "cache"),
    "cifar100": ("root", "download"),
    "mnist": ("root", "download"),
    "imagefolder": ("root", "image_size", "channels", "cache"),
    "digits": (),
    "synthetic": ("shape", "num_classes", "n_train", "n_test", "data_seed"),
    "points": ("n_points", "data_seed"),
}
# Defaults that differ by dataset (over the schema's): the 2-D points regress raw x in [0, 1]
# with full-batch GD (paper 002, App. C.3).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "points": {"task": "regression", "standardize": False, "batch_size": "full"},
}


def default_root() -> str:
    """``$DATA_ROOT`` if set, else ``data`` (relative to the working directory)."""
    return os.environ.get("DATA_ROOT", "data")


# ------------------------------------------------------------------------- checks
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dataset(key: str, value: Any) -> str:
    if value not in DATASETS:
        raise SettingError(f"unknown dataset {value!r}; valid datasets: {', '.join(DATASETS)}")
    return value


def _classes(key: str, value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise SettingError(
            f"{key} must be null or a list of at least 2 class indices, got {value!r}"
        )
    for c in value:
        integer(minimum=0)(f"{key}[]", c)
    if len(set(value)) != len(value):
        raise SettingError(f"{key} has repeated class indices: {list(value)}")
    return tuple(int(c) for c in value)


def _input_scale(key: str, value: Any) -> float:
    """A positive finite factor (paper 002, App. C.2 scales inputs by 0.5-1.5)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
    ):
        raise SettingError(f"{key} must be a positive number, got {value!r}")
    return float(value)


def _augment_p(key: str, value: Any) -> float:
    """The probability that a training example is augmented (paper 002, App. B.3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SettingError(f"{key} must be a number in [0, 1], got {value!r}")
    return float(value)


def _mixup_beta(key: str, value: Any) -> float:
    """beta of theta ~ Beta(beta, beta) (paper 002, App. B.3); 0 = no mixup."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value < float("inf")
    ):
        raise SettingError(f"{key} must be a finite number >= 0 (0: no mixup), got {value!r}")
    return float(value)


def _batch_size(key: str, value: Any) -> int | str:
    if value == "full":
        return "full"
    if not _is_int(value) or value <= 0:
        shown = value if _is_int(value) else repr(value)
        raise SettingError(f"{key} must be a positive integer or 'full', got {shown}")
    return int(value)


def _physical_batch_size(key: str, value: Any) -> int | None:
    if value is not None and (not _is_int(value) or value <= 0):
        raise SettingError(f"{key} must be a positive integer or null, got {value!r}")
    return value


def _positive_ints(value: Any, length: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == length
        and all(_is_int(v) and v >= 1 for v in value)
    )


def _image_size(key: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    size = [value, value] if _is_int(value) else value
    if not _positive_ints(size, 2):
        raise SettingError(f"{key} must be null, an integer or [height, width], got {value!r}")
    return (int(size[0]), int(size[1]))


def _channels(key: str, value: Any) -> int | None:
    if value not in (None, 1, 3) or isinstance(value, bool):
        raise SettingError(f"{key} must be null (from the first image), 1 or 3, got {value!r}")
    return value


def _shape(key: str, value: Any) -> tuple[int, int, int]:
    if not _positive_ints(value, 3):
        raise SettingError(
            f"{key} must be [channels, height, width] of positive integers, got {value!r}"
        )
    return (int(value[0]), int(value[1]), int(value[2]))


# ------------------------------------------------------------------------- schema
@dataclass
class DataConfig:
    """Validated data settings (see ``conf/data/*.yaml`` for what each key means)."""

    name: str = setting(check=_dataset)
    # None -> default_root() for the torchvision datasets; required for imagefolder
    root: str | None = setting(None, text(allow_none=True))
    download: bool = setting(False, boolean)
    archive: str | None = setting(None, text(allow_none=True))
    cache: bool = setting(True, boolean)
    subset: int | None = setting(None, integer(minimum=1, allow_none=True))
    subset_mode: str = setting("first", one_of(*SUBSET_MODES))
    subset_seed: int | None = setting(0, integer(allow_none=True))
    test_subset: int | None = setting(None, integer(minimum=1, allow_none=True))
    classes: tuple[int, ...] | None = setting(None, _classes)
    task: str = setting("classification", one_of(*TASKS))
    targets: str = setting("index", one_of(*TARGETS))
    standardize: bool = setting(True, boolean)
    input_scale: float = setting(1.0, _input_scale)
    augment: bool = setting(False, boolean)
    augment_p: float = setting(1.0, _augment_p)
    mixup_beta: float = setting(0.0, _mixup_beta)
    batch_size: int | str = setting(128, _batch_size)
    physical_batch_size: int | None = setting(None, _physical_batch_size)
    drop_last: bool = setting(False, boolean)
    dtype: str = setting("float32", one_of(*DTYPES))
    image_size: tuple[int, int] | None = setting(None, _image_size)
    channels: int | None = setting(None, _channels)
    shape: tuple[int, int, int] = setting((3, 32, 32), _shape)
    num_classes: int = setting(10, integer(minimum=2))
    n_train: int = setting(2048, integer(minimum=1))
    n_test: int = setting(512, integer(minimum=1))
    data_seed: int = setting(0, integer())
    n_points: int = setting(8, integer(minimum=2))

    def __repr__(self) -> str:
        return f"DataConfig({self.as_dict()})"

    def as_dict(self) -> dict[str, Any]:
        """The keys this dataset uses, with their (validated) values."""
        keys = COMMON_KEYS + DATASET_KEYS[self.name]
        out = {}
        for key in keys:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def cross_check(self) -> None:
        """Checks between keys, and the default root of the datasets that have one."""
        if self.name == "imagefolder" and self.root is None:
            raise SettingError(
                "data.root is required for imagefolder: the folder holding train/<class>/ and "
                "test/<class>/"
            )
        if "root" in DATASET_KEYS[self.name] and self.root is None:
            self.root = default_root()
        if self.augment_p != 1 and not self.augment:
            raise SettingError(
                f"data.augment_p={self.augment_p} needs data.augment=true (or leave augment_p at 1)"
            )
        self._check_points()
        if self.task == "two_class_mse":
            if self.classes is not None and len(self.classes) != 2:
                raise SettingError(
                    f"data.task=two_class_mse needs exactly 2 classes, got "
                    f"data.classes={list(self.classes)}"
                )
            if self.targets != "index":
                raise SettingError(
                    "data.targets=onehot does not apply to data.task=two_class_mse (targets are "
                    "+-1 scalars)"
                )

    def _check_points(self) -> None:
        """The regression task and the points dataset (paper 002, App. C.3) go together."""
        if (self.task == "regression") != (self.name == "points"):
            raise SettingError(
                f"data.task=regression is the points dataset's task (got task={self.task}, "
                f"name={self.name}); use data=points with task=regression, or a classification "
                "task elsewhere"
            )
        if self.name == "points" and (self.augment or self.standardize or self.targets != "index"):
            raise SettingError(
                "data=points (2-D regression, paper 002 App. C.3) takes augment=false, "
                "standardize=false, targets=index"
            )


# -------------------------------------------------------------------------- parse
def _to_plain_dict(data_cfg: Any) -> dict[str, Any]:
    if isinstance(data_cfg, DictConfig):
        node = data_cfg
    elif isinstance(data_cfg, Mapping):
        node = OmegaConf.create(dict(data_cfg))
    else:
        raise ValueError(
            f"data config must be a DictConfig or a dict, got {type(data_cfg).__name__}"
        )
    try:
        plain = OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        key = getattr(exc, "full_key", None) or "a key"
        raise ValueError(
            f"data config: {key} is required but missing (???); set it, e.g. data.root=/path"
        ) from None
    except OmegaConfBaseException as exc:
        msg = str(exc).splitlines()[0]
        raise ValueError(f"data config could not be resolved: {msg}") from None
    return plain  # type: ignore[return-value]


def _check_keys(raw: dict[str, Any]) -> str:
    """The dataset's name, after checking that ``raw`` holds only keys it uses (one line
    naming the typos, the keys of other datasets and the valid keys)."""
    if "name" not in raw:
        raise SettingError(f"data config has no 'name'; valid datasets: {', '.join(DATASETS)}")
    name = _dataset("data.name", raw["name"])
    allowed = set(COMMON_KEYS) | set(DATASET_KEYS[name])
    unknown = sorted(set(raw) - allowed)
    if unknown:
        other = sorted(k for k in unknown if any(k in keys for keys in DATASET_KEYS.values()))
        typo = sorted(set(unknown) - set(other))
        parts = []
        if typo:
            parts.append(f"unknown data key(s) {', '.join(typo)}")
        if other:
            parts.append(f"key(s) {', '.join(other)} not used by dataset {name!r}")
        raise SettingError(
            "; ".join(parts) + f"; valid keys for {name}: {', '.join(sorted(allowed))}"
        )
    return name


def parse_data_config(data_cfg: Any) -> DataConfig:
    """Validate a data config (DictConfig or dict with the keys of ``conf/data/*.yaml``)."""
    raw = _to_plain_dict(data_cfg)
    name = _check_keys(raw)
    return parse_settings(DataConfig, {**DATASET_DEFAULTS.get(name, {}), **raw}, "data")
