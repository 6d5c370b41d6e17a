"""The ``trainer`` config group: its schema (:mod:`ijr.schema`), defaults = ``conf/trainer/default.yaml``
(``tests/test_config_schema.py`` checks that the two agree; the YAML says what each key means)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ijr.schema import SettingError, anything, boolean, count_or_null, parse_settings, setting


def _epochs(key: str, value: Any) -> float | int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1
    ):
        raise SettingError(f"{key} must be a number >= 1 (or null), got {value!r}")
    return value


def _number_or_null(key: str, value: Any) -> float | int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise SettingError(f"{key} must be a number or null, got {value!r}")
    return value


def _progress_bar(key: str, value: Any) -> str | bool:
    if value != "auto" and not isinstance(value, bool):
        raise SettingError(f"{key} must be auto, true or false, got {value!r}")
    return value


def _positive_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingError(f"{key} must be a positive number, got {value!r}")
    return value


@dataclass
class TrainerConfig:
    """Stopping, evaluation, checkpointing and device settings of one run."""

    max_steps: int | None = setting(1000, count_or_null)
    max_epochs: float | None = setting(None, _epochs)
    until_loss: float | None = setting(None, _number_or_null)
    convergence_check_every: int | None = setting(100, count_or_null)
    log_every_n_steps: int | None = setting(10, count_or_null)
    eval_every_n_steps: int | None = setting(100, count_or_null)
    eval_train: bool = setting(False, boolean)
    checkpoint_every_n_steps: int | None = setting(500, count_or_null)
    checkpoint: bool = setting(True, boolean)
    accelerator: str = setting("auto", anything)  # checked by Lightning
    devices: Any = setting(1, anything)  # checked by Lightning
    precision: str = setting("32-true", anything)  # checked by Lightning
    allow_tf32: bool = setting(False, boolean)
    deterministic: bool = setting(True, boolean)
    progress_bar: str | bool = setting("auto", _progress_bar)
    divergence_loss: float = setting(1.0e6, _positive_number)

    def cross_check(self) -> None:
        if self.max_steps is None and self.max_epochs is None and self.until_loss is None:
            raise SettingError(
                "no stopping criterion: set trainer.max_steps, trainer.max_epochs or "
                "trainer.until_loss"
            )

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | DictConfig) -> TrainerConfig:
        """``cfg.trainer`` (resolved) checked against this schema."""
        if isinstance(raw, DictConfig):
            raw = OmegaConf.to_container(raw, resolve=True)
        return parse_settings(cls, dict(raw), "trainer")


__all__ = ["TrainerConfig"]
