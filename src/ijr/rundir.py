"""Run directories (docs/design.md contract 1).

``<paths.runs>/<experiment_name>/<run_key>/`` holds ``.hydra/config.yaml`` (the resolved config),
``metrics.csv``, ``summary.json`` and ``checkpoints/last.ckpt``. ``run_key`` is a short hash of
the resolved config minus the keys that do not change what is computed (where files go, which
loggers listen, whether to resume), so re-launching the same command finds the same directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

STATUSES = ("running", "completed", "diverged", "failed")

# Keys (dotted) left out of the run key: they decide where results go or who sees them, not what
# is computed; `lookup`, `method_params` and `quick_scale` are tables experiments read, whose effect
# is already in the resolved keys that use them (so an SGD baseline swept beside EJR's lambda_reg is
# one run, not several).
RUN_KEY_IGNORE = (
    "paths",
    "logger",
    "resume",
    "run_key",
    "tags",
    "callbacks",
    "lookup",
    "method_params",
    "quick_scale",
    "cpu_scale",  # its effect is in the resolved keys (profile.*, the overridden keys)
    "profile.seeds",  # which seeds a sweep makes, not what one run computes (its `seed` is keyed)
    "profile.sweep",  # which rows a sweep makes: a row added to the sweep leaves the others' keys
    "claims",  # checks over finished runs (ijr-report claims), never an input of training
    "hydra",
    "experiment_name",
    "data.root",
    "data.download",
    "data.archive",
    "trainer.progress_bar",
    "trainer.checkpoint_every_n_steps",
    "trainer.checkpoint",
)

# Keys added after runs were made, left out of the run key at the value that computes exactly what
# those runs computed, so their directories keep their keys (like ``adversary: none`` below).
RUN_KEY_NEUTRAL = {
    "data.input_scale": 1.0,  # paper 002 App. C.2; 1.0 leaves the inputs as they were
    "data.augment_p": 1.0,  # paper 002 App. B.3; 1.0 augments every example, as before
    "data.mixup_beta": 0.0,  # paper 002 App. B.3; 0.0 is no mixup
}


def _lookup(container: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(container, dict) or part not in container:
            return None
        container = container[part]
    return container


def _drop(container: dict, dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head not in container:
        return
    if rest:
        if isinstance(container[head], dict):
            _drop(container[head], rest)
    else:
        del container[head]


def resolved_container(cfg: DictConfig | dict) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return json.loads(json.dumps(cfg))


def compute_run_key(
    cfg: DictConfig | dict, data_identity: str | None = None, length: int = 12
) -> str:
    """Short hash of the resolved config (seed included) without :data:`RUN_KEY_IGNORE`, and of
    ``data_identity``: the fingerprint of the dataset's files (:func:`ijr.data.data_identity`;
    ``data.root`` is ignored so that moving the data keeps the key, the files are not). ``None``
    (digits, synthetic: datasets the config determines) leaves the key the config hash alone."""
    container = resolved_container(cfg)
    for key in RUN_KEY_IGNORE:
        _drop(container, key)
    for key, neutral in RUN_KEY_NEUTRAL.items():
        if _lookup(container, key) == neutral:
            _drop(container, key)
    if data_identity is not None:
        container.setdefault("data", {})["content"] = str(data_identity)
    if isinstance(container.get("probes"), dict) and container["probes"].get("name") == "none":
        container["probes"] = {"name": "none"}  # settings of probes that do not run change nothing
    if (
        isinstance(container.get("adversary"), dict)
        and container["adversary"].get("name") == "none"
    ):
        del container["adversary"]  # no adversary: the same run as before the group existed
    blob = json.dumps(container, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def _atomic_write(path: Path, text: str) -> None:
    """Write ``path`` through ``path.tmp``, which never outlives a failed write (a full disk)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")


def check_plain_name(key: str, value: object) -> str:
    """``value`` as a directory name: one path component (letters, digits, ``._=+-``, not
    starting with a dot), so ``run_key`` / ``experiment_name`` never write outside paths.runs."""
    text = str(value)
    if not PLAIN_NAME.fullmatch(text) or len(text) > 200:
        raise ValueError(
            f"{key}={text!r} is not a plain name: use letters, digits and ._=+- only "
            f"(no '/', no leading '.'), e.g. {key}=my-run"
        )
    return text


class RunDir:
    """One run's directory and its ``summary.json``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @classmethod
    def for_config(cls, cfg: DictConfig, data_identity: str | None = None) -> RunDir:
        """The directory of ``cfg`` (``run_key`` if set, else :func:`compute_run_key` with the
        dataset's ``data_identity``)."""
        key = cfg.get("run_key") or compute_run_key(cfg, data_identity)
        experiment = check_plain_name("experiment_name", cfg.get("experiment_name") or "default")
        return cls(Path(cfg.paths.runs) / experiment / check_plain_name("run_key", key))

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "summary.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.ckpt"

    def data_files(self) -> list[str]:
        """The files a run measured that exist here (metrics.csv, the checkpoint)."""
        files = (self.metrics_csv, self.checkpoint)
        return [f.relative_to(self.path).as_posix() for f in files if f.exists()]

    def remove_temp_files(self) -> list[Path]:
        """Remove the temporary files of interrupted atomic writes (``*.tmp``, ``*.tmp-<pid>``)
        anywhere in the run directory, first of all on a full disk; returns what was removed."""
        removed = []
        if self.path.exists():
            for path in self.path.rglob("*.tmp*"):
                if path.is_file() and re.search(r"\.tmp(-\d+)?$", path.name):
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    def try_lock(self):
        """An exclusive advisory lock on ``<run>/.lock`` (``flock``), so two jobs of a sweep with the
        same config never write one directory at once. Returns the open lock file (close it to
        release), or None when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / ".lock", "a+")  # noqa: SIM115 - released by the caller
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        return handle

    def clear(self) -> None:
        """Remove everything a previous attempt wrote (``resume=false``, a restart from step
        0), keeping the lock; summary.json goes last, so a clear cut short by a kill never leaves
        data without its summary."""
        children = (
            sorted(self.path.iterdir(), key=lambda p: p == self.summary_json)
            if self.path.exists()
            else []
        )
        for child in children:
            if child.name == ".lock":
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    def create(self) -> None:
        (self.path / ".hydra").mkdir(parents=True, exist_ok=True)

    def write_config(self, cfg: DictConfig, overrides: list[str] | None = None) -> None:
        self.create()
        _atomic_write(self.path / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        if overrides is not None:
            _atomic_write(
                self.path / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(list(overrides))
            )

    def read_summary(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.summary_json.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into summary.json (atomically) and return the new summary."""
        summary = self.read_summary() or {}
        summary.update(fields)
        if summary.get("status") not in STATUSES:
            raise ValueError(
                f"summary status must be one of {STATUSES}, got {summary.get('status')}"
            )
        summary["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.create()
        _atomic_write(
            self.summary_json, json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
        )
        return summary


def _json_default(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
