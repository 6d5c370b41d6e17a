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
``metrics.csv``. The file format (:class:`TrajectoryFile`, :func:`read_trajectory`) lives in the
Lightning-free :mod:`ijr.run_artifacts`, read by the reports and the claims too.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ijr.run_artifacts import TRAJECTORY_FILE as FILE_NAME
from ijr.run_artifacts import TrajectoryFile, read_trajectory


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


__all__ = ["FILE_NAME", "ParameterSketch", "TrajectoryFile", "read_trajectory"]
