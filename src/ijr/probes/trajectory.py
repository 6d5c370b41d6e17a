"""The optimisation trajectory {theta_t} for Figures 3 and 27 of paper 000 (UMAP of the parameters
along full-batch GD), kept small: a count sketch S theta in R^D (Charikar et al. 2002) instead of
theta itself (511,926 floats per step for 6CNN, 36M for WRN-28-10).

S sends parameter coordinate i to bucket h(i) in [0, D) with sign s(i) in {-1, +1}, both fixed by
``probes.seed``: (S theta)_j = sum_{i: h(i) = j} s(i) theta_i. It is linear and preserves inner
products in expectation, E <S a, S b> = <a, b>, so distances between iterates -- all that UMAP's
neighbour graph uses -- are kept to a relative error of about sqrt(2 / D) (tested). Computing it is
one ``index_add`` over the parameters: negligible next to a training step.

``<run_dir>/trajectory.bin`` holds one record per probe step: the step (int64) and S theta_t
(D float32 values), little-endian. Records are appended and flushed at each probe; on (re)start the
records with ``step >= the start step`` are dropped (they are measured again), as for
``metrics.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

FILE_NAME = "trajectory.bin"


class ParameterSketch:
    """theta -> S theta in R^dim (see the module docstring)."""

    def __init__(self, num_params: int, dim: int, seed: int) -> None:
        if int(dim) < 1:
            raise ValueError(f"probes.trajectory_dim must be >= 1, got {dim}")
        gen = torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + 7)
        self.dim = int(dim)
        self.num_params = int(num_params)
        self.bucket = torch.randint(0, self.dim, (self.num_params,), generator=gen)
        self.sign = torch.randint(0, 2, (self.num_params,), generator=gen).to(torch.float64) * 2 - 1

    def __call__(self, params: Iterable[torch.Tensor]) -> torch.Tensor:
        flat = torch.cat([p.detach().reshape(-1).to("cpu", torch.float64) for p in params])
        if flat.numel() != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters, got {flat.numel()}")
        return torch.zeros(self.dim, dtype=torch.float64).index_add_(
            0, self.bucket, flat * self.sign
        )


class TrajectoryFile:
    """Append-only ``trajectory.bin`` of (step, S theta) records (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, dim: int) -> None:
        self.path = Path(path)
        self.dim = int(dim)
        self.dtype = np.dtype([("step", "<i8"), ("sketch", "<f4", (self.dim,))])

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps (n,), sketches (n, dim)); a torn last record (a killed run) is ignored."""
        if not self.path.exists():
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        raw = self.path.read_bytes()
        whole = len(raw) // self.dtype.itemsize
        records = np.frombuffer(raw[: whole * self.dtype.itemsize], dtype=self.dtype)
        return records["step"].copy(), records["sketch"].copy()

    def truncate_from(self, step: int) -> None:
        """Keep only the records with ``step < step``."""
        steps, sketches = self.read()
        keep = steps < step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        records = np.zeros(int(keep.sum()), dtype=self.dtype)
        records["step"], records["sketch"] = steps[keep], sketches[keep]
        tmp.write_bytes(records.tobytes())
        os.replace(tmp, self.path)

    def append(self, step: int, sketch: torch.Tensor) -> None:
        record = np.zeros(1, dtype=self.dtype)
        record["step"] = int(step)
        record["sketch"][0] = sketch.detach().cpu().numpy().astype(np.float32)
        with self.path.open("ab") as f:
            f.write(record.tobytes())
            f.flush()


def read_trajectory(run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(steps, sketches) of a run's ``trajectory.bin``; a clear error when it has none."""
    path = Path(run_dir) / FILE_NAME
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(
            f"{run_dir} has no {FILE_NAME}: run it with the 'trajectory' probe group (probes.cheap=[...,trajectory])"
        )
    dim = _dim_from_config(Path(run_dir))
    return TrajectoryFile(path, dim).read()


def _dim_from_config(run_dir: Path) -> int:
    import yaml

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text()) or {}
    dim = (config.get("probes") or {}).get("trajectory_dim")
    if not dim:
        raise ValueError(f"{run_dir}/.hydra/config.yaml has no probes.trajectory_dim")
    return int(dim)


__all__ = ["FILE_NAME", "ParameterSketch", "TrajectoryFile", "read_trajectory"]
