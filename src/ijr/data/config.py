"""The ``data`` config group: parsing and validation of ``conf/data/<name>.yaml``.

:func:`parse_data_config` turns a ``DictConfig`` or a plain dict into a :class:`DataConfig`,
filling every key that is not given with the default below (the same values as the YAML files)
and rejecting unknown keys, keys that the chosen dataset does not use, and bad values with a
one-line ``ValueError``. Checks that need the data itself (subset larger than the dataset, batch
size larger than the training set, class indices out of range) happen in
``TensorDataModule.setup``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

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


def default_root() -> str:
    """``$DATA_ROOT`` if set, else ``data`` (relative to the working directory)."""
    return os.environ.get("DATA_ROOT", "data")


@dataclass
class DataConfig:
    """Validated data settings (see ``conf/data/*.yaml`` for what each key means)."""

    name: str
    root: str | None = (
        None  # None -> default_root() for the torchvision datasets; required for imagefolder
    )
    download: bool = False
    archive: str | None = None
    cache: bool = True
    subset: int | None = None
    subset_mode: str = "first"
    subset_seed: int | None = 0
    test_subset: int | None = None
    classes: tuple[int, ...] | None = None
    task: str = "classification"
    targets: str = "index"
    standardize: bool = True
    input_scale: float = 1.0
    augment: bool = False
    augment_p: float = 1.0
    mixup_beta: float = 0.0
    batch_size: int | str = 128
    physical_batch_size: int | None = None
    drop_last: bool = False
    dtype: str = "float32"
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    n_train: int = 2048
    n_test: int = 512
    data_seed: int = 0
    n_points: int = 8

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


def _check_int(
    key: str, value: Any, minimum: int | None = None, allow_none: bool = False
) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"data.{key} must be an integer{' or null' if allow_none else ''}, got {value!r}"
        )
    if minimum is not None and value < minimum:
        raise ValueError(f"data.{key} must be >= {minimum}, got {value}")
    return int(value)


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"data.{key} must be true or false, got {value!r}")
    return value


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"data.{key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_str(key: str, value: Any, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"data.{key} must be a non-empty path string{' or null' if allow_none else ''}, got {value!r}"
        )
    return value


def _check_input_scale(value: Any) -> float:
    """data.input_scale: a positive finite factor (paper 002, App. C.2 scales inputs by 0.5-1.5)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
    ):
        raise ValueError(f"data.input_scale must be a positive number, got {value!r}")
    return float(value)


def _check_augment_p(value: Any, augment: bool) -> float:
    """data.augment_p: the probability that a training example is augmented (paper 002, App. B.3)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"data.augment_p must be a number in [0, 1], got {value!r}")
    if value != 1 and not augment:
        raise ValueError(
            f"data.augment_p={value} needs data.augment=true (or leave augment_p at 1)"
        )
    return float(value)


def _check_mixup_beta(value: Any) -> float:
    """data.mixup_beta: beta of theta ~ Beta(beta, beta) (paper 002, App. B.3); 0 = no mixup."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value < float("inf")
    ):
        raise ValueError(
            f"data.mixup_beta must be a finite number >= 0 (0: no mixup), got {value!r}"
        )
    return float(value)


def _check_task_dataset(cfg: DataConfig) -> None:
    """The regression task and the points dataset (paper 002, App. C.3) go together."""
    if (cfg.task == "regression") != (cfg.name == "points"):
        raise ValueError(
            f"data.task=regression is the points dataset's task (got task={cfg.task}, name={cfg.name}); "
            "use data=points with task=regression, or a classification task elsewhere"
        )
    if cfg.name == "points" and (cfg.augment or cfg.standardize or cfg.targets != "index"):
        raise ValueError(
            "data=points (2-D regression, paper 002 App. C.3) takes augment=false, standardize=false, targets=index"
        )


def parse_data_config(data_cfg: Any) -> DataConfig:
    """Validate a data config (DictConfig or dict with the keys of ``conf/data/*.yaml``)."""
    raw = _to_plain_dict(data_cfg)
    if "name" not in raw:
        raise ValueError(f"data config has no 'name'; valid datasets: {', '.join(DATASETS)}")
    name = raw["name"]
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
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
        raise ValueError(
            "; ".join(parts) + f"; valid keys for {name}: {', '.join(sorted(allowed))}"
        )

    cfg = DataConfig(name=name)
    get = raw.get

    # where the data lives
    if "root" in allowed:
        root = get("root")
        if name == "imagefolder":
            if root is None:
                raise ValueError(
                    "data.root is required for imagefolder: the folder holding train/<class>/ and test/<class>/"
                )
            cfg.root = _check_str("root", root)
        else:
            cfg.root = _check_str("root", root, allow_none=True) or default_root()
    if "download" in allowed:
        cfg.download = _check_bool("download", get("download", False))
    if "archive" in allowed:
        cfg.archive = _check_str("archive", get("archive"), allow_none=True)
    if "cache" in allowed:
        cfg.cache = _check_bool("cache", get("cache", True))

    # which examples
    cfg.subset = _check_int("subset", get("subset"), minimum=1, allow_none=True)
    cfg.subset_mode = _check_choice("subset_mode", get("subset_mode", "first"), SUBSET_MODES)
    cfg.subset_seed = _check_int("subset_seed", get("subset_seed", 0), allow_none=True)
    cfg.test_subset = _check_int("test_subset", get("test_subset"), minimum=1, allow_none=True)
    classes = get("classes")
    if classes is not None:
        if not isinstance(classes, (list, tuple)) or len(classes) < 2:
            raise ValueError(
                f"data.classes must be null or a list of at least 2 class indices, got {classes!r}"
            )
        for c in classes:
            _check_int("classes[]", c, minimum=0)
        if len(set(classes)) != len(classes):
            raise ValueError(f"data.classes has repeated class indices: {list(classes)}")
        cfg.classes = tuple(int(c) for c in classes)

    # what the model predicts
    default_task = "regression" if name == "points" else "classification"
    cfg.task = _check_choice("task", get("task", default_task), TASKS)
    cfg.targets = _check_choice("targets", get("targets", "index"), TARGETS)
    if cfg.task == "two_class_mse":
        if cfg.classes is not None and len(cfg.classes) != 2:
            raise ValueError(
                f"data.task=two_class_mse needs exactly 2 classes, got data.classes={list(cfg.classes)}"
            )
        if cfg.targets != "index":
            raise ValueError(
                "data.targets=onehot does not apply to data.task=two_class_mse (targets are +-1 scalars)"
            )

    # preprocessing
    cfg.standardize = _check_bool("standardize", get("standardize", name != "points"))
    cfg.input_scale = _check_input_scale(get("input_scale", 1.0))
    cfg.augment = _check_bool("augment", get("augment", False))
    cfg.augment_p = _check_augment_p(get("augment_p", 1.0), cfg.augment)
    cfg.mixup_beta = _check_mixup_beta(get("mixup_beta", 0.0))
    cfg.dtype = _check_choice("dtype", get("dtype", "float32"), DTYPES)

    # batching
    batch_size = get("batch_size", 128)
    if batch_size == "full":
        cfg.batch_size = "full"
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ValueError(
            f"data.batch_size must be a positive integer or 'full', got {batch_size!r}"
        )
    elif batch_size <= 0:
        raise ValueError(f"data.batch_size must be a positive integer or 'full', got {batch_size}")
    else:
        cfg.batch_size = int(batch_size)
    pbs = get("physical_batch_size")
    if pbs is not None and (isinstance(pbs, bool) or not isinstance(pbs, int) or pbs <= 0):
        raise ValueError(
            f"data.physical_batch_size must be a positive integer or null, got {pbs!r}"
        )
    cfg.physical_batch_size = pbs
    cfg.drop_last = _check_bool("drop_last", get("drop_last", False))

    # dataset-specific
    if name == "imagefolder":
        size = get("image_size")
        if size is not None:
            if isinstance(size, int) and not isinstance(size, bool):
                size = [size, size]
            if (
                not isinstance(size, (list, tuple))
                or len(size) != 2
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size)
            ):
                raise ValueError(
                    f"data.image_size must be null, an integer or [height, width], got {get('image_size')!r}"
                )
            cfg.image_size = (int(size[0]), int(size[1]))
        channels = get("channels")
        if channels not in (None, 1, 3) or isinstance(channels, bool):
            raise ValueError(
                f"data.channels must be null (from the first image), 1 or 3, got {channels!r}"
            )
        cfg.channels = channels
    if name == "synthetic":
        shape = get("shape", [3, 32, 32])
        if (
            not isinstance(shape, (list, tuple))
            or len(shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
        ):
            raise ValueError(
                f"data.shape must be [channels, height, width] of positive integers, got {shape!r}"
            )
        cfg.shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        cfg.num_classes = _check_int("num_classes", get("num_classes", 10), minimum=2)
        cfg.n_train = _check_int("n_train", get("n_train", 2048), minimum=1)
        cfg.n_test = _check_int("n_test", get("n_test", 512), minimum=1)
        cfg.data_seed = _check_int("data_seed", get("data_seed", 0))
    if name == "points":
        cfg.n_points = _check_int("n_points", get("n_points", 8), minimum=2)
        cfg.data_seed = _check_int("data_seed", get("data_seed", 0))
    _check_task_dataset(cfg)
    return cfg
