"""Every experiment of conf/experiment/ runs for real: one training step (quick profile, the first
point of each sweep axis) on a fake CIFAR-10 written in torchvision's format, every probe group
and method it configures included, at a tiny size."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONF_DIR
from ijr.data.fake import make_fake_cifar

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TINY = (
    "data.physical_batch_size=8",
    "trainer.max_steps=1",
    "trainer.max_epochs=null",
    "trainer.until_loss=null",
    "trainer.eval_every_n_steps=null",
    "trainer.checkpoint_every_n_steps=null",
    "trainer.progress_bar=false",
    "probes.size=8",
    "probes.physical_batch_size=8",
    "probes.sharpness.max_iter=2",
    "probes.jacobian.max_iter=2",
    "probes.rho_b_batches=2",
)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_data")
    make_fake_cifar(root, n_train=160, n_test=80, seed=0)  # >= 8 per class: two-class subsets
    make_fake_cifar(root, n_train=32, n_test=16, num_classes=100, seed=0)
    return root


def _first_point(experiment: str) -> list[str]:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"experiment={experiment}", "profile=quick"],
            return_hydra_config=True,
        )
        params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) or {}
        batch = cfg.data.batch_size
        on_disk = "root" in cfg.data  # bundled / generated sets (points) have no root to fake
    point = [f"{k}={str(v).split(',')[0].strip()}" for k, v in params.items()]
    point += [] if batch == "full" else ["data.batch_size=8"]
    return point, on_disk


# the fake dataset's location and size; a generated set (paper 002's 8 points) is used whole
ON_DISK = ("data.subset=16", "data.test_subset=8")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_one_step(experiment, fake_root, tmp_path):
    from ijr.train import train

    point, on_disk = _first_point(experiment)
    overrides = [f"experiment={experiment}", "profile=quick", *point, f"paths.runs={tmp_path}"]
    overrides += [f"data.root={fake_root}", *ON_DISK] if on_disk else []
    overrides += TINY
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if cfg.get("adversary") is not None and cfg.adversary.name != "none":
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=overrides
                + ["adversary.steps=1", "adversary.eval_steps=1", "adversary.eval_size=4"],
            )
    summary = train(cfg)
    assert summary["status"] == "completed", summary.get("error")
    assert summary["steps"] == 1 and summary["experiment"] == experiment
