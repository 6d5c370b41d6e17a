"""Seeded generators of the data layer: re-exported from :mod:`ijr.seeds`, the one module where
every seed of the project is derived (kept so ``from ijr.data.rng import ...`` still works)."""

from __future__ import annotations

from ijr.seeds import derive_seed, generator

__all__ = ["derive_seed", "generator"]
