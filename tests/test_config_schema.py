"""One source of defaults (ijr.schema): for every file of the method, adversary, trainer, optim,
sched and data groups, the composed YAML equals the Python schema's defaults (and the method constructors'
keyword defaults); an unknown key is one line and a non-zero exit."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import CONF_DIR, REPO, compose_cfg, tiny_overrides
from ijr.data.config import COMMON_KEYS, DATASET_KEYS, parse_data_config
from ijr.methods import METHODS
from ijr.methods.adversarial import PRESETS, AdversaryConfig
from ijr.methods.base import OptimConfig, ScheduleConfig
from ijr.schema import defaults
from ijr.trainer_config import TrainerConfig


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _composed(group: str, name: str, *extra: str) -> dict:
    cfg = compose_cfg(f"{group}={name}", *extra)
    return OmegaConf.to_container(cfg[group], resolve=True)


def test_every_method_file_has_a_registered_method_and_back():
    assert _names("method") == sorted(METHODS)


@pytest.mark.parametrize("name", _names("method"))
def test_method_yaml_defaults_equal_the_python_defaults(name):
    composed = _composed("method", name)
    assert composed.pop("name") == name
    cls = METHODS[name]
    assert composed == defaults(cls.Params)
    # the constructor's keyword defaults are the schema's too
    signature = inspect.signature(cls.__init__).parameters
    for key, value in defaults(cls.Params).items():
        assert signature[key].default == value, (name, key)


@pytest.mark.parametrize("name", _names("adversary"))
def test_adversary_yaml_defaults_equal_the_python_defaults(name):
    composed = _composed("adversary", name)
    expected = {**defaults(AdversaryConfig), **PRESETS[name], "name": name}
    assert {k: expected[k] for k in composed} == composed
    if name != "none":  # none.yaml holds only its name: nothing else is used
        assert set(composed) == set(expected)
    assert vars(AdversaryConfig.parse(composed)) == expected


@pytest.mark.parametrize("name", _names("trainer"))
def test_trainer_yaml_defaults_equal_the_python_defaults(name):
    composed = _composed("trainer", name)
    assert composed == defaults(TrainerConfig)
    assert vars(TrainerConfig.parse(composed)) == defaults(TrainerConfig)


@pytest.mark.parametrize(
    ("group", "name", "schema"),
    [("optim", n, OptimConfig) for n in _names("optim")]
    + [("sched", n, ScheduleConfig) for n in _names("sched")],
)
def test_optim_and_sched_yaml_defaults_equal_the_python_defaults(group, name, schema):
    composed = _composed(group, name)
    # each sched file holds the keys its schedule uses; the others keep the schema's defaults
    assert {k: defaults(schema)[k] for k in composed if k != "name"} == {
        k: v for k, v in composed.items() if k != "name"
    }
    assert vars(schema.parse(composed)) == {**defaults(schema), **composed}


@pytest.mark.parametrize("name", _names("data"))
def test_data_yaml_defaults_equal_the_python_defaults(name, tmp_path):
    root = {"root": str(tmp_path)} if name == "imagefolder" else {}
    extra = [f"data.root={tmp_path}"] if root else []
    composed = _composed("data", name, *extra)
    # the YAML lists every key the dataset uses, and nothing else
    assert set(composed) == set(COMMON_KEYS) | set(DATASET_KEYS[name])
    from_yaml = parse_data_config(composed).as_dict()
    from_python = parse_data_config({"name": name, **root}).as_dict()
    assert from_yaml == from_python


# ------------------------------------------------------------------- unknown keys
UNKNOWN = [
    ("method", "method=sam", "rhoo", "unknown method key(s) rhoo; valid keys for method=sam: rho"),
    ("adversary", "adversary=at", "epss", "unknown adversary key(s) epss"),
    ("trainer", "trainer=default", "max_stepz", "unknown trainer key(s) max_stepz"),
    ("data", "data=digits", "batch_sise", "unknown data key(s) batch_sise"),
    ("optim", "optim=sgd", "lrr", "unknown optim key(s) lrr"),
]


@pytest.mark.parametrize(("group", "choice", "key", "message"), UNKNOWN)
def test_an_unknown_key_is_one_line_from_train(tmp_path, group, choice, key, message):
    from ijr.train import train

    cfg = compose_cfg(*tiny_overrides(tmp_path, choice))
    with open_dict(cfg):
        cfg[group][key] = 1
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        train(cfg)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.rglob("summary.json"))  # rejected before any run directory


@pytest.mark.parametrize(("group", "choice", "key", "message"), UNKNOWN)
def test_an_unknown_key_is_one_line_and_exit_2_from_the_command_line(
    tmp_path, group, choice, key, message
):
    # `+group.key=1` on the command line is refused by ijr.overrides first; run Hydra's entry
    # directly so the key reaches the schema layer (as one from an experiment file would).
    args = [*tiny_overrides(tmp_path, choice), f"+{group}.{key}=1"]
    code = f"import sys; from ijr.train import _hydra_entry; sys.argv = {['ijr-train', *args]!r}; _hydra_entry()"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
        OMP_NUM_THREADS="1",
        HYDRA_FULL_ERROR="0",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=240
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ijr-train: error: ") and message in lines[0]


def test_a_bad_value_names_the_key(tmp_path):
    from ijr.train import train

    for override, message in [
        ("method.rho=-1", "method.rho must be a finite number >= 0"),
        ("trainer.eval_train=maybe", "trainer.eval_train must be true or false"),
        ("adversary.bn_mode=test", "adversary.bn_mode must be train or eval"),
        ("optim.momentum=1.5", "optim.momentum must be in [0, 1)"),
    ]:
        choice = "adversary=at" if override.startswith("adversary") else "method=sam"
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            train(compose_cfg(*tiny_overrides(tmp_path, choice, override)))
        assert "\n" not in str(info.value)
