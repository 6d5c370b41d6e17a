"""Seeded ``torch.Generator`` objects derived from named tuples of values.

Every random choice of the data layer (batch order, augmentation, subsets, probe sets, the
synthetic dataset, the digits split) draws from its own CPU generator seeded by
:func:`derive_seed`, so nothing here reads or advances the global RNG and results are the same
on every device.
"""

from __future__ import annotations

import hashlib

import torch

_SEED_MASK = (1 << 63) - 1


def derive_seed(purpose: str, *parts: int | str) -> int:
    """A 63-bit seed that is a fixed function of ``purpose`` and ``parts``.

    Different purposes (or parts) give unrelated streams: ``derive_seed("epoch", seed, 3)`` and
    ``derive_seed("augment", seed, 3)`` do not share random numbers.
    """
    text = "ijr.data|" + purpose + "|" + "|".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & _SEED_MASK


def generator(purpose: str, *parts: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of the same arguments."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(purpose, *parts))
    return gen
