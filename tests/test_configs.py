"""Every config composes, every experiment instantiates its runs, and every key is commented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONF_DIR, compose_cfg
from ijr.methods import names as method_names
from ijr.models import names as model_names
from ijr.train import apply_profile

GROUPS = [
    "data",
    "model",
    "loss",
    "method",
    "optim",
    "sched",
    "probes",
    "logger",
    "trainer",
    "profile",
    "paths",
    "setting",
]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_resolves(group, option):
    cfg = compose_cfg(f"{group}={option}")
    OmegaConf.to_container(cfg, resolve=True)


def test_every_model_and_method_has_a_config():
    assert set(options("model")) == set(model_names())
    assert set(options("method")) == set(method_names())


def _sweep_values(cfg) -> dict[str, list[str]]:
    params = (
        OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
        if cfg.hydra.sweeper.get("params")
        else {}
    )
    return {k: [v.strip() for v in str(val).split(",")] for k, val in params.items()}


@pytest.mark.parametrize("profile", ["quick", "paper"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_every_point_of_its_sweep(experiment, profile):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        base = compose(
            "train",
            overrides=[f"experiment={experiment}", f"profile={profile}"],
            return_hydra_config=True,
        )
        sweep = _sweep_values(base)
        assert sweep, f"{experiment} carries no sweep"
        assert "seed" in sweep
        # the first and last value of every axis together, so each value is composed at least once
        for pick in (0, -1):
            overrides = [f"experiment={experiment}", f"profile={profile}"] + [
                f"{k}={v[pick]}" for k, v in sweep.items()
            ]
            cfg = compose("train", overrides=overrides)
            resolved = OmegaConf.to_container(apply_profile(cfg), resolve=True)
            assert resolved["experiment_name"] == experiment
            assert resolved["method"]["name"] in method_names()
            assert resolved["model"]["name"] in model_names()


def test_quick_seeds_are_fewer_than_paper_seeds():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        quick = compose(
            "train", overrides=["experiment=fig4_arp", "profile=quick"], return_hydra_config=True
        )
        paper = compose(
            "train", overrides=["experiment=fig4_arp", "profile=paper"], return_hydra_config=True
        )
    assert _sweep_values(quick)["seed"] == ["0"] and _sweep_values(paper)["seed"] == ["0", "1", "2"]


def test_every_key_is_commented():
    """Each line that sets a key in conf/ (not under hydra.sweeper.params) carries a comment,
    or the key is a group of commented keys."""
    missing = []
    for path in sorted(Path(CONF_DIR).rglob("*.yaml")):
        in_params = False
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("params:"):
                in_params = True
                continue
            if in_params:
                continue
            if not stripped or stripped.startswith("#") or stripped.startswith("- "):
                continue
            if re.match(r"^[\w+.@/-]+:\s*$", stripped) or stripped.startswith(
                ("defaults:", "hydra:", "sweeper:")
            ):
                continue  # a block header
            if "#" not in stripped and not re.match(r"^\w+: \{.*\}$", stripped) and ":" in stripped:
                missing.append(f"{path.relative_to(CONF_DIR)}:{lineno}: {stripped}")
    assert not missing, "uncommented keys:\n" + "\n".join(missing)


def test_every_make_target_names_real_experiments_and_reports():
    """scripts/reproduce.py (make table1 / fig<N> / figures) only names experiments that exist and
    reports that ijr-report knows."""
    import importlib.util

    from ijr.report import REPORTS

    spec = importlib.util.spec_from_file_location(
        "reproduce", CONF_DIR.parent / "scripts" / "reproduce.py"
    )
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    for target, (always, paper_only, reports) in reproduce.TARGETS.items():
        assert set(always + paper_only) <= set(EXPERIMENTS), target
        assert reports and all(name in REPORTS for name, *_ in reports), target
    assert set(reproduce.FIGURES + reproduce.FIGURES_PAPER_ONLY) <= set(reproduce.TARGETS)
