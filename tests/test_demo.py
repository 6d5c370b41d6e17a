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
def test_every_tour_step_composes_within_its_profile(step, digits):
    target, experiment, profile, _, cuts = step
    overrides = [f"experiment={experiment}", f"profile={profile}", *_first_of_each_sweep(cuts)]
    if digits:
        overrides.append("data=digits")
        if profile == "cpu":
            overrides.append("cpu_scale.overrides.data.subset=null")
        if target == "table1":
            overrides.append("model=cnn6")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = apply_profile(compose("train", overrides=overrides))
    validate(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["experiment_name"] == experiment
    assert resolved["profile"]["name"] == profile
    # the demo only ever cuts its profile further: a few minutes on a 2-core CPU
    assert resolved["trainer"]["max_steps"] <= 800
    if profile == "cpu":  # the phenomenon step: 3FCN under full-batch GD on a few thousand images
        assert resolved["model"]["name"] == "fcn3"
        assert resolved["data"]["batch_size"] == "full"
        assert resolved["data"]["subset"] == (None if digits else 2000)
        assert resolved["optim"]["lr"] == 0.1


def test_the_tour_checks_claims_of_the_experiments_it_runs():
    from ijr.claims.spec import load_experiments

    experiments = {e.name: e for e in load_experiments("cpu")}
    trained = {experiment for _, experiment, profile, *_ in demo.TOUR if profile == "cpu"}
    for name in demo.CHECKED_EXPERIMENTS:
        assert experiments[name].claims
        assert (experiments[name].runs_of or name) in trained


def test_demo_rejects_an_unknown_step(capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--only", "fig99", "--data-root", "/nonexistent"])
    assert exc.value.code == 2
    assert "fig99" in capsys.readouterr().err
