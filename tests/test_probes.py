"""Curvature probes (ijr.probes): schedule, ARP phases, config, non-perturbation, a real run."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from conftest import compose_cfg, tiny_overrides
from ijr.probes.arp import FALLBACK_KIND, ARPTracker
from ijr.probes.config import parse_probe_config
from ijr.probes.examples import COLUMNS, ProbeExamplesCSV
from ijr.probes.schedule import ProbeSchedule, log_spaced_steps


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- schedule
def test_schedule_every_k_and_expensive_cadence():
    s = ProbeSchedule(total_steps=30, every_n_steps=5, expensive_every_n_steps=10)
    assert s.probe_steps() == [0, 5, 10, 15, 20, 25, 30]
    assert s.expensive_steps() == [0, 10, 20, 30]
    assert all(s.is_probe_step(t) for t in s.expensive_steps())


def test_schedule_listed_steps_get_everything():
    s = ProbeSchedule(total_steps=100, at_steps=[3, 7, 50])
    assert s.probe_steps() == [3, 7, 50]
    assert s.expensive_steps() == [3, 7, 50]
    s = ProbeSchedule(total_steps=100, every_n_steps=40, at_steps=[3])
    assert s.probe_steps() == [0, 3, 40, 80]
    assert s.expensive_steps() == [3]


def test_schedule_log_spaced():
    assert log_spaced_steps(10, 1000) == [0, 1, 2, 6, 13, 32, 75, 178, 422, 1000]
    assert log_spaced_steps(2, 7) == [0, 7]
    assert log_spaced_steps(5, 4) == [0, 1, 2, 3, 4]
    for total in (1, 2, 9, 37, 100, 1234):
        for n in range(2, min(total + 1, 40) + 1):
            steps = log_spaced_steps(n, total)
            assert len(steps) == n and steps[0] == 0 and steps[-1] == total
            assert all(b > a for a, b in zip(steps, steps[1:], strict=False))
    s = ProbeSchedule(total_steps=1000, log_spaced=10)
    assert s.probe_steps() == s.expensive_steps() == log_spaced_steps(10, 1000)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(total_steps=10), "schedule is empty"),
        (dict(total_steps=10, every_n_steps=0), "every_n_steps"),
        (dict(total_steps=10, at_steps=[-1]), "at_steps"),
        (dict(total_steps=3, log_spaced=5), "more points"),
        (dict(total_steps=3, log_spaced=1), "log_spaced"),
    ],
)
def test_schedule_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProbeSchedule(**kwargs)


# --------------------------------------------------------------------------- ARP
def _feed(tracker, series):
    return [tracker.update(step, **values) for step, values in series]


def test_arp_phases_and_markers_on_a_synthetic_series():
    eta = 0.1  # 2/eta = 20
    series = [
        (
            0,
            dict(
                sharpness=2.0,
                stability_threshold=20.0,
                sgd_threshold=10.0,
                impurity_mean=0.10,
                jacobian_norm_sq=1.0,
            ),
        ),
        # cheap-only probe: no sharpness, cannot start the ARP; low impurity, but phase I
        (5, dict(stability_threshold=20.0, impurity_mean=0.20, jacobian_norm_sq=2.0)),
        (
            10,
            dict(
                sharpness=8.0,
                stability_threshold=20.0,
                sgd_threshold=10.0,
                impurity_mean=0.5,
                jacobian_norm_sq=3.0,
            ),
        ),
        # 9.0 >= 0.9 * 2 rho_B / eta = 9.0: reaches near the SGD threshold -> ARP starts here
        (
            20,
            dict(
                sharpness=9.0,
                stability_threshold=20.0,
                sgd_threshold=10.0,
                impurity_mean=0.2,
                jacobian_norm_sq=4.0,
            ),
        ),
        (25, dict(stability_threshold=20.0, impurity_mean=0.6, jacobian_norm_sq=4.5)),
        # sharpness falls back below the threshold: still phase II (phases never go back)
        (
            30,
            dict(
                sharpness=1.0,
                stability_threshold=20.0,
                sgd_threshold=10.0,
                impurity_mean=0.3,
                jacobian_norm_sq=5.0,
            ),
        ),
        (35, dict(stability_threshold=20.0, impurity_mean=0.24, jacobian_norm_sq=6.5)),
        (
            40,
            dict(
                sharpness=30.0,
                stability_threshold=20.0,
                sgd_threshold=10.0,
                impurity_mean=0.6,
                jacobian_norm_sq=9.0,
            ),
        ),
    ]
    assert eta == 2 / 20.0
    tracker = ARPTracker(threshold="sgd", reach_fraction=0.9, impurity_level=0.25)
    # step 20 has impurity 0.2 < 0.25 but the end must come at a LATER probe than the start
    assert _feed(tracker, series) == [1, 1, 1, 2, 2, 2, 3, 3]
    assert tracker.markers == {
        "arp_start_step": 20,
        "arp_start_sharpness": 9.0,
        "arp_start_threshold": 10.0,
        "arp_start_threshold_kind": "sgd",
        "arp_end_step": 35,
        "arp_end_impurity_mean": 0.24,
        "arp_end_jacobian_norm_sq": 6.5,
    }


def test_arp_stability_threshold_and_fallback_when_rho_b_missing():
    series = [
        (0, dict(sharpness=5.0, stability_threshold=20.0, sgd_threshold=5.0, impurity_mean=0.4)),
        (10, dict(sharpness=19.0, stability_threshold=20.0, sgd_threshold=5.0, impurity_mean=0.4)),
        (
            20,
            dict(
                sharpness=20.0,
                stability_threshold=20.0,
                sgd_threshold=5.0,
                impurity_mean=0.1,
                jacobian_norm_sq=7.0,
            ),
        ),
    ]
    stability = ARPTracker(threshold="stability", reach_fraction=1.0)
    assert _feed(stability, series) == [1, 1, 2]
    assert (
        stability.markers["arp_start_step"] == 20
        and stability.markers["arp_start_threshold"] == 20.0
    )
    assert stability.markers["arp_start_threshold_kind"] == "stability"
    assert stability.markers["arp_end_step"] is None
    # with the SGD threshold the same series starts at step 0 (5 >= 1.0 * 5) and ends at step 20
    sgd = ARPTracker(threshold="sgd", reach_fraction=1.0)
    assert _feed(sgd, series) == [2, 2, 3]
    assert sgd.markers["arp_end_step"] == 20 and sgd.markers["arp_end_jacobian_norm_sq"] == 7.0
    # rho_B not measured (sgd_threshold None / NaN): 2/eta is used, and the markers say so
    no_rho = [(s, {**v, "sgd_threshold": None if s else float("nan")}) for s, v in series]
    fallback = ARPTracker(threshold="sgd", reach_fraction=0.95)
    assert _feed(fallback, no_rho) == [1, 2, 3]
    assert fallback.markers["arp_start_step"] == 10
    assert fallback.markers["arp_start_threshold"] == 20.0
    assert fallback.markers["arp_start_threshold_kind"] == FALLBACK_KIND


def test_arp_does_not_end_before_the_impurity_has_reached_the_level():
    """Figure 5 marks the end where <lambda^(1)> DEcreases below 0.25: an impurity that starts at
    ~1/C and never reaches 0.25 ends nothing (found on a quick-profile Figure 5 run, where every
    ARP 'ended' one probe after it started)."""
    low = [
        (0, dict(sharpness=1.0, stability_threshold=20.0, impurity_mean=0.11)),
        (10, dict(sharpness=25.0, stability_threshold=20.0, impurity_mean=0.15)),
        (20, dict(sharpness=22.0, stability_threshold=20.0, impurity_mean=0.22)),
        (30, dict(sharpness=21.0, stability_threshold=20.0, impurity_mean=0.20)),
    ]
    tracker = ARPTracker(threshold="stability", reach_fraction=1.0, impurity_level=0.25)
    assert _feed(tracker, low) == [1, 2, 2, 2]
    assert tracker.markers["arp_end_step"] is None
    # the impurity then rises above the level and falls back below it: the ARP ends there
    later = [
        (40, dict(impurity_mean=0.31, jacobian_norm_sq=5.0)),
        (50, dict(impurity_mean=0.26, jacobian_norm_sq=6.0)),
        (60, dict(impurity_mean=0.24, jacobian_norm_sq=7.0)),
    ]
    assert _feed(tracker, later) == [2, 2, 3]
    assert tracker.markers["arp_end_step"] == 60
    assert tracker.markers["arp_end_jacobian_norm_sq"] == 7.0


def test_arp_state_round_trip_and_order():
    tracker = ARPTracker(threshold="stability", reach_fraction=0.5)
    tracker.update(0, sharpness=11.0, stability_threshold=20.0, impurity_mean=0.5)
    other = ARPTracker(threshold="stability", reach_fraction=0.5)
    other.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert other.phase == 2 and other.markers == tracker.markers
    assert other.update(5, impurity_mean=0.1, jacobian_norm_sq=3.0) == 3
    with pytest.raises(ValueError, match="step order"):
        other.update(4, impurity_mean=0.1)
    with pytest.raises(ValueError, match="threshold"):
        ARPTracker(threshold="edge")
    with pytest.raises(ValueError, match="reach_fraction"):
        ARPTracker(reach_fraction=1.5)


# --------------------------------------------------------------------------- config
def test_probe_configs_compose_and_validate():
    for name in ("none", "basic", "all"):
        cfg = compose_cfg(f"probes={name}", "probes.every_n_steps=7", "probes.size=0.2")
        pc = parse_probe_config(cfg.probes)
        assert pc.name == name and pc.every_n_steps == 7 and pc.size == 0.2
    basic = parse_probe_config(compose_cfg("probes=basic").probes)
    assert basic.expensive == () and not basic.arp.enabled
    full = parse_probe_config(compose_cfg("probes=all").probes)
    assert set(full.expensive) == {
        "sharpness",
        "gauss_newton",
        "rho_b",
        "io_jacobian",
        "gen_gap",
        "subspace",
    }
    assert full.arp.enabled and full.sharpness.method == "lanczos"
    for bad, match in [
        ({"name": "all", "size": 1.5}, "probes.size"),
        ({"name": "all", "size": 0}, "probes.size"),
        ({"name": "all", "bn_mode": "frozen"}, "bn_mode"),
        ({"name": "all", "dtype": "float16"}, "dtype"),
        ({"name": "all", "cheap": ["weights", "hessian"]}, "probes.cheap"),
        ({"name": "all", "every_n": 3}, "unknown key"),
        ({"name": "all", "arp": {"enabled": True}, "expensive": []}, "arp.enabled"),
        ({"name": "all", "expensive": ["rho_b"], "rho_b_batches": 1}, "rho_b_batches"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_probe_config(bad)


def test_probe_examples_csv_truncates_like_metrics_csv(tmp_path):
    path = tmp_path / "probe_examples.csv"
    writer = ProbeExamplesCSV(path)
    writer.truncate_from(0)
    writer.append(0, [0.5, 0.6], [0.25, 0.2], [0.5, 0.1])
    writer.append(10, [0.7, 0.8], [0.2, 0.15], [0.7, 0.8])
    rows = read_csv(path)
    assert list(rows[0]) == list(COLUMNS) and len(rows) == 4
    writer.truncate_from(10)
    assert [r["step"] for r in read_csv(path)] == ["0", "0"]
    writer.truncate_from(0)
    assert read_csv(path) == []


# --------------------------------------------------------------------------- one measurement
def _bn_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(12, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 4),
    )


def _probe_set(n=24, chunk=8, outputs=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, generator=g)
    y = torch.randint(0, outputs, (n,), generator=g)
    return [(x[i : i + chunk], y[i : i + chunk]) for i in range(0, n, chunk)]


def _measurer(outputs=4, **overrides):
    from ijr.probes.config import EXPENSIVE_GROUPS
    from ijr.probes.measure import ProbeMeasurer

    raw = {
        "name": "all",
        "track_examples": 3,
        "rho_b_batches": 2,
        # gram (paper 004) needs a one-output model: tested in tests/test_p004_*.py
        "expensive": [g for g in EXPENSIVE_GROUPS if g != "gram"],
        "sharpness": {"max_iter": 30},
        "jacobian": {"max_iter": 30},
        **overrides,
    }
    return ProbeMeasurer(parse_probe_config(raw), num_outputs=outputs)


def _measure(measurer, model, batches, loss_fn=None, **kwargs):
    from ijr.probes.measure import ProbeState

    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    state = ProbeState(theta0=[p.detach().clone() + 0.1 for p in model.parameters()])
    return measurer.measure(
        model,
        loss_fn,
        batches,
        lr=0.1,
        expensive=True,
        state=state,
        generator=torch.Generator().manual_seed(0),
        rho_b_batches=batches[:2],
        evaluate=lambda b: (0.5, 0.75),
        test_batches=batches,
        **kwargs,
    )


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_measurement_leaves_model_grad_modes_buffers_and_global_rng_alone(bn_mode):
    model = _bn_model()
    batches = _probe_set()
    model.train()
    model[4].eval()  # a mixed train/eval state must come back exactly
    with torch.no_grad():
        model[2].running_mean.uniform_(-1, 1)
    loss = torch.nn.functional.cross_entropy(model(batches[0][0]), batches[0][1])
    loss.backward()
    before_params = [p.detach().clone() for p in model.parameters()]
    before_grads = [p.grad.clone() for p in model.parameters()]
    before_buffers = [b.clone() for b in model.buffers()]
    before_flags = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    result = _measure(_measurer(bn_mode=bn_mode), model, batches)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, p) for a, p in zip(before_params, model.parameters(), strict=True))
    assert all(
        torch.equal(a, p.grad) for a, p in zip(before_grads, model.parameters(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b in zip(before_buffers, model.buffers(), strict=True))
    assert [m.training for m in model.modules()] == before_flags
    m = result.metrics
    for name in (
        "probe/sharpness",
        "probe/sharpness_gn",
        "probe/rho_b",
        "probe/impurity_mean",
        "probe/jacobian_norm_sq",
        "probe/io_jacobian_max",
        "probe/dist_from_init",
    ):
        assert math.isfinite(m[name]), name
    assert m["probe/gen_gap"] == 0.0 and m["probe/gen_gap_loss"] == 0.0
    assert m["probe/stability_threshold"] == pytest.approx(20.0)
    assert m["probe/sgd_threshold"] == pytest.approx(2 * m["probe/rho_b"] / 0.1)
    assert m["probe/lambda_hat"] == pytest.approx(
        m["probe/sharpness"] / m["probe/jacobian_norm_sq"]
    )
    assert m["probe/gini_lower_mean"] <= m["probe/impurity_mean"] + 1e-6
    assert m["probe/impurity_mean"] <= m["probe/gini_upper_mean"] + 1e-6
    assert m["probe/impurity_q25"] <= m["probe/impurity_q75"]
    assert len(result.examples[0]) == 3 and result.warm_vector is not None
    # subspace group (App. D): cosines and alignments in [0, 1], the (C, C) Figure 8 heatmap
    assert 0.0 <= m["probe/grad_hessian_cos"] <= 1.0
    assert -1.0 <= m["probe/grad_margin_cos"] <= 1.0
    assert 1 <= m["probe/margin_classes_present"] <= 4
    for name in ("probe/grad_subspace_alignment", "probe/hessian_subspace_alignment"):
        assert (name in m) == (m["probe/margin_classes_present"] == 4)
        assert name not in m or 0.0 <= m[name] <= 1.0
    assert result.eigvec_heatmap.shape == (4, 4)


def test_measurement_does_not_depend_on_chunk_size_and_float64_matches():
    model = _bn_model()
    model.train()
    a = _measure(_measurer(bn_mode="eval"), model, _probe_set(chunk=24)).metrics
    b = _measure(_measurer(bn_mode="eval"), model, _probe_set(chunk=5)).metrics
    c = _measure(_measurer(bn_mode="eval", dtype="float64"), model, _probe_set(chunk=8)).metrics
    assert next(model.parameters()).dtype == torch.float32
    for name in (
        "probe/impurity_mean",
        "probe/impurity_q75",
        "probe/jacobian_norm_sq",
        "probe/jacobian_fro_sq",
        "probe/logit_norm",
        "probe/sharpness",
        "probe/sharpness_gn",
        "probe/io_jacobian_max",
        "probe/grad_margin_cos",
        "probe/margin_classes_present",
    ):
        assert b[name] == pytest.approx(a[name], rel=2e-3), name
        assert c[name] == pytest.approx(a[name], rel=2e-3), name


def test_one_output_mse_model_skips_the_softmax_metrics():
    from ijr.methods.base import loss_function
    from ijr.probes.measure import undefined_for_one_output

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    )
    batches = [(x, (2.0 * (y % 2) - 1.0).float().unsqueeze(1)) for x, y in _probe_set()]
    measurer = _measurer(outputs=1, track_examples=0)
    result = _measure(measurer, model, batches, loss_fn=loss_function("mse"))
    m = result.metrics
    assert not set(undefined_for_one_output()) & set(m)
    for name in (
        "probe/sharpness",
        "probe/sharpness_gn",
        "probe/jacobian_norm_sq",
        "probe/weight_norm",
    ):
        assert math.isfinite(m[name]), name
    # with one output, ||<J>||_F = ||<J>||
    assert m["probe/jacobian_fro_sq"] == pytest.approx(m["probe/jacobian_norm_sq"], rel=1e-4)


# --------------------------------------------------------------------------- through train(cfg)
CONTRACT_METRICS = (
    "probe/sharpness",
    "probe/sharpness_gn",
    "probe/stability_threshold",
    "probe/rho_b",
    "probe/sgd_threshold",
    "probe/impurity_mean",
    "probe/impurity_q25",
    "probe/impurity_q75",
    "probe/gini_lower_mean",
    "probe/gini_upper_mean",
    "probe/jacobian_norm_sq",
    "probe/jacobian_fro_sq",
    "probe/jacobian_ones_sq",
    "probe/lambda_hat",
    "probe/weight_norm",
    "probe/logit_norm",
    "probe/logit_sum_abs",
    "probe/dist_from_init",
    "probe/output_layer_norm",
    "probe/io_jacobian_max",
    "probe/gen_gap",
    "probe/grad_hessian_cos",
    "probe/grad_margin_cos",
    "probe/margin_classes_present",
    "arp/phase",
)
EXPENSIVE_METRICS = (
    "probe/sharpness",
    "probe/sharpness_gn",
    "probe/rho_b",
    "probe/sgd_threshold",
    "probe/lambda_hat",
    "probe/io_jacobian_max",
    "probe/gen_gap",
    "probe/grad_hessian_cos",
    "probe/grad_margin_cos",
    "probe/margin_classes_present",
)
# 3FCN on digits, SGD with momentum (so the optimizer has state to disturb), 30 steps
MOMENTUM = "optim.momentum=0.9"
PROBE_RUN = (
    MOMENTUM,
    "probes.size=64",
    "probes.physical_batch_size=32",
    "probes.every_n_steps=5",
    "probes.expensive_every_n_steps=10",
    "probes.rho_b_batches=3",
    "probes.track_examples=4",
    "probes.sharpness.max_iter=40",
)


def _run_dir(summary, runs):
    return runs / "default" / summary["run_key"]


def _final_state(summary, runs):
    ckpt = torch.load(
        _run_dir(summary, runs) / "checkpoints" / "last.ckpt",
        map_location="cpu",
        weights_only=False,
    )
    return ckpt["state_dict"], ckpt["optimizer_states"][0]["state"]


@pytest.fixture(scope="module")
def probed_runs(tmp_path_factory):
    """The same 30-step run with probes=all and with probes=none."""
    runs = tmp_path_factory.mktemp("probe_runs")
    on = train_cfg(runs, "probes=all", *PROBE_RUN)
    off = train_cfg(runs, MOMENTUM, "probes=none")
    return runs, on, off


def train_cfg(runs, *extra):
    from ijr.train import train

    return train(compose_cfg(*tiny_overrides(runs, *extra)))


def _assert_bit_identical(a, b):
    (params_a, opt_a), (params_b, opt_b) = a, b
    assert params_a.keys() == params_b.keys()
    for key in params_a:
        assert torch.equal(params_a[key], params_b[key]), key
    assert opt_a.keys() == opt_b.keys()
    for idx in opt_a:
        for name in opt_a[idx]:
            assert torch.equal(
                torch.as_tensor(opt_a[idx][name]), torch.as_tensor(opt_b[idx][name])
            ), (idx, name)


def test_probes_do_not_change_training(probed_runs):
    runs, on, off = probed_runs
    assert on["status"] == off["status"] == "completed" and on["run_key"] != off["run_key"]
    _assert_bit_identical(_final_state(on, runs), _final_state(off, runs))
    rows_on = read_csv(_run_dir(on, runs) / "metrics.csv")
    rows_off = read_csv(_run_dir(off, runs) / "metrics.csv")
    for name in ("train/loss", "test/loss"):
        assert [r[name] for r in rows_on if r[name]] == [r[name] for r in rows_off if r[name]]


def test_probe_run_logs_every_contract_metric(probed_runs):
    runs, on, _ = probed_runs
    run = _run_dir(on, runs)
    rows = read_csv(run / "metrics.csv")
    header = set(rows[0])
    assert set(CONTRACT_METRICS) <= header
    assert any(h.startswith("probe/layer_norm/") for h in header)
    probe_rows = {int(r["step"]): r for r in rows if r["probe/weight_norm"]}
    assert sorted(probe_rows) == [0, 5, 10, 15, 20, 25, 30]
    for step, row in probe_rows.items():
        names = (
            CONTRACT_METRICS if step % 10 == 0 else set(CONTRACT_METRICS) - set(EXPENSIVE_METRICS)
        )
        for name in names:
            assert math.isfinite(float(row[name])), (step, name, row[name])
        assert float(row["arp/phase"]) in (1.0, 2.0, 3.0)
        assert float(row["probe/stability_threshold"]) == pytest.approx(2 / 0.05)
        if step % 10:
            assert all(row[name] == "" for name in EXPENSIVE_METRICS), step
    assert float(probe_rows[0]["probe/dist_from_init"]) == 0.0
    assert float(probe_rows[30]["probe/dist_from_init"]) > 0.0
    summary = json.loads((run / "summary.json").read_text())
    for key in (
        "arp_start_step",
        "arp_end_step",
        "arp_end_jacobian_norm_sq",
        "arp_start_sharpness",
    ):
        assert key in summary["markers"]
    examples = read_csv(run / "probe_examples.csv")
    assert list(examples[0]) == list(COLUMNS)
    assert len(examples) == 4 * 7
    assert sorted({int(r["step"]) for r in examples}) == sorted(probe_rows)
    for r in examples:
        top, imp, true = float(r["p_top1"]), float(r["impurity"]), float(r["p_true"])
        # Theorem 4.1 (c)-(d): p_(1)(1 - p_(1)) <= lambda^(1) <= min{p_(1), 2 p_(1)(1 - p_(1))}
        assert top * (1 - top) - 1e-6 <= imp <= min(top, 2 * top * (1 - top)) + 1e-6
        assert 0.0 <= true <= top + 1e-7
    eigvecs = read_csv(run / "logit_eigvecs.csv")  # Figure 8: C x C rows per expensive probe
    assert list(eigvecs[0]) == ["step", "rank", "eigenpair", "value"]
    assert sorted({int(r["step"]) for r in eigvecs}) == [0, 10, 20, 30]
    assert len(eigvecs) == 4 * 10 * 10


def test_resumed_probe_run_matches_uninterrupted(probed_runs, tmp_path, monkeypatch):
    """Crash right after the step-20 checkpoint, run the same command again: metrics.csv (probe
    columns included, warm-started sharpness too) and probe_examples.csv equal the uninterrupted run's."""
    from ijr.callbacks import CheckpointEvery

    runs, on, _ = probed_runs
    original = CheckpointEvery.on_train_batch_end

    def crash_after_step_20(self, trainer, pl_module, outputs, batch, batch_idx):
        original(self, trainer, pl_module, outputs, batch, batch_idx)
        if trainer.global_step == 20:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(CheckpointEvery, "on_train_batch_end", crash_after_step_20)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cfg(tmp_path, "probes=all", *PROBE_RUN)
    monkeypatch.setattr(CheckpointEvery, "on_train_batch_end", original)
    resumed = train_cfg(tmp_path, "probes=all", *PROBE_RUN)
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 20
    assert resumed["markers"] == on["markers"]
    for name in ("metrics.csv", "probe_examples.csv", "logit_eigvecs.csv"):
        assert read_csv(_run_dir(resumed, tmp_path) / name) == read_csv(
            _run_dir(on, runs) / name
        ), name


def test_probes_do_not_change_training_of_a_batchnorm_model(tmp_path):
    """WRN-28-2 (BatchNorm) with bn_mode=train: BN running statistics must not move either."""
    common = (
        "model=wrn28_2",
        "data.subset=256",
        "data.batch_size=32",
        "trainer.max_steps=4",
        "trainer.eval_every_n_steps=null",
        "trainer.checkpoint_every_n_steps=null",
    )
    on = train_cfg(
        tmp_path,
        *common,
        "probes=all",
        "probes.bn_mode=train",
        "probes.size=16",
        "probes.every_n_steps=2",
        "probes.expensive_every_n_steps=4",
        "probes.expensive=[sharpness,rho_b]",
        "probes.rho_b_batches=2",
        "probes.sharpness.max_iter=5",
        "probes.jacobian.max_iter=5",
        "probes.arp.enabled=false",
    )
    off = train_cfg(tmp_path, *common, "probes=none")
    assert on["status"] == off["status"] == "completed"
    state_on, state_off = _final_state(on, tmp_path), _final_state(off, tmp_path)
    assert any("running_mean" in k for k in state_on[0])
    _assert_bit_identical(state_on, state_off)
    rows = read_csv(_run_dir(on, tmp_path) / "metrics.csv")
    assert [int(r["step"]) for r in rows if r["probe/sharpness"]] == [0, 4]


def test_build_callbacks_rejects_bad_probe_settings(runs_dir):
    from ijr.train import train

    with pytest.raises(ValueError, match="probes.size"):
        train(compose_cfg(*tiny_overrides(runs_dir, "probes=basic", "probes.size=100000")))


# ------------------------------------------------------------------------------ rho_B sets
def _probes_for(runs_dir, *extra):
    from ijr.probes.callback import CurvatureProbes
    from ijr.train import apply_profile, resolve_data_cap

    cfg = apply_profile(compose_cfg(*tiny_overrides(runs_dir, "probes=all", *extra)))
    dm = resolve_data_cap(cfg)
    probes = CurvatureProbes(parse_probe_config(cfg.probes), dm, runs_dir)
    chunk = probes.config.physical_batch_size or dm.physical_batch_size
    probes.batches = dm.probe_batches(probes.size, chunk, probes.config.seed)
    return probes, dm


def _rows(x):
    return {tuple(r.tolist()) for r in x.reshape(x.shape[0], -1)}


def test_rho_b_reference_is_the_whole_training_set_and_minibatches_come_from_it(runs_dir):
    probes, dm = _probes_for(runs_dir, "probes.size=16", "probes.rho_b_batches=3")
    assert probes.size < dm.batch_size == 64  # the case that gave rho_B > 1 before
    reference, mini = probes._rho_b_sets(step=40, device=torch.device("cpu"))
    assert torch.equal(torch.cat([x for x, _ in reference]), dm.train_x)
    assert torch.equal(torch.cat([y for _, y in reference]), dm.train_y)
    train_rows, probe_rows = _rows(dm.train_x), _rows(torch.cat([x for x, _ in probes.batches]))
    assert len(mini) == 3
    for x, y in mini:
        assert x.shape[0] == y.shape[0] == 64
        assert len(_rows(x)) == 64 and _rows(x) <= train_rows  # without replacement, from train
    assert not all(_rows(x) <= probe_rows for x, _ in mini)
    again = probes._rho_b_sets(step=40, device=torch.device("cpu"))[1]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(mini, again, strict=True))  # seeded


def test_rho_b_on_the_probe_set_draws_from_it_and_needs_it_larger_than_b(runs_dir):
    probes, dm = _probes_for(
        runs_dir, "probes.size=200", "probes.rho_b_batches=2", "probes.rho_b_population=probe_set"
    )
    reference, mini = probes._rho_b_sets(step=0, device=torch.device("cpu"))
    assert reference is probes.batches
    probe_rows = _rows(torch.cat([x for x, _ in probes.batches]))
    assert all(x.shape[0] == 64 and _rows(x) <= probe_rows for x, _ in mini)
    with pytest.raises(ValueError, match=r"rho_b_population=probe_set .*=64 .* 16 examples"):
        _probes_for(runs_dir, "probes.size=16", "probes.rho_b_population=probe_set")
    with pytest.raises(ValueError, match="probes.rho_b_population must be one of train, probe_set"):
        _probes_for(runs_dir, "probes.rho_b_population=test")


def test_rho_b_with_the_whole_set_as_reference_is_at_most_one_on_average():
    """E||<g>_B||^2 >= ||<g>||^2 when both come from one set; a small probe set as the reference
    with mini-batches from a larger set breaks that (the bug this population setting fixes)."""
    from ijr import curvature as cv

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(256, 6), torch.randint(0, 3, (256,))
    gen = torch.Generator().manual_seed(1)
    mini = [torch.randperm(256, generator=gen)[:32] for _ in range(400)]
    whole = cv.rho_b(model, torch.nn.functional.cross_entropy, [(x, y)], mini)
    assert whole.value <= 1.0
    small = cv.rho_b(
        model, torch.nn.functional.cross_entropy, [(x[:8], y[:8])], [(x[i], y[i]) for i in mini]
    )
    assert small.value > whole.value
