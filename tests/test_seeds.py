"""ijr.seeds: the two seed derivations in one module give the numbers they gave before it existed
(finished runs, resumed runs and the committed results depend on them)."""

from __future__ import annotations

import pytest
import torch

from ijr.data.rng import derive_seed as data_derive_seed
from ijr.methods.common import direction_generator
from ijr.seeds import derive_seed, generator, stream_generator, stream_seed

# Computed with ijr.data.rng.derive_seed and ijr.methods.common.direction_generator at
# commit ddcf9ae, before ijr.seeds existed.
DERIVED = [
    (("epoch", 0, 0), 1388211414062306305),
    (("augment", 3, 17), 6531149315051136083),
    (("subset", 0, "train"), 1851213063842090416),
    (("probe", 5), 3951875714591925889),
    (("probes.rho_b", 1, 100), 3400609369477994763),
    (("robust_eval", 2, 7), 4373879553394117938),
]
STREAMS = [
    ((0, 0, "ejr_u"), 14452040094250688104),
    ((3, 17, "input_jr_v"), 8896805177198233124),
    ((1, 5, "adversary/0"), 2267763175901244870),
    ((2**32 - 1, 99999, "adversary/3"), 10932446082003888828),
]


@pytest.mark.parametrize(("args", "seed"), DERIVED)
def test_derive_seed_is_unchanged(args, seed):
    assert derive_seed(*args) == seed
    assert data_derive_seed(*args) == seed  # the data layer's import path still works
    assert generator(*args).initial_seed() == seed


@pytest.mark.parametrize(("args", "seed"), STREAMS)
def test_stream_seed_is_unchanged(args, seed):
    assert stream_seed(*args) == seed
    assert stream_generator(*args).initial_seed() == seed
    assert direction_generator(*args).initial_seed() == seed


def test_seeding_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    generator("epoch", 0, 1)
    stream_generator(0, 1, "ejr_u")
    assert torch.equal(torch.get_rng_state(), state)
