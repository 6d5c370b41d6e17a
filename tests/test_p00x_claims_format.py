"""The companion experiments' ``claims:`` blocks follow the claims format (CLAIMS_SPEC): every
claim has id / paper / statement / check / params, the check is in the vocabulary, ids are unique
and each check has the parameters it needs. The checker itself lives with ``ijr-report claims``."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import CONF_DIR

REQUIRED = {
    "reaches": {"metric", "level"},
    "band": {"metric", "level", "lo", "hi"},
    "rises_then_falls": {"metric"},
    "between": {"metric", "lo", "hi"},
    "monotone": {"metric", "stat", "along", "direction"},
    "beats": {"metric", "a", "b"},
    "ratio": {"num", "den", "lo", "hi"},
    "fraction": {"summary_key", "lo", "hi"},
}
COMPANIONS = sorted(
    p for p in (CONF_DIR / "experiment").glob("*.yaml") if p.stem.startswith(("p002_", "p004_"))
)


@pytest.mark.parametrize("path", COMPANIONS, ids=lambda p: p.stem)
def test_claims_are_well_formed(path):
    claims = OmegaConf.to_container(OmegaConf.load(path)).get("claims")
    assert claims, f"{path.name} has no claims"
    ids = [c["id"] for c in claims]
    assert len(ids) == len(set(ids)), ids
    for claim in claims:
        assert {"id", "paper", "statement", "check", "params"} <= set(claim), claim
        assert claim["paper"].startswith(("002 ", "004 ")), claim["paper"]
        assert claim["check"] in REQUIRED, claim["check"]
        missing = REQUIRED[claim["check"]] - set(claim["params"])
        assert not missing, (claim["id"], missing)
        if claim["check"] == "fraction":
            assert claim["params"]["summary_key"].startswith("markers.")
