"""The probe-group registry (ijr.probes.groups) and the one source of probe defaults
(ijr.probes.config.ProbeConfig): the README table, conf/probes/none.yaml, config validation and
dispatch all come from them (issue 18, items 1-2)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose_cfg
from ijr.probes import generate, groups
from ijr.probes.config import ARPConfig, ProbeConfig, parse_probe_config
from ijr.probes.groups import GroupResult, Metric, ProbeGroup
from ijr.probes.measure import Measurement, ProbeMeasurer, ProbeState

# sha256 of the resolved `probes` node (json, sorted keys) before the defaults moved to Python:
# the command line must keep resolving to exactly these, so no run key changes.
PROBES_NODE_HASHES = {
    "probes=all": "c0f454fcaa51",
    "probes=basic": "d3f1bf3f2048",
    "probes=none": "25193ab53d24",
    "experiment=fig4_arp": "886814cdfdac",
    "experiment=p004_fig3_gram": "de289dbb69b4",
}


def _probes_node(override: str) -> dict:
    return OmegaConf.to_container(compose_cfg(override).probes, resolve=True)


# ------------------------------------------------------------------ generated files
def test_readme_table_and_none_yaml_are_generated_from_the_registry():
    """README's probe-metrics block and conf/probes/none.yaml equal what the registry and
    ProbeConfig give (`python -m ijr.probes.generate` rewrites them)."""
    for path, text in generate.expected().items():
        assert path.read_text() == text, f"{path} is stale: python -m ijr.probes.generate"
    assert generate.main(["--check"]) == 0


def test_the_readme_block_lists_every_registered_metric_and_group():
    block = groups.metrics_block()
    for group in groups.GROUPS.values():
        assert f"| `{group.name}` | {group.kind} |" in block
        for metric in group.metrics:
            assert f"| `{metric.name}` | `{group.name}` |" in block


# ------------------------------------------------------------------ one source of defaults
def test_python_defaults_equal_the_composed_default_probes_config():
    """A notebook's ProbeConfig() and the command line's default (probes=none) are the same."""
    assert parse_probe_config(compose_cfg().probes) == ProbeConfig()
    assert parse_probe_config(compose_cfg("probes=none").probes) == ProbeConfig()


def test_the_yaml_presets_state_only_their_differences():
    base = ProbeConfig()
    assert parse_probe_config(compose_cfg("probes=basic").probes) == dataclasses.replace(
        base, name="basic"
    )
    expected_all = dataclasses.replace(
        base,
        name="all",
        expensive=("sharpness", "gauss_newton", "rho_b", "io_jacobian", "gen_gap", "subspace"),
        track_examples=8,
        arp=ARPConfig(enabled=True),
    )
    assert parse_probe_config(compose_cfg("probes=all").probes) == expected_all
    assert expected_all.rho_b_batches == 16  # the value command-line runs always had


@pytest.mark.parametrize("override", sorted(PROBES_NODE_HASHES))
def test_the_resolved_probes_config_is_unchanged(override):
    node = json.dumps(_probes_node(override), sort_keys=True)
    assert hashlib.sha256(node.encode()).hexdigest()[:12] == PROBES_NODE_HASHES[override]


def test_unknown_probe_keys_are_one_line_errors_naming_the_key():
    with pytest.raises(ValueError, match=r"unknown key\(s\) probes\.rho_b_batch\b") as err:
        parse_probe_config({"name": "all", "rho_b_batch": 4})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"probes\.arp\.enable\b"):
        parse_probe_config({"arp": {"enable": True}})


def test_group_lists_are_checked_against_the_registry():
    cfg = parse_probe_config({"name": "all", "expensive": ["subspace"]})
    assert cfg.measures("subspace") and cfg.measures("weights") and not cfg.measures("margins")
    assert not dataclasses.replace(cfg, name="none").measures("subspace")
    with pytest.raises(ValueError, match="unknown probe group 'subspaces'"):
        cfg.measures("subspaces")
    with pytest.raises(ValueError, match="probes.cheap must be a list drawn from"):
        parse_probe_config({"name": "basic", "cheap": ["sharpness"]})  # expensive, not cheap
    with pytest.raises(ValueError, match="probes.expensive must be a list drawn from"):
        parse_probe_config({"name": "all", "expensive": ["hessian"]})


# ------------------------------------------------------------------ the registry
def test_registry_order_respects_uses_and_every_output_is_a_measurement_field():
    order = list(groups.GROUPS)
    fields = {f.name for f in dataclasses.fields(Measurement)}
    for group in groups.GROUPS.values():
        for other in (*group.uses, *group.needs):
            assert order.index(other) < order.index(group.name), (group.name, other)
        for out in group.outputs:
            assert out.field in fields, (group.name, out.field)


def test_register_rejects_duplicates_unknown_dependencies_and_metric_clashes():
    def fn(ctx, uses):
        return GroupResult()

    with pytest.raises(ValueError, match="registered twice"):
        groups.register(ProbeGroup("weights", "cheap", "x", (), fn))
    with pytest.raises(ValueError, match="not registered before it"):
        groups.register(ProbeGroup("new_a", "cheap", "x", (), fn, uses=("later",)))
    with pytest.raises(ValueError, match="is 'sharpness'"):
        groups.register(ProbeGroup("new_b", "cheap", "x", (Metric("probe/sharpness", "x"),), fn))
    assert "new_a" not in groups.GROUPS and "new_b" not in groups.GROUPS


@pytest.fixture
def extra_group():
    """A group registered for one test (then removed): a new quantity is one declaration."""

    def fn(ctx, uses):
        lam = uses["jacobian"].metrics["probe/jacobian_norm_sq"] if uses["jacobian"] else -1.0
        return GroupResult({"probe/extra": float(ctx.lr) + lam})

    group = groups.register(
        ProbeGroup(
            "extra",
            "cheap",
            "a test quantity",
            (Metric("probe/extra", "eta + ||<J>||^2"),),
            fn,
            uses=("jacobian",),
            needs=("weights",),
        )
    )
    try:
        yield group
    finally:
        del groups.GROUPS["extra"]


def test_a_new_group_is_validated_dispatched_and_documented_from_its_declaration(extra_group):
    with pytest.raises(ValueError, match="the probe group extra needs the probe group.s. weights"):
        parse_probe_config({"name": "basic", "cheap": ["extra", "jacobian"]})
    cfg = parse_probe_config({"name": "basic", "cheap": ["weights", "jacobian", "extra"]})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    out = ProbeMeasurer(cfg, num_outputs=3).measure(
        model,
        torch.nn.functional.cross_entropy,
        [(x, y)],
        lr=0.5,
        expensive=False,
        state=ProbeState(),
        generator=torch.Generator().manual_seed(0),
    )
    jac = out.metrics["probe/jacobian_norm_sq"]
    assert out.metrics["probe/extra"] == pytest.approx(0.5 + jac)  # jacobian's result passed in
    assert "| `probe/extra` | `extra` | eta + \\|\\|<J>\\|\\|^2 |" in groups.metrics_block()


def test_every_metric_a_full_measurement_writes_is_declared_by_its_group():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 3, generator=g), torch.arange(12) % 3
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]
    expensive = [n for n in groups.names("expensive") if not groups.GROUPS[n].one_output_only]
    cfg = parse_probe_config(
        {"name": "all", "cheap": list(groups.names("cheap")), "expensive": expensive}
        | {"track_examples": 2, "rho_b_batches": 2, "sharpness": {"max_iter": 20}}
    )
    out = ProbeMeasurer(cfg, num_outputs=3).measure(
        model,
        torch.nn.functional.cross_entropy,
        batches,
        lr=0.1,
        expensive=True,
        state=ProbeState(theta0=[p.detach().clone() for p in model.parameters()]),
        generator=torch.Generator().manual_seed(0),
        rho_b_batches=batches,
        evaluate=lambda b: (0.5, 0.5),
        test_batches=batches,
    )
    every = {m.name for m in groups.EVERY_PROBE}
    for name in out.metrics:
        assert name in every or groups.group_of_metric(name) is not None, name
    written = {groups.group_of_metric(n) for n in out.metrics} - {None}
    assert written == set(cfg.cheap) - {"trajectory"} | set(expensive)
    assert out.sketch is not None and out.margins is not None and out.eigvec_heatmap is not None


def test_results_are_passed_only_when_the_used_group_ran():
    """lambda_hat needs the jacobian group's ||<J>||^2 and grad_hessian_cos the sharpness
    group's eigenvector: without them those metrics are absent, the rest is measured."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    x, y = torch.randn(9, 3), torch.arange(9) % 3
    cfg = parse_probe_config({"name": "all", "cheap": ["weights"], "expensive": ["subspace"]})
    cfg = dataclasses.replace(cfg, expensive=("sharpness", "subspace"))
    kwargs = dict(
        lr=0.1, expensive=True, state=ProbeState(), generator=torch.Generator().manual_seed(0)
    )
    m = ProbeMeasurer(cfg, num_outputs=3).measure(
        model, torch.nn.functional.cross_entropy, [(x, y)], **kwargs
    )
    assert "probe/sharpness" in m.metrics and "probe/lambda_hat" not in m.metrics
    assert "probe/grad_hessian_cos" in m.metrics
    cfg = dataclasses.replace(cfg, expensive=("subspace",))
    m = ProbeMeasurer(cfg, num_outputs=3).measure(
        model, torch.nn.functional.cross_entropy, [(x, y)], **kwargs
    )
    assert "probe/grad_hessian_cos" not in m.metrics and "probe/random_direction_cos" in m.metrics


def test_one_output_rules_come_from_the_registry():
    undefined = set(groups.undefined_for_one_output())
    assert {"probe/impurity_mean", "probe/jacobian_ones_sq", "probe/io_jacobian_max"} <= undefined
    assert "probe/jacobian_norm_sq" not in undefined and "probe/gram_max" not in undefined
    with pytest.raises(ValueError, match="lists gram .* but the model has 3 outputs"):
        ProbeMeasurer(parse_probe_config({"name": "all", "expensive": ["gram"]}), num_outputs=3)


def test_plot_labels_name_registered_metrics():
    """ijr.reporting.naming keeps the plot labels; every probe metric it labels is registered."""
    from ijr.reporting.naming import METRIC_COLORS, METRIC_LABELS

    every = {m.name for m in groups.EVERY_PROBE}
    for name in [*METRIC_LABELS, *METRIC_COLORS]:
        if name.startswith("probe/"):
            assert name in every or groups.group_of_metric(name), name


def test_the_registry_config_and_measurement_import_without_lightning():
    code = (
        "import sys, ijr.probes.groups, ijr.probes.config, ijr.probes.measure; "
        "print(any(m.split('.')[0] in ('pytorch_lightning', 'lightning') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
