"""Every seed the project derives, in one module: nothing here reads or advances the global RNG.

Two derivations exist and both are kept bit for bit (finished runs, resumed runs and the
committed results depend on the exact numbers; ``tests/test_seeds.py`` pins them):

* :func:`derive_seed` (``purpose``, parts...) -> a 63-bit seed from SHA-256 of
  ``"ijr.data|purpose|part|part..."``. Used for the data layer (batch order ``"epoch"``,
  ``"augment"``, subsets, probe sets, synthetic data), the probes and the robust evaluation.
* :func:`stream_seed` (run seed, training step, stream name) -> a 64-bit seed mixed by numpy's
  ``SeedSequence`` from (seed, step, CRC-32 of the stream name). Used for the per-step random
  directions of the training methods (EJR's u, eqs. 11-13 / 51 / 54 of paper 000; the
  input-Jacobian v of Hoffman et al. 2019) and the random starts of the training attack.

New code should use :func:`derive_seed` with a new ``purpose``; :func:`stream_seed` exists
because the methods' streams were defined with it.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch

_SEED_MASK = (1 << 63) - 1
_U64 = 0xFFFFFFFFFFFFFFFF


def derive_seed(purpose: str, *parts: int | str) -> int:
    """A 63-bit seed that is a fixed function of ``purpose`` and ``parts``.

    Different purposes (or parts) give unrelated streams: ``derive_seed("epoch", seed, 3)`` and
    ``derive_seed("augment", seed, 3)`` do not share random numbers."""
    text = "ijr.data|" + purpose + "|" + "|".join(str(p) for p in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & _SEED_MASK


def stream_seed(seed: int, step: int, stream: str) -> int:
    """A 64-bit seed from (run seed, training step, stream name), mixed by ``SeedSequence`` so
    that neighbouring seeds / steps give unrelated streams; ``stream`` separates independent
    uses (``"ejr_u"``, ``"input_jr_v"``, ``"adversary/<chunk>"``)."""
    entropy = [int(seed) & _U64, int(step) & _U64, zlib.crc32(stream.encode())]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    return gen


def generator(purpose: str, *parts: int | str) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed` of the same arguments."""
    return seeded_generator(derive_seed(purpose, *parts))


def stream_generator(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator seeded with :func:`stream_seed` of the same arguments."""
    return seeded_generator(stream_seed(seed, step, stream))


__all__ = ["derive_seed", "generator", "seeded_generator", "stream_generator", "stream_seed"]
