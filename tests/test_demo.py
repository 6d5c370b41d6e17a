"""`make demo` (scripts/demo.py): every step of the tour is a real experiment with valid cuts."""

from __future__ import annotations

import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONF_DIR, REPO
from ijr.train import apply_profile, validate

sys.path.insert(0, str(REPO / "scripts"))
import demo  # noqa: E402


def _first_of_each_sweep(overrides: list[str]) -> list[str]:
    return [o.split(",")[0] if "," in o and "[" not in o else o for o in overrides]


@pytest.mark.parametrize("digits", [False, True], ids=["cifar10", "digits"])
@pytest.mark.parametrize("step", demo.TOUR, ids=[t for t, *_ in demo.TOUR])
def test_every_tour_step_composes_within_the_quick_profile(step, digits):
    target, experiment, _, cuts = step
    overrides = [f"experiment={experiment}", "profile=quick", *_first_of_each_sweep(cuts)]
    if digits:
        overrides.append("data=digits")
        if target == "table1":
            overrides.append("model=cnn6")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = apply_profile(compose("train", overrides=overrides))
    validate(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["experiment_name"] == experiment
    assert resolved["profile"]["name"] == "quick"
    # the demo only ever cuts the quick profile further
    assert resolved["trainer"]["max_steps"] <= 200


def test_demo_rejects_an_unknown_step(capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--only", "fig99", "--data-root", "/nonexistent"])
    assert exc.value.code == 2
    assert "fig99" in capsys.readouterr().err
